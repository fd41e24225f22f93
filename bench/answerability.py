"""Can a learned answerability model refuse more unanswerable factoid questions than the reader's margin alone?

    python bench/answerability.py [--questions 0]   # all 1,801 held-out tuning questions: about 35 min here

On the 5 SQuAD 2.0 tuning articles the reader never trained on (qa/weights/train_reader.py holds them out), each
factoid question goes through the real answer path (index, search, rerank, reader, evidence). Per question it
records what the answer path knows when it decides: the chosen sentence's relevance (the margin compared with the
threshold today), the reader's "no answer" scores over the passages, the runner-up sentences, how much of the
question the sentence covers, the answer span's length and overlap with the question, the question's length and
the retrieval scores. A logistic regression (and gradient-boosted trees) over them is scored by leave-one-article-
out cross-validation against the margin alone: AUC, and unanswerable questions refused where 10 % and 12 % of
answerable ones are, thresholds pooled over the out-of-fold scores.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qa.answering import read_evidence  # noqa: E402
from qa.config import Settings  # noqa: E402
from qa.embeddings import get_embedder  # noqa: E402
from qa.evaluation import load_squad, write_corpus  # noqa: E402
from qa.evidence import ranked_evidence  # noqa: E402
from qa.index import build_index, ensure_index  # noqa: E402
from qa.questions import WORD, content_words, descriptive  # noqa: E402
from qa.reading import get_reader  # noqa: E402
from qa.weights.train_reader import DATA, TRAIN_TUNING_ARTICLES  # noqa: E402

READER = ["rel", "null", "second", "npos", "best_margin", "mean_null", "min_null", "close", "rank"]
LEXICAL = ["qcover", "ans_in_q", "ans_words"]
SETS = {"margin alone": ["rel"], "reader scores": READER, "reader + lexical": READER + LEXICAL,
        "+ question length": READER + LEXICAL + ["qlen"],
        "+ retrieval scores": READER + LEXICAL + ["qlen", "dense", "bm25", "dense0", "bm250"]}


def features(question, passages, readings, evidence) -> dict[str, float]:
    top = evidence[0]
    ans = top.text[top.answer_start - top.start:top.answer_end - top.start]
    qw = content_words(question)
    return {"rel": top.relevance, "null": readings[top.passage].null,
            "second": evidence[1].relevance if len(evidence) > 1 else top.relevance - 10,
            "npos": sum(r.margin > 0 for r in readings), "best_margin": max(r.margin for r in readings),
            "mean_null": float(np.mean([r.null for r in readings])), "min_null": min(r.null for r in readings),
            "close": sum(e.relevance > top.relevance - 1.0 for e in evidence[1:]), "rank": top.passage,
            "qcover": len(qw & content_words(top.text)) / max(1, len(qw)),
            "ans_in_q": len(content_words(ans) & qw) / max(1, len(content_words(ans))),
            "ans_words": len(ans.split()), "qlen": len(WORD.findall(question)),
            "dense": passages[top.passage].dense, "bm25": passages[top.passage].bm25,
            "dense0": passages[0].dense, "bm250": passages[0].bm25}


def collect(n: int) -> list[dict]:
    s = Settings.from_env(progress=False)
    rows, t0 = [], time.time()
    with tempfile.TemporaryDirectory() as tmp:
        arts = load_squad(DATA / "squad2-dev-15-tuning-articles.json")[TRAIN_TUNING_ARTICLES:]
        qs = [q for q in write_corpus(arts, Path(tmp) / "docs") if not descriptive(q.question)]
        if n:
            qs = random.Random(13).sample(qs, min(n, len(qs)))
        build_index(Path(tmp) / "docs", Path(tmp) / "index", settings=s)
        loaded, emb, reader = ensure_index(Path(tmp) / "index", s), get_embedder(s), get_reader(s)
        for i, q in enumerate(qs, 1):
            passages, readings = read_evidence(q.question, q.question, loaded, emb, reader, s)
            evidence = ranked_evidence(passages, readings, loaded)
            if evidence:
                rows.append({"source": q.source, "answerable": not q.impossible,
                             **features(q.question, passages, readings, evidence)})
            if i % 200 == 0:
                print(f"  {i}/{len(qs)} questions, {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
    return rows


def out_of_fold(rows, names, kind):
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    x = np.array([[float(r[f]) for f in names] for r in rows])
    y = np.array([r["answerable"] for r in rows])
    src = np.array([r["source"] for r in rows])
    out = np.zeros(len(rows))
    for s in sorted(set(src)):
        tr, te = src != s, src == s
        mu, sd = x[tr].mean(0), x[tr].std(0) + 1e-9
        if kind == "logistic":
            out[te] = LogisticRegression(max_iter=3000).fit((x[tr] - mu) / sd, y[tr]).decision_function((x[te] - mu) / sd)
        else:
            m = HistGradientBoostingClassifier(max_depth=3, max_iter=150, learning_rate=0.05, random_state=0)
            out[te] = m.fit(x[tr], y[tr]).predict_proba(x[te])[:, 1]
    return out


def main(argv=None) -> None:
    from sklearn.metrics import roc_auc_score

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--questions", type=int, default=0, help="sample this many factoid questions (0: all)")
    args = ap.parse_args(argv)
    rows = collect(args.questions)
    y = np.array([r["answerable"] for r in rows])
    print(f"{len(rows)} factoid questions ({(~y).sum()} unanswerable), 5 held-out articles, leave-one-article-out")
    for name, names in SETS.items():
        for kind in (["logistic"] if name != "+ retrieval scores" else ["logistic", "boosted trees"]):
            sc = np.array([r["rel"] for r in rows]) if name == "margin alone" else out_of_fold(rows, names, kind)
            refused = [(sc[~y] < np.sort(sc[y])[int(fr * y.sum())]).mean() for fr in (0.10, 0.12)]
            label = name if name == "margin alone" else f"{name} ({kind})"
            print(f"  {label:42} AUC {roc_auc_score(y, sc):.3f}   refuses unanswerable {refused[0]:.3f} at 0.10 "
                  f"false refusals, {refused[1]:.3f} at 0.12")


if __name__ == "__main__":
    main()
