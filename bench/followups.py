"""Follow-up search on doc2dial: what to add to a later turn's question, top-5 hits, tuning turns and the public ones.

    python bench/followups.py [../shared/data/doc2dial-dmv-va] [VARIANT ...]

Tuning turns: 200 later turns (seed 5) outside the public figure's seed-7 sample of 120 later + 40 first turns;
the public 120 are shown beside them. A hit is a passage of the right page covering half a gold span.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qa.config import Settings  # noqa: E402
from qa.embeddings import get_embedder  # noqa: E402
from qa.evaluation import chat_history, dialogue_hit, load_turns, sample_turns, tuning_turns  # noqa: E402
from qa.index import build_index, ensure_index  # noqa: E402
from qa.questions import needs_context, rewrite_follow_up  # noqa: E402
from qa.search import search_many  # noqa: E402

VARIANTS = {
    "shipped": lambda t: rewrite_follow_up(t.question, chat_history(t), None)[0],
    "alone": lambda t: t.question,
    "alone if standalone": lambda t: (rewrite_follow_up(t.question, chat_history(t), None)[0]
                                      if needs_context(t.question) else t.question),
    "+previous": lambda t: f"{t.question} ({t.said('user')[-1]})" if t.said('user') else t.question,
    "+all users": lambda t: f"{t.question} ({' '.join(t.said('user'))})",
    "+all users +agent": lambda t: f"{t.question} ({' '.join(t.said('user'))} {t.said('agent')[-1] if t.said('agent') else ''})",
    "+agent": lambda t: f"{t.question} ({t.said('agent')[-1] if t.said('agent') else ''})",
}


def main() -> None:
    args = sys.argv[1:]
    folder = args.pop(0) if args and Path(args[0]).is_dir() else str(ROOT.parent / "shared/data/doc2dial-dmv-va")
    s = Settings.from_env(progress=False, rerank=0)  # retrieval alone: the variants differ in what is searched
    turns = load_turns(folder)
    later, _ = sample_turns(turns, 120, 40, 7)  # the public figure's later turns, reported beside
    tune = tuning_turns(turns, 200)
    with tempfile.TemporaryDirectory() as tmp:
        build_index(Path(folder) / "documents", Path(tmp) / "index", settings=s)
        loaded, emb = ensure_index(Path(tmp) / "index", s), get_embedder(s)
        for name in args or VARIANTS:
            row = []
            for ts in (tune, later):
                found = search_many(loaded, emb, [VARIANTS[name](t) for t in ts], 5, s)
                row.append(sum(any(dialogue_hit(p, t) for p in r) for r, t in zip(found, ts)) / len(ts))
            print(f"{name:<20} tuning {row[0]:.3f}   public {row[1]:.3f}", flush=True)


if __name__ == "__main__":
    main()
