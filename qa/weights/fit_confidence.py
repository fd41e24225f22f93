"""Fit the confidence model in confidence.json: the probability that an answer is right, from the reader's signals.

    python -m qa.weights.fit_confidence [--data DIR] [--cache DIR] [--squad N --selqa N --turns N --paragraphs N]

Held-out data only, from four sources at once, so that the figure holds on more than one kind of text:
- SQuAD 2.0: the 5 tuning articles the reader never trained on (qa/weights/train_reader.py holds them out), all
  their answerable and unanswerable questions, the articles indexed together;
- the same questions over the same articles cut into one short file per paragraph (``--paragraphs``): short
  articles with unanswerable questions;
- SelQA dev: answer-sentence questions (what / how / why ...), every section one file, indexed together;
- doc2dial dmv-va: later turns outside the public figure's sample (``qa.evaluation.tuning_turns``), asked with
  their conversation as ``qa.answer`` takes it.

Each question goes once through the real answer path (index, search, rerank, reader); its passages and readings
are cached under ``--cache`` (default ~/.cache/qa/confidence), so a second run, or one cut short and started again,
reads only what is missing. Then, offline, ``qa.answering.draft`` gives the answer the path would give at any
confidence, and ``qa.evaluation`` says whether it is right (SQuAD: a short answer with F1 >= 0.5 or holding a gold
answer, quotes covering a gold answer; SelQA: a citation covering half an answer sentence; doc2dial: a citation
overlapping the grounding span; any answer to an unanswerable question is wrong).

SelQA and doc2dial judge an answer by its sentence, so they have no gold span to judge a short answer by: their
short answers are scored for refusals but left out of the fit and of the reliability tables (a right sentence with
a wrong span would count as right). SQuAD's questions are all in both.

The model is scikit-learn's logistic regression on standardised signals (Platt scaling with several inputs), stored
as plain numbers. :data:`FEATURES` are the signals it uses, chosen by the cross-validation below among subsets of
:data:`qa.confidence.SIGNALS` (``--features`` reruns the comparison; docs/benchmarks.md has the figures).
It is checked by 5-fold cross-validation grouped by article (a SQuAD article with its paragraph files, a SelQA
article, a doc2dial page), so no article's questions are in both the fit and the check: expected
calibration error per fold, and the refusal rule ``Settings.min_confidence`` chosen in each fold as the confidence
that refuses ``--false-refusals`` of the held-in answerable questions, with what it refuses of the held-out fold.
The shipped model is then fitted on everything.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import tempfile
import time
from pathlib import Path

from .train_reader import DATA, TRAIN_TUNING_ARTICLES

#: Where the held-out questions come from (see :func:`examples`).
SOURCES = ("squad", "paragraphs", "follow_ups", "selqa", "doc2dial")
#: The signals the model weighs. On the cross-validation by article, the margin with the shape, the passage's
#: "no answer" score and the lead over the next sentence calibrated SQuAD and doc2dial best (ECE 0.020 and 0.046,
#: against 0.027 and 0.082 with all eleven signals: the others fitted noise that did not carry across articles).
#: The embedder's similarity of question and answer, with whether a conversation shaped the search, then raised
#: the unanswerable SQuAD questions refused at 10 % false refusals from 0.438 to 0.485 at C 0.1 (docs/benchmarks.md,
#: 2026-12-06).
#: Not the log of the answer's article length (``doc_len``, tried 2026-12-07): out of fold it lifted SelQA answered
#: and right 0.818 -> 0.878 and SQuAD right-or-rightly-refused 0.637 -> 0.659, but SelQA holds no unanswerable
#: question, so "a short article" also learnt "answerable": with SQuAD's held-out paragraphs indexed each as its own
#: short file, 600 questions, it refused 0.079 of the unanswerable ones against 0.456 without it, ECE 0.392 against
#: 0.052 (docs/benchmarks.md). With those paragraph files among the sources (:data:`PARAGRAPHS`) it weighs next to
#: nothing: out of fold, right or rightly refused SQuAD / paragraphs / SelQA / doc2dial 0.642 / 0.635 / 0.805 / 0.505
#: with it, 0.647 / 0.631 / 0.805 / 0.505 without.
FEATURES = ("relevance", "quotes", "relevance_quotes", "null", "gap", "similarity", "follow_up")
#: The logistic regression's C. With those signals, 0.1 calibrated a held-out SQuAD article better than 1 (median
#: out-of-fold ECE 0.070 against 0.093; 0.03: 0.064, but 0.454 of the unanswerable refused against 0.485).
C = 0.1
#: SQuAD tuning questions also asked over one file per paragraph (-1: all, 0: none; see :func:`examples`). All:
#: the fit then sees short articles with unanswerable questions, which SelQA's short sections lack. Against the fit
#: without them (2026-12-07, docs/benchmarks.md), on text it never saw, the public SQuAD sample's paragraphs each
#: its own file (1,407 questions): unanswerable refused 0.436 against 0.405 (false refusals 0.136 against 0.121),
#: ECE 0.062 against 0.078; the public SQuAD sample: abstention 0.47 against 0.45 at the same 0.18 false refusals,
#: ECE 0.093 against 0.103, F1 0.595 both; doc2dial: as many turns cited (53), ECE 0.072 against 0.091.
PARAGRAPHS = -1
#: Also ask the SQuAD tuning questions as factoid follow-ups (source "follow_ups",
#: :func:`qa.evaluation.factoid_follow_ups`: a later question of the same article with the name it shares with
#: an earlier answerable one replaced by "it", asked after that one and its gold answer; answerable and
#: unanswerable). doc2dial's turns were the fit's only follow-ups, and they mostly follow a statement: on 117
#: factoid follow-ups the answers shown were right 0.865 of the time at 0.594 mean confidence (stop 61). With them
#: (157: 117 answerable, 40 not), cross-validated by article, their answers' ECE 0.096 against 0.126 for the fit
#: without them, false refusals 0.043 (0.051), unanswerable ones refused 0.25 (0.375); the other sources within
#: noise: SQuAD refused 0.546 at 0.134 false refusals (0.538 at 0.125), doc2dial ECE 0.084 (0.090), SelQA 0.277
#: (0.268) (docs/benchmarks.md, stop 61). Not shipped: it answers more unanswerable follow-ups, and is no better
#: on the rest; the shipped model is stop 60's (a refit without them on today's readings: min_confidence 0.229
#: against 0.230).
FOLLOW_UPS = False
HERE = Path(__file__).resolve().parent
OUT = HERE / "confidence.json"
CACHE = Path.home() / ".cache" / "qa" / "confidence"


def _reading_row(passages, readings) -> dict:
    return {"passages": [[p.source, p.title, p.start, p.end, p.text, p.score] for p in passages],
            "readings": [[r.null, [[s.start, s.end, s.score] for s in r.spans], [list(x) for x in r.pieces],
                          r.shared] for r in readings]}


def _from_row(row):
    from qa.reading import Reading, Span
    from qa.search import Passage

    passages = [Passage(*p) for p in row["passages"]]
    readings = [Reading(r[0], tuple(Span(*s) for s in r[1]), tuple(tuple(x) for x in r[2]) if len(r) > 2 else (),
                        bool(r[3]) if len(r) > 3 else False) for r in row["readings"]]
    return passages, readings


def reading_key(sha: str, settings) -> str:
    """The readings cache's folder name: a change of reader or of any setting that changes what is read starts a
    new cache instead of replaying stale readings."""
    return (f"{sha[:12]}-{settings.reader_batch}-{settings.reader_overlap}-rerank{settings.rerank}"
            f"x{settings.rerank_weight:g}" + (f"-sentences{settings.sentence_weight:g}" if settings.sentence_weight
                                              else ""))


def collect(name: str, items: list[dict], docs: Path, cache: Path, settings, index: str | None = None) -> list[dict]:
    """Read each item (``{"id", "question", "history"}``) once through the answer path, caching the readings in
    ``cache/name.jsonl``; returns the cached rows for ``items``, in order. A cached row is used only while the
    answer path would still search, rerank, read and favour what it records (``searched``, ``reranked_by``,
    ``read_as``, ``page``): a change to how questions or follow-ups are put to the reader re-reads just the rows it
    changes. ``index``: the name of another source's index of the same ``docs`` to read with (``cache/index-index``),
    instead of building ``cache/name-index``."""
    from qa import answering
    from qa.index import build_index

    index_dir = cache / f"{index or name}-index"
    build_index(docs, index_dir, settings=settings)
    path = cache / f"{name}.jsonl"
    done = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
                done[row["id"]] = row
            except ValueError:
                pass  # a line cut short by a killed run is read again
    t0 = time.time()
    with open(path, "a", encoding="utf-8") as f:
        n = 0
        for it in items:
            q, searched, reader_q, read_as, loaded, emb, reader, st, page = answering._prepare(
                it["question"], index_dir, it.get("history"), settings)
            row = done.get(it["id"])
            asked = answering.sentences_by(q, it.get("history"))
            by = answering.reranked_by(searched, asked)
            # Rows from before "reranked_by" was recorded were reranked by what was searched.
            if row is not None and [row.get(k) for k in ("searched", "read_as", "page", "asked")] == [
                    searched, read_as, page, asked] and row.get("reranked_by", row["searched"]) == by:
                continue
            passages, readings = answering.read_evidence(searched, read_as, loaded, emb, reader, st, asked=asked)
            row = {"id": it["id"], "q": q, "searched": searched, "reader_q": reader_q, "read_as": read_as,
                   "page": page, "asked": asked, "reranked_by": by, **_reading_row(passages, readings)}
            f.write(json.dumps(row) + "\n")  # appended: the last row of an id is the one read
            f.flush()
            done[it["id"]] = row
            n += 1
            if n % 100 == 0:
                print(f"  {name}: {n} read, {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
    return [done[it["id"]] for it in items]


def replay(rows: list[dict], index_dir: Path, settings) -> list:
    """``(answer, signals)`` per row: the answer the path gives at any confidence, from the cached readings, with
    every signal, the embedder's similarity (:func:`qa.confidence.similarity`, here in batches) and the article's
    length (:func:`qa.confidence.doc_len`) too."""
    from qa import answering, confidence
    from qa.embeddings import get_embedder
    from qa.index import ensure_index

    loaded = ensure_index(index_dir, settings)
    embedder = get_embedder(settings)
    out = []
    for row in rows:
        passages, readings = _from_row(row)
        out.append(answering.draft(row["q"], row["searched"], row["reader_q"], passages, readings, loaded, 0.0,
                                   settings.max_quotes, page=row["page"], embedder=embedder))
    scored = [(row, a, sig) for row, (a, sig) in zip(rows, out) if sig is not None]
    sims = confidence.similarities(embedder, [(row["searched"], a, bool(sig["follow_up"])) for row, a, sig in scored])
    for (_, a, sig), x in zip(scored, sims):
        sig["similarity"] = x
        sig["doc_len"] = confidence.doc_len(loaded, a)
    return out


def examples(data: Path, cache: Path, settings, n_squad: int, n_selqa: int, n_turns: int, seed: int,
             reader_card: dict | None = None, n_paragraphs: int = PARAGRAPHS,
             follow_ups: bool = FOLLOW_UPS) -> list[dict]:
    """Every held-out question as ``{source, group, right, signals}`` (signals None: nothing to answer with); held
    out from ``reader_card``'s training. ``n_paragraphs`` (-1: all, 0: none) also asks that many of the SQuAD questions over
    the same articles cut into one short file per paragraph (source "paragraphs", grouped with their article):
    short articles with unanswerable questions, which SelQA's short sections lack. ``follow_ups`` also asks them
    as factoid follow-ups (:data:`FOLLOW_UPS`)."""
    reader_card = reader_card or {}
    from qa.evaluation import (
        chat_history,
        cites_gold,
        factoid_follow_ups,
        load_selqa,
        load_squad,
        load_turns,
        selqa_right,
        squad_right,
        tuning_turns,
        write_corpus,
    )

    cache.mkdir(parents=True, exist_ok=True)
    out = []
    articles = load_squad(data / "squad2-dev-15-tuning-articles.json")[TRAIN_TUNING_ARTICLES:]
    squad = write_corpus(articles, cache / "squad-docs")
    article_of = {q.id: q.source for q in squad}
    if follow_ups:
        pairs = factoid_follow_ups(squad, unanswerable=True)
        rows = collect("follow_ups", [{"id": f"follow-{q2.id}", "question": asked,
                                       "history": [[q1.question, q1.golds[0][2]]]} for q1, q2, asked in pairs],
                       cache / "squad-docs", cache, settings, index="squad")  # the same articles: one index
        for (_, q2, _), (a, sig) in zip(pairs, replay(rows, cache / "squad-index", settings)):
            out.append({"source": "follow_ups", "group": f"squad:{q2.source}", "right": squad_right(a, q2),
                        "signals": sig, "answerable": not q2.impossible, "judged": True})
    if n_squad:
        squad = random.Random(seed).sample(squad, min(n_squad, len(squad)))
    rows = collect("squad", [{"id": q.id, "question": q.question} for q in squad], cache / "squad-docs", cache,
                   settings)
    for q, (a, sig) in zip(squad, replay(rows, cache / "squad-index", settings)):
        out.append({"source": "squad", "group": f"squad:{q.source}", "right": squad_right(a, q), "signals": sig,
                    "answerable": not q.impossible, "judged": True})
    if n_paragraphs:
        paragraphs = write_corpus(one_file_per_paragraph(articles), cache / "paragraphs-docs")
        if n_paragraphs > 0:
            paragraphs = random.Random(seed).sample(paragraphs, min(n_paragraphs, len(paragraphs)))
        rows = collect("paragraphs", [{"id": q.id, "question": q.question} for q in paragraphs],
                       cache / "paragraphs-docs", cache, settings)
        for q, (a, sig) in zip(paragraphs, replay(rows, cache / "paragraphs-index", settings)):
            out.append({"source": "paragraphs", "group": f"squad:{article_of[q.id]}", "right": squad_right(a, q),
                        "signals": sig, "answerable": not q.impossible, "judged": True})

    selqa = load_selqa(data / "selqa" / "selqa-ass-dev.json", cache / "selqa-docs")
    ids = [f"selqa-{i}" for i in range(len(selqa))]
    pairs = list(zip(ids, selqa))
    if "selqa/selqa-ass-dev.json" in reader_card.get("data", {}):  # its sentence head trained on half of them
        from .train_reader import selqa_for_training

        pairs = [(i, q) for i, q in pairs if not selqa_for_training(q.article)]
    if n_selqa:
        pairs = random.Random(seed).sample(pairs, min(n_selqa, len(pairs)))
    rows = collect("selqa", [{"id": i, "question": q.question} for i, q in pairs], cache / "selqa-docs", cache,
                   settings)
    for (_, q), (a, sig) in zip(pairs, replay(rows, cache / "selqa-index", settings)):
        out.append({"source": "selqa", "group": f"selqa:{q.article}", "right": selqa_right(a, q), "signals": sig,
                    "answerable": True, "judged": a.shape == "quotes"})

    folder = data / "doc2dial-dmv-va"
    turns = tuning_turns(load_turns(folder), n_turns)  # never the public sample
    rows = collect("doc2dial", [{"id": t.id, "question": t.question, "history": chat_history(t)} for t in turns],
                   folder / "documents", cache, settings)
    for t, (a, sig) in zip(turns, replay(rows, cache / "doc2dial-index", settings)):
        out.append({"source": "doc2dial", "group": f"doc2dial:{t.source}", "right": not a.abstained
                    and cites_gold(a.citations, t), "signals": sig, "answerable": True,
                    "judged": a.shape == "quotes"})
    return out


def one_file_per_paragraph(articles: list[dict]) -> list[dict]:
    """SQuAD-format articles cut into one article per paragraph (for ``qa.evaluation.write_corpus``): short
    articles, each with its own questions."""
    return [{"title": f"{a['title']} {i}", "paragraphs": [p]} for a in articles for i, p in enumerate(a["paragraphs"])]


def fit(rows: list[dict], features: tuple[str, ...], c: float = 1.0) -> dict:
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    x = np.array([[r["signals"][f] for f in features] for r in rows], dtype=float)
    y = np.array([r["right"] for r in rows], dtype=int)
    mean, scale = x.mean(0), x.std(0)
    scale[scale == 0] = 1.0
    m = LogisticRegression(C=c, max_iter=1000).fit((x - mean) / scale, y)
    return {"features": list(features), "mean": [round(float(v), 6) for v in mean],
            "scale": [round(float(v), 6) for v in scale], "coef": [round(float(v), 6) for v in m.coef_[0]],
            "intercept": round(float(m.intercept_[0]), 6)}


def predict(model: dict, sig: dict) -> float:
    """The confidence the answer path would show with ``model`` (qa.confidence.confidence_of)."""
    from qa.confidence import confidence_of

    return confidence_of(sig, model)


def refusal_point(scored: list[tuple[float, dict]], false_refusals: float) -> float:
    """The confidence below which ``false_refusals`` of the answerable questions are refused (those with nothing
    to answer with are refused whatever the setting, and count)."""
    ans = sorted(p for p, r in scored if r["answerable"])
    return ans[min(len(ans) - 1, max(0, int(false_refusals * len(ans))))] if ans else 0.0


def figures(scored: list[tuple[float, dict]], floor: float) -> dict:
    """Refusals and calibration at ``floor`` for ``(confidence, row)`` pairs, per source and together."""
    from qa.evaluation import reliability

    out = {}
    for name in ("all", *SOURCES):
        mine = [(p, r) for p, r in scored if name in ("all", r["source"])]
        if not mine:
            continue
        ans = [(p, r) for p, r in mine if r["answerable"]]
        imp = [(p, r) for p, r in mine if not r["answerable"]]
        given = [(p, r["right"]) for p, r in mine if p >= floor and r["judged"]]
        out[name] = {
            "questions": len(mine),
            "false_refusals": round(sum(p < floor for p, _ in ans) / max(1, len(ans)), 4),
            "refused_unanswerable": round(sum(p < floor for p, _ in imp) / len(imp), 4) if imp else None,
            "right_when_answered": round(sum(ok for _, ok in given) / max(1, len(given)), 4),
            "calibration_all": reliability([(p, r["right"]) for p, r in mine if r["judged"]]),
            "calibration_answered": reliability(given),
        }
    return out


def article_folds(rows: list[dict], folds: int, seed: int) -> dict[str, int]:
    """Each article's fold (a row's ``group``), dealt out source by source (the group's prefix, so that a SQuAD
    article cut into paragraphs is in the fold of the whole article), so that each fold holds about a ``folds``-th
    of each source's articles (with 5 folds, one SQuAD tuning article each): a fold's SQuAD figures are then one
    article's."""
    fold_of: dict[str, int] = {}
    for family in sorted({r["group"].split(":")[0] for r in rows}):
        groups = sorted({r["group"] for r in rows if r["group"].split(":")[0] == family})
        random.Random(seed).shuffle(groups)
        fold_of.update({g: i % folds for i, g in enumerate(groups)})
    return fold_of


