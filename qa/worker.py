"""Model runtimes in a worker process, so that their native crashes cannot take the caller down.

llama.cpp and onnxruntime are C++: a segmentation fault, an abort or an out-of-memory kill inside them ends the
whole process, and with it a web app serving other people. So by default (``Settings.model_process``) each model
runs in a child process (``python -m qa.worker``), one per role (reader, embedder), and the objects the rest of the
code holds are thin proxies with the same one-method seams. When the child dies mid-call, the call raises
:class:`~qa.errors.ModelCrashedError` ("the reader stopped unexpectedly (...) and was restarted; ask again"), a new
child is started at once and loads its model again, and the next call is answered by it.

The child is started with ``subprocess`` (not ``multiprocessing``), so it never re-imports the caller's main
module: a plain script that calls ``qa.answer()`` at the top, without an ``if __name__ == "__main__"`` guard,
works. The factory is named (``module:qualname``) and imported there. Calls and results travel over a socket pair
through ``multiprocessing.connection``, which pickles them: an in-memory channel between two processes of this
program whose ends only they hold; nothing is written to disk or read from anyone else.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from .errors import ModelCrashedError

log = logging.getLogger("qa")

_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_ATTR = "__getattr__"  # the method name that reads an attribute of the hosted model instead of calling it


def importable_name(factory: Any) -> str | None:
    """``"module:qualname"`` by which a worker can import ``factory``, or None: module-level functions and classes
    have one; lambdas and closures, which live only in this process (most test fakes), do not, and those models
    then run in this process."""
    module, qualname = getattr(factory, "__module__", None), getattr(factory, "__qualname__", "")
    if not module or not qualname or "<" in qualname or module == "__main__":
        return None
    obj = sys.modules.get(module)
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
    return f"{module}:{qualname}" if obj is factory else None


def _resolve(name: str) -> Callable[[Any], Any]:
    import importlib

    module, qualname = name.split(":")
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def death_cause(returncode: int | None) -> str:
    """What a worker's exit status says about how it ended, in words."""
    if returncode is None:
        return "it stopped answering"
    if returncode < 0:
        try:
            sig = signal.Signals(-returncode)
        except ValueError:
            return f"killed by signal {-returncode}"
        what = {signal.SIGSEGV: "a segmentation fault", signal.SIGABRT: "it aborted",
                signal.SIGKILL: "it was killed, perhaps for lack of memory", signal.SIGBUS: "a bus error",
                signal.SIGILL: "an illegal instruction: the runtime was built for another CPU",
                signal.SIGFPE: "an arithmetic fault"}.get(sig, "killed")
        return f"{sig.name}: {what}"
    return f"it exited with status {returncode}"


