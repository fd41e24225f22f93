"""A big corpus: does the confidence still refuse what the articles don't say when many other articles sit beside
them? A SQuAD 2.0 file's articles indexed among ``--distractors`` other Wikipedia articles (SQuAD 1.1 train, their
text only, seed 3), a sample of its answerable and unanswerable questions asked once through the answer path; each
confidence model is then applied to the same readings, with the figures of bench/short_articles.py.

    python bench/big_corpus.py [../shared/data/squad2-dev-5-articles.json] [--questions 300] [--distractors 120]
                               [--models A.json B.json ...] [--cache DIR]

``--distractors 0`` asks the same questions over the file's articles alone, the baseline. The readings are cached
under ``--cache`` (default: a temporary folder; about 0.3 s a question, with or without the others).
"""

from __future__ import annotations

import random
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from short_articles import arguments, report  # noqa: E402

from qa.config import Settings  # noqa: E402
from qa.evaluation import load_squad, write_corpus  # noqa: E402
from qa.weights import fit_confidence as fc  # noqa: E402

DATA = ROOT.parent / "shared/data"


def main(argv=None) -> None:
    ap = arguments(__doc__)
    ap.add_argument("--questions", type=int, default=300, help="answerable and as many unanswerable (seed 13)")
    ap.add_argument("--distractors", type=int, default=120, help="other Wikipedia articles indexed beside them")
    args = ap.parse_args(argv)
    settings = Settings.from_env(progress=False, min_confidence=0.0)
    with tempfile.TemporaryDirectory() as tmp:
        cache = args.cache or Path(tmp)
        qs = write_corpus(load_squad(args.squad), cache / "docs")
        others = random.Random(3).sample(load_squad(DATA / "squad1.1-train.json"), args.distractors)
        write_corpus([{"title": f"other_{a['title']}", "paragraphs": [{"context": p["context"]} for p in a["paragraphs"]]}
                      for a in others], cache / "docs")
        rng = random.Random(13)
        qs = (rng.sample([q for q in qs if not q.impossible], args.questions)
              + rng.sample([q for q in qs if q.impossible], args.questions))
        rows = fc.collect("big", [{"id": q.id, "question": q.question} for q in qs], cache / "docs", cache, settings)
        out = fc.replay(rows, cache / "big-index", settings)
    print(f"{args.squad} among {args.distractors} other articles: {len(qs)} questions, half unanswerable")
    report(args.models, qs, out)


if __name__ == "__main__":
    main()