def cross_validate(rows: list[dict], features: tuple[str, ...], folds: int, seed: int, false_refusals: float,
                   c: float = 1.0) -> tuple[list[dict], list[tuple[float, dict]]]:
    """Each fold's figures, and every row scored by the model fitted without its article's fold (rows with nothing
    to answer with left out: they are refused at any threshold)."""
    usable = [r for r in rows if r["signals"] is not None]
    nothing = [(0.0, r) for r in rows if r["signals"] is None]
    fold_of = article_folds(usable, folds, seed)
    out, scored_cv = [], []
    for k in range(folds):
        train = [r for r in usable if fold_of[r["group"]] != k]
        test = [r for r in usable if fold_of[r["group"]] == k]
        model = fit([r for r in train if r["judged"]], features, c)
        floor = refusal_point([(predict(model, r["signals"]), r) for r in train]
                              + [(0.0, r) for r in nothing if fold_of.get(r["group"], -1) != k], false_refusals)
        held = [(predict(model, r["signals"]), r) for r in test]
        scored_cv += held
        out.append({"fold": k, "min_confidence": round(floor, 4), **{
            name: {key: f[key] for key in ("questions", "false_refusals", "refused_unanswerable")}
            | {"ece_answered": f["calibration_answered"]["ece"]}
            for name, f in figures(held, floor).items()}})
    return out, scored_cv


