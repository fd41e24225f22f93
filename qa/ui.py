"""The browser UI (Gradio): chat with streamed, cited answers; sources with the cited sentence highlighted;
a library tab to upload articles and rebuild; settings; and ``/ask`` and ``/search`` API endpoints.

    python app.py            # or: qa serve      -> http://127.0.0.1:7860

Safe by default: it binds 127.0.0.1 and makes no share link unless asked; every piece of article or model
text is HTML-escaped before it reaches the page (qa/ui_html.py draws it);
the page loads nothing from outside (system fonts, no analytics); uploads are size-limited and written only
into the documents folder under a cleaned file name; the index, the model cache and the home folder are
blocked from Gradio's file route. Nothing heavy is imported until the app starts.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from .answering import Answer, stream
from .answering import answer as qa_answer
from .config import Settings, default_docs_dir
from .documents import SUFFIXES as SUPPORTED_SUFFIXES
from .errors import QAError
from .index import build_index, ensure_index, has_index, live_manifest
from .local_store import DEFAULT_INDEX_DIR, LoadedIndex
from .search import search as qa_search
from .ui_html import CSS, Turn, error_html, esc, render_chat, render_library, render_sources, render_stats, window

log = logging.getLogger(__name__)

MAX_UPLOAD_MB = 20.0
EXAMPLES = [
    "How many soldiers would European countries contribute?",
    "How deep would the safe zone be?",
    "Who won the 2018 FIFA World Cup?",
    "What are these articles about?",  # any folder: each article's opening (qa.answering.overview)
]


class Conversation:
    """One browser session's chat: the answered turns, the question being answered, and the questions asked
    meanwhile, which wait their turn in order. Every event of the session mutates this one object in place
    (Gradio hands a session's State object itself to each event), so a question sent while another is being
    answered is never overwritten or lost, and "New conversation" clears only what was already answered."""

    def __init__(self) -> None:
        self.turns: list[Turn] = []
        self.waiting: list[str] = []  # asked, not yet taken up, oldest first
        self.current = ""  # being answered now
        self.partial: Answer | None = None
        self.status = ""
        self.last_sent = 0  # the number of the last question this page sent that is in line or answered
        self._lock = threading.Lock()

    def __deepcopy__(self, memo) -> Conversation:  # Gradio copies the initial value per session: start empty
        return Conversation()

    def offer(self, outbox: str) -> None:
        """Put in line the questions of ``outbox`` (SEND_JS's JSON list of [number, question], every question this
        page sent) not seen before, in the order they were sent. The browser may deliver two quick sends together
        and in either order; each carries all earlier ones, so the order is the page's, never the network's."""
        try:
            sent = sorted((int(n), str(q)) for n, q in json.loads(outbox or "[]"))
        except (TypeError, ValueError):
            return
        with self._lock:
            for n, q in sent:
                if n > self.last_sent and q.strip():
                    self.waiting.append(q)
                self.last_sent = max(self.last_sent, n)

    def take(self) -> str | None:
        """The next waiting question, now the current one (None when none waits)."""
        with self._lock:
            if not self.waiting:
                return None
            self.current, self.partial, self.status = self.waiting.pop(0), None, "searching the articles…"
            return self.current

    def finish(self, turn: Turn) -> None:
        with self._lock:
            self.turns.append(turn)
            self.current, self.partial, self.status = "", None, ""

    def clear(self) -> None:
        with self._lock:
            self.turns = []


def render_conversation(conv: Conversation) -> str:
    return render_chat(list(conv.turns), conv.partial, conv.current, conv.status, list(conv.waiting))


# ---------------------------------------------------------------------------------------------------------------
# Uploads


_SAFE_NAME = re.compile(r"[^\w.\- ]+", re.UNICODE)


@contextlib.contextmanager
def api_errors() -> Iterator[None]:
    """Web API callers get our one-line message (Gradio hides other exceptions' text), never a traceback."""
    import gradio as gr

    try:
        yield
    except QAError as e:
        raise gr.Error(str(e), print_exception=False) from None
    except (TypeError, ValueError) as e:  # arguments of the wrong type or value from a hand-written request
        raise gr.Error(f"Bad request: {e}", print_exception=False) from None
    except Exception as e:
        log.exception("API call failed")
        raise gr.Error(f"Unexpected error: {type(e).__name__}: {e}", print_exception=False) from None


def safe_filename(name: str) -> str:
    """A plain file name for an upload: no folders, no leading dots, nothing but word characters, '.', '-', ' '."""
    base = Path(name.replace("\\", "/")).name
    base = _SAFE_NAME.sub("_", base).strip().lstrip(".")
    stem, suffix = os.path.splitext(base)
    suffix = suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise ValueError(f"{name!r} is not an article this app reads; upload {', '.join(sorted(SUPPORTED_SUFFIXES))}.")
    stem = stem[:120] or "article"
    return stem + suffix


def save_uploads(paths: list[str], docs_dir: Path, max_mb: float = MAX_UPLOAD_MB) -> tuple[list[str], list[str]]:
    """Copy uploaded files into ``docs_dir``; returns (saved names, problems). Replaces a file of the same name."""
    saved, problems = [], []
    docs_dir.mkdir(parents=True, exist_ok=True)
    for p in paths or []:
        src = Path(p)
        orig = getattr(p, "orig_name", None) or src.name
        try:
            name = safe_filename(orig)
            size = src.stat().st_size
            if size > max_mb * 1_000_000:
                raise ValueError(f"{orig!r} is {size / 1e6:.1f} MB; the limit is {max_mb:g} MB.")
            if size == 0:
                raise ValueError(f"{orig!r} is empty.")
            fd, tmp = tempfile.mkstemp(dir=docs_dir, prefix=".upload-")
            os.close(fd)
            shutil.copyfile(src, tmp)
            os.replace(tmp, docs_dir / name)  # atomic: a half-copied file is never indexed
            saved.append(name)
        except (OSError, ValueError) as e:
            problems.append(str(e) if isinstance(e, ValueError) else f"{orig!r}: {e.strerror or e}")
    return saved, problems


# ---------------------------------------------------------------------------------------------------------------
# The app


# Runs in the page when a question is sent, before the server is called: numbers it, keeps it in the page's
# outbox (the last 50), empties the box at once, and hands the server the whole outbox (see Conversation.offer).
SEND_JS = """
(question, outbox, conv, scores) => {
  const w = window;
  w.__qa_sent = w.__qa_sent || [];
  w.__qa_n = w.__qa_n || 0;
  if (question && question.trim()) {
    w.__qa_n += 1;
    w.__qa_sent.push([w.__qa_n, question]);
    w.__qa_sent = w.__qa_sent.slice(-50);
    const box = document.querySelector('#qa-question textarea');
    if (box && box.value === question) {
      box.value = '';
      box.dispatchEvent(new Event('input', {bubbles: true}));
    }
  }
  return [question, JSON.stringify(w.__qa_sent), conv, scores];
}
"""

# One delegated listener: clicking [n] unfolds that turn's sources, highlights source n and scrolls to it.
JS = """
() => {
  document.addEventListener('click', (event) => {
    const link = event.target.closest('a.qa-cite');
    if (!link) return;
    event.preventDefault();
    const card = document.getElementById(link.dataset.target);
    if (!card) return;
    const turn = card.closest('details');
    if (turn) turn.open = true;
    document.querySelectorAll('.qa-src.qa-active').forEach((el) => el.classList.remove('qa-active'));
    card.classList.add('qa-active');
    card.scrollIntoView({behavior: 'smooth', block: 'center'});
  });
}
"""


def model_choices(settings: Settings) -> list[str]:
    """The reader models offered in Settings: the configured one, then `QA_UI_MODELS` (comma-separated)."""
    extra = [m.strip() for m in os.environ.get("QA_UI_MODELS", "").split(",") if m.strip()]
    return list(dict.fromkeys([settings.reader, *extra]))


def build_ui(index_dir: str | Path = DEFAULT_INDEX_DIR, docs_dir: str | Path | None = None,
             settings: Settings | None = None):
    """The Gradio Blocks app. ``docs_dir`` is where uploads go and what "Rebuild" indexes (by default the folder
    the index was built from, else ``seeds/``)."""
    import gradio as gr

    settings = settings or Settings.from_env()
    index_dir = str(index_dir)

    def docs_folder() -> Path:
        if docs_dir is not None:
            return Path(docs_dir)
        if has_index(index_dir, settings):
            recorded = live_manifest(index_dir, settings).get("docs_dir")
            if recorded:
                return Path(recorded)
        return default_docs_dir()

    def settings_for(k: float, model: str) -> Settings:
        model = model if model in model_choices(settings) else settings.reader  # only what was configured
        return replace(settings, answer_passages=max(1, min(20, int(k))), reader=model)

    def loaded_or_none() -> LoadedIndex | None:
        try:
            return ensure_index(index_dir, settings)
        except QAError:
            return None

    # -- chat ----------------------------------------------------------------------------------------------------
    # Sending a question only puts it in line (at once, outside the queue); the `answer_waiting` event that each
    # send queues then answers the session's oldest waiting question through the one reader. A question sent while
    # another is being answered shows as waiting and is answered next: none is dropped, and the box is free for
    # the next one. One question per event, so other sessions' questions take their turns in between.
    def ask_chat(question: str, outbox: str, conv: Conversation, show_scores: bool) -> tuple:
        conv.offer(outbox)
        return render_conversation(conv), gr.skip()

    def answer_waiting(conv: Conversation, k: float, model: str, show_scores: bool) -> Iterator[tuple]:
        question = conv.take()
        yield render_conversation(conv), gr.skip()
        if question is not None:
            history = [t.answer for t in conv.turns if not t.error]
            final: Answer | None = None
            message = "The answer was cut short; ask again."  # if the stream ends without its final answer
            try:
                for a in stream(question, index_dir, history=history, settings=settings_for(k, model)):
                    if a.complete:
                        final = a
                        break
                    # An early answer from the best few passages: shown as such until the final one replaces it.
                    conv.partial, conv.status = a, "early answer from the best passages; still reading the rest…"
                    yield render_conversation(conv), gr.skip()
            except Exception as e:  # shown in the page, never as a traceback; unexpected ones go to the log too
                if not isinstance(e, QAError):
                    log.exception("answering failed")
                message = str(e) if isinstance(e, QAError) else f"Unexpected error: {e}"
                final = None
            if final is None:
                conv.finish(Turn(Answer(question, "", [], False, question), error=message))
            else:
                loaded = loaded_or_none()
                shown = final.related if final.abstained else final.citations
                conv.finish(Turn(final, tuple(window(loaded, p) for p in shown)))
            yield render_conversation(conv), render_sources(list(conv.turns), show_scores)

    def clear(conv: Conversation, show_scores: bool) -> tuple:
        # Only what was answered goes: a question being answered or waiting stays, and so does the typed text.
        conv.clear()
        return render_conversation(conv), render_sources([], show_scores)

    def rescore(conv: Conversation, show_scores: bool) -> str:
        return render_sources(list(conv.turns), show_scores)

    # -- library -------------------------------------------------------------------------------------------------
    def library() -> str:
        loaded_or_none()  # builds the default index on first visit
        return render_library(index_dir, settings)

    def upload(files: list[str] | None) -> tuple[str, None]:
        if not files:
            return "", None
        saved, problems = save_uploads(files, docs_folder())
        parts = []
        if saved:
            parts.append(f"<div class='qa-ok' role='status'>Added to <code>{esc(str(docs_folder()))}</code>: "
                         f"{', '.join(esc(s) for s in saved)}. Press <strong>Rebuild index</strong> to index "
                         f"{'them' if len(saved) > 1 else 'it'}.</div>")
        parts.extend(f"<div class='qa-error' role='alert'>{esc(p)}</div>" for p in problems)
        return "".join(parts), None

    def rebuild(progress=gr.Progress()) -> tuple[str, str]:  # noqa: B008 (how Gradio injects its progress bar)
        def report(stage: str, i: int, n: int) -> None:
            progress((i, max(n, 1)), desc=stage, unit="files" if stage.startswith("reading")
                     else "sentences" if stage.endswith("sentences") else "chunks")

        try:
            stats = build_index(docs_folder(), index_dir, settings=settings, progress=report)
        except QAError as e:
            return error_html(e), render_library(index_dir, settings)
        except Exception as e:
            log.exception("rebuild failed")
            return error_html(RuntimeError(f"Unexpected error while rebuilding: {e}")), render_library(index_dir, settings)
        return render_stats(stats), render_library(index_dir, settings)

    # -- API: same objects as the Python API ---------------------------------------------------------------------
    def api_ask(question: str, history: list[str] | None = None) -> dict[str, Any]:
        """Answer a question from the articles. Returns qa.Answer as a dict: text with [n] markers, shape ("short":
        a span, also in `short`; "quotes": 1-3 verbatim sentences; "overview": each article's opening sentences, for a
        request about the articles themselves; "chat": a reply to small talk, citing nothing; "source": the last answer's sentences again, for "Are you sure?";
        "abstained"), citations (source, title, start,
        end, text, score, n, answer_start, answer_end), abstained, searched_for, support, related, confidence (the
        estimated probability that the answer is right, 0.01-0.99; also as confidence_percent), index_version. `history`: the conversation's earlier questions, oldest first, for a follow-up."""
        with api_errors():
            return qa_answer(question, index_dir, history=history or None, settings=settings).to_dict()

    def api_search(question: str, k: int = 5) -> list[dict[str, Any]]:
        """The k best passages for a question: source, title, start, end, text, score (dense and BM25 parts)."""
        with api_errors():
            return [dataclasses.asdict(p) for p in qa_search(question, k=int(k), index_dir=index_dir, settings=settings)]

    theme = gr.themes.Soft(
        # System fonts only: the default theme would fetch Google Fonts, and the page must make no outside request.
        font=["ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "sans-serif"],
        font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"],
    )
    with gr.Blocks(title="qa · ask the articles") as demo:
        demo.qa_theme, demo.qa_css, demo.qa_js = theme, CSS, JS  # for launch(): Gradio 6 takes them there
        conv = gr.State(Conversation())
        outbox = gr.Textbox(visible=False)  # what SEND_JS hands the server: every question sent, numbered
        gr.Markdown("## Ask the articles\nAnswers are copied word for word from the articles and cite the sentence "
                    "they come from. Click a `[n]` to see it in its article.")
        with gr.Tabs():
            with gr.Tab("Ask", id="ask", elem_id="qa-tab-ask"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=3):
                        chat = gr.HTML(render_chat([]), elem_id="qa-chat", padding=True, autoscroll=True)
                        with gr.Row():
                            question = gr.Textbox(show_label=False, placeholder=EXAMPLES[0], scale=5, lines=1,
                                                  max_lines=4, elem_id="qa-question", autofocus=True)
                            ask_btn = gr.Button("Ask", variant="primary", scale=1, elem_id="qa-ask")
                        with gr.Row():
                            gr.Examples(EXAMPLES, inputs=question, label="Try")
                            new_btn = gr.Button("New conversation", size="sm", scale=0, elem_id="qa-new")
                    with gr.Column(scale=2):
                        gr.Markdown("### Sources")
                        sources = gr.HTML(render_sources([]), elem_id="qa-sources")
            with gr.Tab("Library", id="library", elem_id="qa-tab-library"):
                lib = gr.HTML("<p>Loading…</p>", elem_id="qa-library")
                files = gr.File(label=f"Add articles (.txt, .md, .html, .pdf; up to {MAX_UPLOAD_MB:g} MB each)",
                                file_count="multiple", file_types=sorted(SUPPORTED_SUFFIXES), elem_id="qa-upload")
                upload_status = gr.HTML(elem_id="qa-upload-status")
                rebuild_btn = gr.Button("Rebuild index", variant="primary", elem_id="qa-rebuild")
                rebuild_status = gr.HTML(elem_id="qa-rebuild-status")
            with gr.Tab("Settings", id="settings", elem_id="qa-tab-settings"):
                k = gr.Slider(1, 20, value=settings.answer_passages, step=1, label="Passages searched for evidence",
                              elem_id="qa-k")
                model = gr.Dropdown(model_choices(settings), value=settings.reader, label="Reader model",
                                    info="Configured models only (QA_READER, QA_UI_MODELS).", elem_id="qa-model")
                show_scores = gr.Checkbox(False, label="Show retrieval scores in Sources", elem_id="qa-scores")

        private: dict[str, Any] = dict(api_visibility="private")
        for trigger in (ask_btn.click, question.submit):
            # "multiple": a question sent while an answer is being made is put in line, not ignored.
            # The chat draws its own "answering" and "waiting" states: no Gradio overlay on top of them.
            trigger(ask_chat, [question, outbox, conv, show_scores], [chat, sources], queue=False, js=SEND_JS,
                    trigger_mode="multiple", show_progress="hidden", **private
                    ).then(answer_waiting, [conv, k, model, show_scores], [chat, sources], concurrency_id="reader",
                           trigger_mode="multiple", show_progress="hidden", **private)
        new_btn.click(clear, [conv, show_scores], [chat, sources], queue=False, **private)
        show_scores.change(rescore, [conv, show_scores], sources, queue=False, **private)
        demo.load(library, None, lib, **private)
        files.upload(upload, files, [upload_status, files], **private)
        rebuild_btn.click(rebuild, None, [rebuild_status, lib], concurrency_id="rebuild", concurrency_limit=1,
                          **private)
        gr.api(api_ask, api_name="ask", concurrency_id="reader")
        gr.api(api_search, api_name="search", concurrency_limit=4)
    return demo


def warm_up(index_dir: str | Path, settings: Settings) -> None:
    """Build or load the index and load both models, so the first question doesn't wait for them."""
    import time

    from .embeddings import get_embedder
    from .reading import get_reader

    t0 = time.perf_counter()
    try:
        ensure_index(index_dir, settings)
        get_embedder(settings).encode(["warm up"])
        reader = get_reader(settings)
        if hasattr(reader, "load"):
            reader.load()
        log.info("Ready: index and models loaded in %.1f s.", time.perf_counter() - t0)
    except Exception as e:  # the page shows the error when someone asks; the app still starts
        log.warning("Could not prepare the index or models at start: %s", e)


def launch(demo, host: str | None = None, port: int | None = None, share: bool = False, settings: Settings | None = None,
           index_dir: str | Path = DEFAULT_INDEX_DIR, docs_dir: str | Path | None = None, **kw):
    """Start the app with the safe defaults (see the module docstring). ``host`` / ``port`` None: Gradio's own
    ``GRADIO_SERVER_NAME`` / ``GRADIO_SERVER_PORT``, as Gradio documents them, else 127.0.0.1 and 7860 (or the
    next free port)."""
    settings = settings or Settings.from_env()
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    blocked = [str(Path(index_dir).resolve()), str(Path(settings.cache_dir).resolve()), str(Path.home().resolve())]
    if docs_dir is not None:
        blocked.append(str(Path(docs_dir).resolve()))
    # The reader handles one question at a time; others wait in a bounded queue and are told it's busy when full.
    demo.queue(max_size=settings.ui_queue_size, default_concurrency_limit=1)
    return demo.launch(
        server_name=host, server_port=port, share=share, max_file_size=int(MAX_UPLOAD_MB * 1_000_000),
        blocked_paths=blocked, theme=demo.qa_theme, css=demo.qa_css, js=demo.qa_js, footer_links=["api"],
        ssr_mode=False, run_history=False, **kw,
    )


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="qa serve", description="Start the browser UI.")
    p.add_argument("--index", default=DEFAULT_INDEX_DIR, help="index folder (default: index, built from seeds/)")
    p.add_argument("--docs", default=None, help="documents folder for uploads and rebuilds (default: the index's)")
    p.add_argument("--host", default=None, help="address to bind (default: $QA_HOST, else $GRADIO_SERVER_NAME, else "
                                                "127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=None, help="port (default: $QA_PORT, else $GRADIO_SERVER_PORT, else "
                                                          "7860 or the next free one)")
    p.add_argument("--share", action="store_true", help="also make a public gradio.live link (off by default)")
    p.add_argument("--store", default=None, help="index store: local (default, $QA_STORE), a Milvus Lite file "
                                                 "(milvus.db) or a Milvus URI (http://HOST:19530)")
    args = p.parse_args(argv)
    host, port = server_address(args.host, args.port, os.environ)
    if port is not None and not 0 < port < 65536:
        p.error(f"port {port} is out of range (1-65535)")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("qa").setLevel(logging.INFO)  # our progress lines, not every library's chatter
    settings = Settings.from_env(**({"store": args.store} if args.store else {}))
    import threading

    # Models load while gradio imports and builds the page: the two overlap on two cores.
    threading.Thread(target=warm_up, args=(args.index, settings), name="qa-warm-up", daemon=True).start()
    demo = build_ui(args.index, args.docs, settings)
    launch(demo, host, port, args.share, settings, args.index, args.docs)


def server_address(host: str | None, port: int | None, environ) -> tuple[str | None, int | None]:
    """Flags win, then QA_HOST / QA_PORT; None leaves the choice to Gradio, which reads GRADIO_SERVER_NAME and
    GRADIO_SERVER_PORT as it documents (defaults 127.0.0.1 and 7860)."""
    host = host or environ.get("QA_HOST") or None
    if port is None and environ.get("QA_PORT"):
        try:
            port = int(environ["QA_PORT"])
        except ValueError:
            raise SystemExit(f"error: QA_PORT={environ['QA_PORT']!r} is not a port number") from None
    return host, port
