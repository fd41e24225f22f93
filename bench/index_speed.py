"""Full build vs unchanged rebuild, as a user runs them: `qa index` in a fresh process each time.

    python bench/index_speed.py [DOCS_DIR ...]   (default: seeds/ and the shared SQuAD articles)

Prints the median of 3 runs of each and their ratio. A full build starts from an empty index folder.
"""

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SQUAD = ROOT.parent / "shared/data/squad2-dev-5-articles.json"
RUNS = 3


def qa_index(docs: Path, idx: Path) -> tuple[float, dict]:
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "qa", "index", "--docs", str(docs), "--index", str(idx), "--json"],
                         capture_output=True, text=True, check=True, env={"QA_PROGRESS": "0", "HF_HUB_OFFLINE": "1",
                                                                          "PATH": "/usr/bin:/bin"})
    return time.perf_counter() - t0, json.loads(out.stdout)


def corpora(tmp: Path) -> dict[str, Path]:
    if len(sys.argv) > 1:
        return {p: Path(p) for p in sys.argv[1:]}
    got = {"seeds (3 articles)": ROOT / "seeds"}
    if SQUAD.exists():
        sys.path.insert(0, str(ROOT))
        from qa.evaluation import load_squad, write_corpus

        write_corpus(load_squad(SQUAD), tmp / "squad")
        got["SQuAD 5 articles"] = tmp / "squad"
    return got


with tempfile.TemporaryDirectory() as t:
    tmp = Path(t)
    print(f"{'corpus':<20} {'chunks':>6} {'full s':>8} {'unchanged s':>12} {'ratio':>6}  embedded (unchanged)")
    for name, docs in corpora(tmp).items():
        full, again, stats = [], [], {}
        for i in range(RUNS):
            idx = tmp / f"idx{i}"
            shutil.rmtree(idx, ignore_errors=True)
            s, stats = qa_index(docs, idx)
            full.append(s)
            s, again_stats = qa_index(docs, idx)
            again.append(s)
        f, a = statistics.median(full), statistics.median(again)
        print(f"{name:<20} {stats['chunks']:>6} {f:>8.2f} {a:>12.2f} {a / f:>6.1%}  {again_stats['chunks_embedded']}")
