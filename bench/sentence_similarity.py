"""Would the embedder's question-sentence similarity help the reader choose the sentence an answer cites?

    python bench/sentence_similarity.py [--turns 500] [--questions 0]

Tuning data only: doc2dial dmv-va later turns (seed 5) outside the public figure's seed-7 sample, searched and read
as `qa.answer` reads a follow-up, and (with ``--questions N``) N answerable questions of the 5 held-out SQuAD 2.0
tuning articles. For every evidence sentence the answer path could cite it records the reader's relevance, its
passage's rank and the cosine similarity of the embedder's vectors of the question and the sentence. It then picks
the sentence by ``relevance - rank_penalty * rank + weight * cosine`` and prints how often the first choice, and
any of the first three, overlaps the gold span, for each weight (0 is today's rule), with the ceiling: how often
any evidence sentence does.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qa.answering import read_evidence  # noqa: E402
from qa.config import Settings  # noqa: E402
from qa.embeddings import get_embedder  # noqa: E402
from qa.evaluation import chat_history, cites_gold, load_squad, load_turns, tuning_turns, write_corpus  # noqa: E402
from qa.evidence import SHORTEST_QUOTE, evidence_from, thresholds  # noqa: E402
from qa.index import build_index, ensure_index  # noqa: E402
from qa.questions import reader_text, rewrite_follow_up  # noqa: E402
from qa.reading import get_reader  # noqa: E402
from qa.weights.train_reader import DATA, TRAIN_TUNING_ARTICLES  # noqa: E402

WEIGHTS = (0, 2, 5, 10, 20, 50)


def sentences(question, evidence, hits, emb) -> np.ndarray:
    """(relevance, passage rank, cosine, hit) per evidence sentence of SHORTEST_QUOTE words or more."""
    keep = [(e, h) for e, h in zip(evidence, hits) if len(e.text.split()) >= SHORTEST_QUOTE]
    if not keep:
        return np.zeros((0, 4))
    v = emb.encode([question] + [e.text for e, _ in keep])
    return np.array([[e.relevance, e.passage, float(v[0] @ v[i + 1]), float(h)] for i, (e, h) in enumerate(keep)])


def collect(turns: int, questions: int) -> dict[str, list[np.ndarray]]:
    s = Settings.from_env(progress=False)
    out: dict[str, list[np.ndarray]] = {"doc2dial turns": [], "SQuAD questions": []}
    with tempfile.TemporaryDirectory() as tmp:
        emb, reader = get_embedder(s), get_reader(s)
        folder = DATA / "doc2dial-dmv-va"
        all_turns = load_turns(folder)
        tune = tuning_turns(all_turns, turns)
        build_index(folder / "documents", Path(tmp) / "d", settings=s)
        loaded = ensure_index(Path(tmp) / "d", s)
        for t in tune:
            history = chat_history(t)
            searched, reader_q = rewrite_follow_up(t.question, history, None)
            ps, rs = read_evidence(searched, reader_text(reader_q, history), loaded, emb, reader, s)
            ev = evidence_from(ps, rs, loaded)
            out["doc2dial turns"].append(sentences(reader_q, ev, [cites_gold([e], t) for e in ev], emb))
        if questions:
            arts = load_squad(DATA / "squad2-dev-15-tuning-articles.json")[TRAIN_TUNING_ARTICLES:]
            qs = [q for q in write_corpus(arts, Path(tmp) / "docs") if not q.impossible]
            build_index(Path(tmp) / "docs", Path(tmp) / "sq", settings=s)
            loaded = ensure_index(Path(tmp) / "sq", s)
            for q in random.Random(2).sample(qs, min(questions, len(qs))):
                ps, rs = read_evidence(q.question, q.question, loaded, emb, reader, s)
                ev = evidence_from(ps, rs, loaded)
                hits = [e.source == q.source and any(e.start <= a and b <= e.end for a, b, _ in q.golds) for e in ev]
                out["SQuAD questions"].append(sentences(q.question, ev, hits, emb))
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--turns", type=int, default=500)
    ap.add_argument("--questions", type=int, default=0)
    args = ap.parse_args(argv)
    pen = thresholds()["rank_penalty"]
    for name, rows in collect(args.turns, args.questions).items():
        rows = [r for r in rows if len(r)]
        if not rows:
            continue
        print(f"{name}: {len(rows)}; any evidence sentence overlaps the gold: {np.mean([r[:, 3].max() for r in rows]):.3f}")
        for w in WEIGHTS:
            order = [np.argsort(-(r[:, 0] - pen * r[:, 1] + w * r[:, 2]), kind="stable") for r in rows]
            first = np.mean([r[o[0], 3] for r, o in zip(rows, order)])
            three = np.mean([r[o[:3], 3].max() for r, o in zip(rows, order)])
            print(f"  weight {w:>2}{' (today)' if w == 0 else '        '}  first choice {first:.3f}   any of the "
                  f"first three {three:.3f}")


if __name__ == "__main__":
    main()