def main(argv=None) -> None:
    from qa.confidence import SIGNALS
    from qa.config import Settings

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(DATA), help="folder with the SQuAD, SelQA and doc2dial files")
    ap.add_argument("--cache", help="cached readings and indexes (resumable; default ~/.cache/qa/confidence/ and "
                                    "the reader's sha256 (12 digits), reader_batch and reader_overlap: readings are "
                                    "the reader's own)")
    ap.add_argument("--squad", type=int, default=0, help="sample this many SQuAD tuning questions (0: all)")
    ap.add_argument("--selqa", type=int, default=0, help="sample this many SelQA dev questions (0: all)")
    ap.add_argument("--turns", type=int, default=400, help="doc2dial tuning turns")
    ap.add_argument("--paragraphs", type=int, default=PARAGRAPHS,
                    help="ask this many SQuAD tuning questions over their articles cut into one file per paragraph "
                         "(-1: all, 0: none)")
    ap.add_argument("--follow-ups", action=argparse.BooleanOptionalAction, default=FOLLOW_UPS,
                    help="also ask the SQuAD tuning questions as factoid follow-ups")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--false-refusals", type=float, default=0.10,
                    help="min_confidence refuses this share of the held-out answerable questions")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--features", nargs="+", default=list(FEATURES), choices=SIGNALS,
                    help="the signals the model weighs")
    ap.add_argument("--c", type=float, default=C,
                    help="inverse regularisation strength of the logistic regression (scikit-learn's C)")
    ap.add_argument("--dry-run", action="store_true", help="print the figures, write nothing")
    ap.add_argument("--out", type=Path, default=OUT,
                    help="where to write the model (default: the shipped qa/weights/confidence.json); for another "
                         "reader (QA_READER), write elsewhere and answer with QA_CONFIDENCE=that file")
    args = ap.parse_args(argv)
    settings = Settings.from_env(progress=False, min_confidence=0.0)
    from qa import confidence
    from qa.reading import PACKAGED_READER, card

    reader_path = HERE / "reader.int8.onnx" if settings.reader == PACKAGED_READER else Path(settings.reader)
    reader_card = card(reader_path)
    sha = reader_card["sha256"]  # the reader QA_READER names, whose readings these are
    # Readings depend on the reader, its window overlap, what one run reads together (Settings.reader_batch) and
    # which passages the search and reranking put in front (Settings.sentence_weight, rerank, rerank_weight).
    args.cache = args.cache or str(CACHE / reading_key(sha, settings))
    t0 = time.time()
    rows = examples(Path(args.data), Path(args.cache), settings, args.squad, args.selqa, args.turns, args.seed,
                    reader_card, args.paragraphs, args.follow_ups)
    usable = [r for r in rows if r["signals"] is not None]
    nothing = [(0.0, r) for r in rows if r["signals"] is None]
    features = tuple(args.features)
    folds, scored_cv = cross_validate(rows, features, args.folds, args.seed, args.false_refusals, args.c)
    model = fit([r for r in usable if r["judged"]], features, args.c)
    scored = [(predict(model, r["signals"]), r) for r in usable] + nothing
    floor = refusal_point(scored, args.false_refusals)
    spread = {key: [f["all"][key] for f in folds] for key in ("false_refusals", "refused_unanswerable", "ece_answered")}
    spread["ece_answered_by_source"] = {name: [f[name]["ece_answered"] for f in folds if name in f]
                                        for name in SOURCES}
    card = {
        "name": "qa answer confidence",
        "made_by": "python -m qa.weights.fit_confidence",
        "model": model,
        "min_confidence": round(floor, 4),
        "right_means": "SQuAD: short answer F1 >= 0.5 against a gold answer or holding one, quotes covering a gold "
                       "answer; SelQA: a citation covering half an answer sentence; doc2dial: a citation "
                       "overlapping the grounding span; unanswerable: never",
        "data": {"squad": "squad2-dev-15-tuning-articles.json, the 5 articles held out from reader training",
                 "selqa": "selqa/selqa-ass-dev.json", "doc2dial": f"doc2dial-dmv-va, {args.turns} later turns outside "
                 "the public sample (qa.evaluation.tuning_turns, seed 5)",
                 "paragraphs": f"{args.paragraphs if args.paragraphs > 0 else 'all'} of those questions over the "
                               "same articles cut into one file per paragraph" if args.paragraphs else "none",
                 "follow_ups": "those questions as factoid follow-ups (qa.evaluation.factoid_follow_ups), each asked "
                               "after the earlier question and its gold answer" if args.follow_ups else "none",
                 "questions": {s: sum(r["source"] == s for r in rows) for s in SOURCES},
                 "fitted_on": {s: sum(r["source"] == s and r["judged"] and r["signals"] is not None for r in rows)
                               for s in SOURCES},
                 "never_read": "squad2-dev-5-articles.json, selqa-ass-test.json, doc2dial's public sample, covid-qa"},
        "seed": args.seed, "false_refusal_target": args.false_refusals, "c": args.c,
        "cross_validation": {"folds": folds, "spread": spread,
                             "pooled": figures(scored_cv + nothing, floor)},
        "fitted": figures(scored, floor),
        "reader_sha256": sha,
        "reading": dict(confidence.reading_settings(settings)),  # calibrator() warns when the answer's differ
        "fitted_with": hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16],
        "seconds": round(time.time() - t0),
    }
    text = json.dumps(card, indent=2) + "\n"
    pooled = card["cross_validation"]["pooled"]
    print(f"features {' '.join(features)}; C {args.c}; min_confidence {card['min_confidence']}; cross-validated by article:",
          file=sys.stderr)
    for name, f in pooled.items():
        print(f"  {name:9} false refusals {f['false_refusals']:.3f}  refused unanswerable "
              f"{f['refused_unanswerable'] if f['refused_unanswerable'] is not None else '-'}  ECE all "
              f"{f['calibration_all']['ece']:.3f} answered {f['calibration_answered']['ece']:.3f}  wrong at 90 %+ "
              f"{f['calibration_answered']['wrong_at_90_or_more']:.3f}", file=sys.stderr)
    if args.dry_run:
        print(text)
        return
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=args.out.parent, delete=False, suffix=".tmp", encoding="utf-8") as f:
        f.write(text)
    Path(f.name).replace(args.out)
    print(text)


if __name__ == "__main__":
    main()
