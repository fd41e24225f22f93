"""Fit the sentence ranker in sentence_ranker.json: which of the best evidence sentences an answer gives first.

    python -m qa.weights.fit_sentence_ranker [--data DIR] [--cache DIR] [--top 10] [--l2 0.01] [--seed 13]
                                             [--features relevance head ...]

The reader ranks a question's evidence sentences by its best span's margin in each (qa.evidence.ranked_evidence).
Where those margins are close it is often wrong about which sentence answers; other signals, from other models
and from the words themselves, know things it does not. This fits a conditional logit (a softmax over each
question's best ``--top`` sentences, one linear score per sentence) over the nine
:data:`qa.evidence.RANKER_FEATURES` by default (:data:`FEATURES`): the reader's span margin, its sentence head,
the passage's rank, the embedder's cosine of question and sentence, the share of the question's content words the
sentence holds, whether the sentence is itself a question, its length, its place in its passage and the passage's
"no answer" score. The softmax is trained to put its mass on the sentences that answer: on SQuAD, the sentence
holding a gold answer; SelQA, half an answer sentence; doc2dial, part of the grounding span. Questions with no
such sentence among the best teach nothing and are left out.

Held-out data only, the readings ``python -m qa.weights.fit_confidence`` caches (run it first; this reads no
passage again): the 5 SQuAD tuning articles the reader never trained on (answerable questions), the SelQA dev
articles its sentence head never trained on, 400 doc2dial tuning turns. Checked by 5-fold cross-validation grouped
by article (qa.weights.fit_confidence.article_folds): the share of questions whose first sentence answers, today's
order (the reader's) against the ranker's, per source. The shipped ranker is then fitted on all of them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from qa.evidence import RANKER_FEATURES

from .train_reader import DATA, TRAIN_TUNING_ARTICLES

HERE = Path(__file__).resolve().parent
OUT = HERE / "sentence_ranker.json"
SOURCES = ("squad", "selqa", "doc2dial")
#: The features the shipped ranker weighs: all nine. On the readings of 2026-12-07 (a standalone question in a
#: conversation reranked by itself, qa.answering.reranked_by), out of fold, the first sentence answered SQuAD /
#: SelQA / doc2dial 0.864 / 0.861 / 0.380 with the first seven, 0.857 / 0.878 / 0.398 with ``position`` and
#: ``null`` too. (On 2026-12-06's readings the nine failed the seeds' consistency check: the standalone question
#: was reranked with its conversation, its passages' ranks moved, and the third quote of "Why does Turkey oppose
#: the YPG?" did too; docs/benchmarks.md.)
FEATURES = RANKER_FEATURES


def candidates(data: Path, cache: Path, settings, top: int, reader_card: dict) -> list[dict]:
    """Per held-out question: ``{source, group, features: [[...] per sentence], labels: [bool per sentence]}``
    for its best ``top`` evidence sentences in the reader's order (that of ``qa.evidence.ranked_evidence``)."""
    from qa import evidence
    from qa.embeddings import get_embedder
    from qa.evaluation import (
        _overlap,
        chat_history,
        covers,
        load_selqa,
        load_squad,
        load_turns,
        tuning_turns,
        write_corpus,
    )
    from qa.index import ensure_index

    from . import fit_confidence as fc

    embedder = get_embedder(settings)
    out: list[dict] = []

    def add(source: str, items: list[tuple[str, str, dict, object]], docs: Path, name: str, right) -> None:
        rows = fc.collect(name, [{"id": i, "question": q, **extra} for i, q, extra, _ in items], docs, cache, settings)
        loaded = ensure_index(cache / f"{name}-index", settings)
        for (_, _, _, gold), row in zip(items, rows):
            passages, readings = fc._from_row(row)
            ranked = evidence.ranked_evidence(passages, readings, loaded, None, row["page"])[:top]
            if len(ranked) < 2:
                continue
            query = row["searched"] if row["searched"] == row["q"] else row["reader_q"]
            v = embedder.encode([query, *(e.text for e in ranked)])
            asked = evidence.asked_words(row["q"], query)
            out.append({"source": source, "group": f"{source}:{gold.source}" if source != "selqa"
                        else f"selqa:{gold.article}",
                        "features": [evidence.sentence_features(e, float(v[0] @ s), asked)
                                     for e, s in zip(ranked, v[1:])],
                        "labels": [bool(right(e, gold)) for e in ranked]})

    articles = load_squad(data / "squad2-dev-15-tuning-articles.json")[TRAIN_TUNING_ARTICLES:]
    squad = write_corpus(articles, cache / "squad-docs")
    add("squad", [(q.id, q.question, {}, q) for q in squad if not q.impossible], cache / "squad-docs", "squad",
        lambda e, q: any(e.source == q.source and e.start <= a and b <= e.end for a, b, _ in q.golds))

    selqa = load_selqa(data / "selqa" / "selqa-ass-dev.json", cache / "selqa-docs")
    pairs = list(enumerate(selqa))
    if "selqa/selqa-ass-dev.json" in reader_card.get("data", {}):  # its sentence head trained on half of them
        from .train_reader import selqa_for_training

        pairs = [(i, q) for i, q in pairs if not selqa_for_training(q.article)]
    add("selqa", [(f"selqa-{i}", q.question, {}, q) for i, q in pairs if q.golds], cache / "selqa-docs", "selqa",
        lambda e, q: any(covers(e, q.source, a, b, half=True) for a, b in q.golds))

    folder = data / "doc2dial-dmv-va"
    turns = tuning_turns(load_turns(folder), 400)
    add("doc2dial", [(t.id, t.question, {"history": chat_history(t)}, t) for t in turns], folder / "documents",
        "doc2dial", lambda e, t: e.source == t.source and any(_overlap(e, a, b) > 0 for a, b in t.golds))
    return out