class ModelWorker:
    """One child process hosting the models one factory builds, one instance per distinct settings (as the
    in-process registry keeps them). Calls are forwarded one at a time; the child may call ``on_event`` back
    (the reader's streamed text) before it returns."""

    def __init__(self, role: str, factory: str, warm: str | None = None):
        self.role, self.factory, self.warm = role, factory, warm  # factory: its importable_name
        self.restarts = 0  # how often the child died and was replaced
        self._lock = threading.RLock()
        self._proc: subprocess.Popen | None = None
        self._conn: Connection | None = None
        self._warm_settings: Any = None  # (key, settings) of the last call: after a crash the new child loads them
        _LIVE.add(self)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def call(self, key: Any, settings: Any, method: str, *args: Any, on_event: Callable[[Any], None] | None = None,
             **kwargs: Any) -> tuple[Any, Any]:
        """``method(*args, **kwargs)`` on the child's model for ``key`` (built from ``settings`` on first use);
        returns (result, the model's ``stats`` after the call)."""
        return self._call(key, settings, method, args, kwargs, on_event, rewarm=True)

    def _call(self, key, settings, method, args, kwargs, on_event, rewarm: bool):
        with self._lock:
            conn = self._ensure()
            self._warm_settings = (key, settings)
            timeout = float(getattr(settings, "model_timeout_s", 0) or 0) or None
            try:
                conn.send((key, settings, method, args, kwargs, on_event is not None))
                while True:
                    if timeout is not None and not conn.poll(timeout):  # hung, not crashed: end it all the same
                        self._proc.kill()  # type: ignore[union-attr]
                        raise TimeoutError(f"no reply within {timeout:g} s")
                    kind, value, stats = conn.recv()
                    if kind != "event":
                        break
                    on_event(value)  # type: ignore[misc]
            except (EOFError, OSError) as e:
                pid, cause = self.pid, self._reap()
                if isinstance(e, TimeoutError):
                    cause = f"it gave no reply within {timeout:g} s and was stopped"
                log.error("The %s worker (pid %s) died during %s: %s (%s). Restarting it.", self.role, pid,
                          method, cause, type(e).__name__)
                self.restarts += 1
                self._restart(warm=rewarm)
                again = "ask again" if self.role == "reader" else "try again"
                raise ModelCrashedError(
                    f"The {self.role} stopped unexpectedly ({cause}) and was restarted; {again}. If this keeps "
                    f"happening, run `qa check` to see which part fails.") from None
        if kind == "error":
            raise value
        return value, stats

    def preload(self, key: Any, settings: Any) -> None:
        """Start the child and have it load the model for ``key`` in the background, without waiting: the caller
        goes on (loading the index, embedding the question) while the model loads beside it."""
        if self.warm is None:
            return

        def warm_up() -> None:
            try:
                self._call(key, settings, self.warm, (), {}, None, rewarm=False)
            except Exception as e:  # the first real call reports it
                log.debug("Preloading the %s failed: %s", self.role, e)

        threading.Thread(target=warm_up, name=f"qa-{self.role}-preload", daemon=True).start()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()  # the child sees end-of-file and exits
                self._conn = None
            if self._proc is not None:
                try:
                    self._proc.wait(timeout=2)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait()
                self._proc = None

    def _ensure(self) -> Connection:
        if self._proc is not None and self._proc.poll() is not None:  # died between calls: replace it quietly
            log.warning("The %s worker (pid %s) had ended (%s); starting a new one.", self.role, self._proc.pid,
                        death_cause(self._proc.returncode))
            self._reap()
        if self._conn is None:
            self._conn = self._spawn()
        return self._conn

    def _spawn(self) -> Connection:
        ours, theirs = socket.socketpair()
        try:
            try:
                out = sys.stderr.fileno()
            except (AttributeError, OSError, ValueError):  # a captured stderr (pytest): let the child have ours
                out = 2
            # This package must import there even when it was found through a sys.path entry of this process.
            env = dict(os.environ)
            env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "qa.worker", str(theirs.fileno())], pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL, stdout=out, env=env)
        finally:
            theirs.close()
        conn = Connection(ours.detach())
        # The child must find the factory's module the way this process does (a test's fakes, a user's plugin).
        conn.send((list(sys.path), self.factory))
        return conn

    def _reap(self) -> str:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        code = None
        if self._proc is not None:
            try:
                code = self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None
        return death_cause(code)

    def _restart(self, warm: bool) -> None:
        # Start the replacement now, so that "was restarted" is true and the next question finds its model
        # loading or loaded; the lock makes that question wait for the load rather than race it. A replacement
        # that dies while loading is not warmed again (no restart loop): the next call reports it.
        self._ensure()
        if warm and self._warm_settings is not None:
            self.preload(*self._warm_settings)


_LIVE: weakref.WeakSet[ModelWorker] = weakref.WeakSet()
_WORKERS: dict[tuple[str, str], ModelWorker] = {}
_WORKERS_LOCK = threading.Lock()


def worker_for(role: str, factory: str, warm: str | None = None) -> ModelWorker:
    """The one worker of this process for ``role`` and ``factory`` (an importable_name; started on first use)."""
    key = (role, factory)
    with _WORKERS_LOCK:
        if key not in _WORKERS:
            _WORKERS[key] = ModelWorker(role, factory, warm)
        return _WORKERS[key]


@atexit.register
def _close_all() -> None:
    for w in list(_LIVE):
        w.close()


