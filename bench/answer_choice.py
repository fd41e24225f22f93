"""How the answer path picks its evidence, on held-out SQuAD 2.0 tuning questions (never the public test set).

    python bench/answer_choice.py [--answerable 300] [--impossible 300]

Reads every question once through the real path (index, search, rerank, reader) and then replays the choice of
evidence offline under variants of `qa.answering.compose`: the rank penalty, what a sentence is scored by, and
the abstention threshold re-fitted per variant so that each refuses the same share of answerable questions. Prints
F1, citation accuracy and abstention per variant, side by side.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from qa.answering import read_evidence  # noqa: E402
from qa.config import Settings  # noqa: E402
from qa.embeddings import get_embedder  # noqa: E402
from qa.evaluation import f1_score, load_squad, write_corpus  # noqa: E402
from qa.evidence import evidence_from  # noqa: E402
from qa.index import build_index, ensure_index  # noqa: E402
from qa.questions import _FACTOID, descriptive  # noqa: E402
from qa.reading import get_reader  # noqa: E402
from qa.weights.train_reader import DATA, TRAIN_TUNING_ARTICLES  # noqa: E402


def collect(n_ans: int, n_imp: int, seed: int):
    settings = Settings.from_env()
    articles = load_squad(DATA / "squad2-dev-15-tuning-articles.json")[TRAIN_TUNING_ARTICLES:]
    work = Path(tempfile.mkdtemp(prefix="qa-choice-"))
    questions = write_corpus(articles, work / "docs")
    build_index(work / "docs", work / "index", settings=settings)
    rng = random.Random(seed)
    ans = [q for q in questions if not q.impossible]
    imp = [q for q in questions if q.impossible]
    chosen = rng.sample(ans, min(n_ans, len(ans))) + rng.sample(imp, min(n_imp, len(imp)))
    loaded = ensure_index(work / "index", settings)
    embedder, reader = get_embedder(settings), get_reader(settings)
    rows = []
    for i, q in enumerate(chosen):
        passages, readings = read_evidence(q.question, q.question, loaded, embedder, reader, settings)
        rows.append((q, passages, readings, evidence_from(passages, readings, loaded)))
        if (i + 1) % 100 == 0:
            print(f"  {i + 1}/{len(chosen)} read", file=sys.stderr, flush=True)
    return rows


def replay(rows, key, quotes_rule, false_refusals: float, longest: int = 15):
    """F1 / citation / abstention when evidence is ranked by ``key(e, passages, readings)``."""
    picked = []
    for q, passages, readings, ev in rows:
        if not ev:
            picked.append((q, None, -1e9, False))
            continue
        top = max(ev, key=lambda e: key(e, passages, readings))
        picked.append((q, top, key(top, passages, readings), quotes_rule(q.question)))
    scores = sorted(s for q, _, s, _ in picked if not q.impossible)
    floor = scores[min(len(scores) - 1, int(false_refusals * len(scores)))]
    f1s, cited, refused_imp, n_imp = [], [], 0, 0
    for q, top, s, quotes in picked:
        if q.impossible:
            n_imp += 1
            refused_imp += s < floor
            continue
        if top is None or s < floor:
            f1s.append(0.0)
            continue
        short = top.text[top.answer_start - top.start:top.answer_end - top.start]
        text = top.text if quotes or len(short.split()) > longest else short
        f1s.append(max(f1_score(text, g) for _, _, g in q.golds))
        cited.append(top.source == q.source and any(top.start <= a and b <= top.end for a, b, _ in q.golds))
    return {"f1": statistics.mean(f1s), "citation": statistics.mean(cited) if cited else 0.0,
            "abstention": refused_imp / max(1, n_imp)}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--answerable", type=int, default=300)
    ap.add_argument("--impossible", type=int, default=300)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--false-refusals", type=float, default=0.12)
    args = ap.parse_args(argv)
    rows = collect(args.answerable, args.impossible, args.seed)
    shaped = sum(descriptive(q.question) for q, *_ in rows if not q.impossible)
    no_wh = sum(not _FACTOID.search(q.question) for q, *_ in rows if not q.impossible)
    print(f"{len(rows)} questions; answerable ones the shape rule quotes: {shaped} (no factoid wh-word: {no_wh})")

    def rel(pen):
        return lambda e, ps, rs: e.relevance - pen * e.passage

    variants = {f"margin - {pen} x rank": (rel(pen), descriptive) for pen in (0.0, 0.5, 1.0, 2.0, 3.0)}
    variants["margin - 1 x rank, short always"] = (rel(1.0), lambda q: False)
    variants["margin + 2 x rerank score"] = (lambda e, ps, rs: e.relevance + 20 * ps[e.passage].score, descriptive)
    variants["span score - 1 x rank"] = (lambda e, ps, rs: e.relevance + rs[e.passage].null - e.passage, descriptive)
    print(f"{'variant':38} {'F1':>6} {'cite':>6} {'abst':>6}   (false refusals {args.false_refusals})")
    for name, (key, rule) in variants.items():
        r = replay(rows, key, rule, args.false_refusals)
        print(f"{name:38} {r['f1']:6.3f} {r['citation']:6.3f} {r['abstention']:6.3f}")


if __name__ == "__main__":
    main()