def fit(rows: list[dict], l2: float, features: tuple[str, ...]) -> dict:
    """The conditional logit's standardised weights on ``features`` (``features``, ``mean``, ``scale``,
    ``coef``), each source weighing the same in all and each question the same within its source."""
    import numpy as np
    from scipy.optimize import minimize

    rows = [r for r in rows if any(r["labels"])]
    xs = [np.array([[f[n] for n in features] for f in r["features"]], dtype=float) for r in rows]
    allx = np.vstack(xs)
    mean, scale = allx.mean(0), allx.std(0)
    scale[scale == 0] = 1.0
    xs = [(x - mean) / scale for x in xs]
    ys = [np.array(r["labels"], dtype=float) for r in rows]
    per = {s: sum(r["source"] == s for r in rows) for s in SOURCES}
    wt = np.array([1.0 / per[r["source"]] for r in rows])
    wt /= wt.sum()

    def loss(w):
        total, grad = 0.0, np.zeros_like(w)
        for x, y, c in zip(xs, ys, wt):
            z = x @ w
            p = np.exp(z - z.max())
            p /= p.sum()
            mass = float(p @ y)  # the softmax's mass on the sentences that answer
            total -= c * np.log(mass + 1e-12)
            grad -= c * (x.T @ (p * y / (mass + 1e-12) - p))
        return total + l2 * float(w @ w), grad + 2 * l2 * w

    w = minimize(loss, np.zeros(allx.shape[1]), jac=True, method="L-BFGS-B").x
    return {"features": list(features), "mean": [round(float(v), 6) for v in mean],
            "scale": [round(float(v), 6) for v in scale], "coef": [round(float(v), 6) for v in w]}


def chosen(model: dict, features: list[list[float]]) -> int:
    """The sentence ``model`` puts first: its best score, the earlier on a tie (as ``evidence.best_first``'s sort)."""
    from qa.evidence import ranker_score

    scores = [ranker_score(model, f) for f in features]
    return max(range(len(scores)), key=lambda i: (scores[i], -i))


def first_right(rows: list[dict], model: dict | None) -> dict[str, float]:
    """Per source, the share of questions whose first sentence answers: ranked by ``model``, or as the reader
    ranked them (None)."""
    out = {}
    for s in SOURCES:
        mine = [r for r in rows if r["source"] == s]
        hits = []
        for r in mine:
            if model is None:
                hits.append(r["labels"][0])
            else:
                hits.append(r["labels"][chosen(model, r["features"])])
        out[s] = round(sum(hits) / max(1, len(hits)), 4)
    return out