# ---------------------------------------------------------------------------------------------------------------
# The proxies: what get_generator / get_embedder hand out when the model runs in a worker.


class RemoteReader:
    """The Reader seam, answered by a reader in a worker process."""

    def __init__(self, worker: ModelWorker, key: Any, settings: Any):
        self.worker, self.key, self.settings = worker, key, settings
        self.name = settings.reader

    def load(self) -> None:
        self.worker.call(self.key, self.settings, "load")

    def read(self, question, texts):
        return self.worker.call(self.key, self.settings, "read", question, list(texts))[0]


class RemoteGenerator:
    """The Generator seam, answered by a generator in a worker process."""

    def __init__(self, worker: ModelWorker, key: Any, settings: Any):
        self.worker, self.key, self.settings = worker, key, settings

    def generate(self, prompt: str, max_tokens: int = 48) -> str:
        return self.worker.call(self.key, self.settings, "generate", prompt, max_tokens)[0]


class RemoteEmbedder:
    """The Embedder seam, answered by an embedder in a worker process."""

    def __init__(self, worker: ModelWorker, key: Any, settings: Any):
        self.worker, self.key, self.settings = worker, key, settings
        self._attrs: dict[str, Any] = {}

    def _attr(self, name: str) -> Any:
        if name not in self._attrs:
            self._attrs[name] = self.worker.call(self.key, self.settings, _ATTR, name)[0]
        return self._attrs[name]

    @property
    def name(self) -> str:
        return self._attr("name")

    @property
    def dimension(self) -> int:
        return self._attr("dimension")

    @property
    def max_tokens(self) -> int:
        return self._attr("max_tokens")

    def count_tokens(self, texts):
        return self.worker.call(self.key, self.settings, "count_tokens", list(texts))[0]

    def encode(self, texts):
        return self.worker.call(self.key, self.settings, "encode", list(texts))[0]


# ---------------------------------------------------------------------------------------------------------------
# The child's side: ``python -m qa.worker FD``.


def _takes(fn: Callable, name: str) -> bool:
    import inspect

    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def serve(conn: Connection) -> None:
    """Answer calls until the parent closes its end."""
    sys_path, factory_name = conn.recv()
    sys.path[:] = sys_path
    factory = _resolve(factory_name)
    instances: dict[Any, Any] = {}
    while True:
        try:
            key, settings, method, args, kwargs, events = conn.recv()
        except (EOFError, OSError):
            return
        try:
            if key not in instances:
                instances[key] = factory(settings)
            model = instances[key]
            if method == _ATTR:
                result = getattr(model, args[0])
            else:
                fn = getattr(model, method, None) if method == "load" else getattr(model, method)
                if fn is None or not callable(fn):  # load() is optional; a property's value (the embedder's warm-up)
                    result = fn
                else:
                    if events:
                        kwargs["on_text"] = lambda text: conn.send(("event", text, None))
                    if "prior" in kwargs and (kwargs["prior"] is None or not _takes(fn, "prior")):
                        kwargs.pop("prior")  # a reader written before `prior` existed
                    result = fn(*args, **kwargs)
                    if result is model:  # load() returns the model itself, which stays here
                        result = None
            reply = ("ok", result, getattr(model, "stats", None))
        except Exception as e:
            reply = ("error", e, None)
        try:
            conn.send(reply)
        except (EOFError, OSError):
            return
        except Exception as e:  # a result or an exception that cannot travel: say what it was
            what = f"{type(reply[1]).__name__}: {reply[1]}" if reply[0] == "error" else f"the {method} result"
            conn.send(("error", RuntimeError(f"{what} (could not be sent back: {e})"), None))


def main() -> None:
    # Ctrl-C in a terminal reaches the whole process group; the parent decides when this child ends.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s (worker): %(message)s")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    t0 = time.perf_counter()
    conn = Connection(int(sys.argv[1]))
    try:
        serve(conn)
    finally:
        log.debug("worker exits after %.1f s", time.perf_counter() - t0)


if __name__ == "__main__":
    main()