def cross_validate(rows: list[dict], folds: int, seed: int, l2: float,
                   features: tuple[str, ...]) -> tuple[dict[str, float], list[dict]]:
    """The ranker's first-sentence figures out of fold (each row scored by a model fitted without its article's
    fold), and each fold's."""
    from .fit_confidence import article_folds

    fold_of = article_folds(rows, folds, seed)
    judged, per_fold = [], []
    for k in range(folds):
        model = fit([r for r in rows if fold_of[r["group"]] != k], l2, features)
        test = [r for r in rows if fold_of[r["group"]] == k]
        per_fold.append({"fold": k, "reader": first_right(test, None), "ranker": first_right(test, model)})
        for r in test:
            judged.append({**r, "labels": [r["labels"][chosen(model, r["features"])]]})
    return first_right(judged, None), per_fold


def main(argv=None) -> None:
    from qa.config import Settings
    from qa.reading import card, reader_path

    from . import fit_confidence as fc

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(DATA), help="folder with the SQuAD, SelQA and doc2dial files")
    ap.add_argument("--cache", help="fit_confidence's cached readings (default: the shipped reader's folder)")
    ap.add_argument("--top", type=int, default=10, help="how many of the reader's best sentences are ranked again")
    ap.add_argument("--l2", type=float, default=0.01, help="L2 penalty on the standardised weights")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--features", nargs="+", default=list(FEATURES), choices=RANKER_FEATURES,
                    help="the sentence features the ranker weighs")
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--dry-run", action="store_true", help="report the cross-validation, write nothing")
    args = ap.parse_args(argv)
    settings = Settings.from_env(progress=False, min_confidence=0.0)
    reader_card = card(reader_path(settings))
    cache = Path(args.cache) if args.cache else fc.CACHE / fc.reading_key(reader_card["sha256"], settings)
    if not (cache / "squad.jsonl").exists():
        sys.exit(f"No cached readings in {cache}: run python -m qa.weights.fit_confidence first.")
    t0 = time.time()
    rows = candidates(Path(args.data), cache, settings, args.top, reader_card)
    print(f"{len(rows)} questions, {time.time() - t0:.0f} s", file=sys.stderr)
    reader = first_right(rows, None)
    features = tuple(args.features)
    ranker, per_fold = cross_validate(rows, args.folds, args.seed, args.l2, features)
    print(f"first sentence answers, out of fold   {'  '.join(f'{s:>8}' for s in SOURCES)}")
    print(f"  the reader's order                  {'  '.join(f'{reader[s]:8.3f}' for s in SOURCES)}")
    print(f"  the sentence ranker                 {'  '.join(f'{ranker[s]:8.3f}' for s in SOURCES)}")
    model = fit(rows, args.l2, features)
    print("weights (standardised): " + ", ".join(f"{f} {c:+.2f}" for f, c in zip(model["features"], model["coef"])))
    if args.dry_run:
        return
    doc = {
        "what": "qa.evidence.best_first: a conditional logit over each question's best evidence sentences",
        "made_by": "python -m qa.weights.fit_sentence_ranker" + "".join(
            f" --{k} {v}" for k, v in (("top", args.top), ("l2", args.l2), ("seed", args.seed),
                                       ("features", " ".join(features)))),
        "reader_sha256": reader_card["sha256"],
        "top": args.top,
        "model": model,
        "data": {"squad2-dev-15-tuning-articles.json": f"the last {15 - TRAIN_TUNING_ARTICLES} articles "
                                                        "(held out from the reader), answerable questions",
                 "selqa/selqa-ass-dev.json": "the articles the reader's sentence head never trained on",
                 "doc2dial-dmv-va": "400 tuning turns (qa.evaluation.tuning_turns), never the public sample",
                 "questions": {s: sum(r["source"] == s for r in rows) for s in SOURCES}},
        "figures": {"first_sentence_answers_reader_order": reader,
                    "first_sentence_answers_ranker_out_of_fold": ranker, "folds": per_fold},
    }
    Path(args.out).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
