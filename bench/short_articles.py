"""Short articles with unanswerable questions: does the confidence refuse them? A SQuAD 2.0 file's articles cut
into one file per paragraph (about 700 characters, like a Wikipedia summary or a note), every question asked once
through the answer path; each confidence model is then applied to the same readings.

    python bench/short_articles.py [../shared/data/squad2-dev-5-articles.json] [--models A.json B.json ...]

Per model, at its own ``min_confidence``: the answerable questions refused (false refusals), the unanswerable ones
refused, the share right of the answers given and the confidence shown for them, ECE over 5 bins, the wrong answers
shown at 90 % or more, and the share of all questions answered right or rightly refused. Right is
``qa.evaluation.squad_right`` (a short answer with F1 >= 0.5 or holding a gold answer; quotes covering one). The
readings are cached under ``--cache`` (default: a temporary folder, read again each run; about 0.3 s a question).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qa.config import Settings  # noqa: E402
from qa.evaluation import load_squad, reliability, squad_right, write_corpus  # noqa: E402
from qa.weights import fit_confidence as fc  # noqa: E402


def arguments(doc: str) -> argparse.ArgumentParser:
    """The arguments this bench and bench/big_corpus.py share: a SQuAD 2.0 file, the confidence models, a cache."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("squad", nargs="?", default=str(ROOT.parent / "shared/data/squad2-dev-5-articles.json"))
    ap.add_argument("--models", nargs="+", type=Path, default=[fc.OUT],
                    help="confidence models (confidence.json files); default: the shipped one")
    ap.add_argument("--cache", type=Path, help="keep the files, index and readings here")
    return ap


def main(argv=None) -> None:
    args = arguments(__doc__).parse_args(argv)
    settings = Settings.from_env(progress=False, min_confidence=0.0)
    with tempfile.TemporaryDirectory() as tmp:
        cache = args.cache or Path(tmp)
        articles = load_squad(args.squad)
        paragraphs = fc.one_file_per_paragraph(articles)
        qs = write_corpus(paragraphs, cache / "docs")
        rows = fc.collect("short", [{"id": q.id, "question": q.question} for q in qs], cache / "docs", cache, settings)
        out = fc.replay(rows, cache / "short-index", settings)
    print(f"{args.squad}: {len(paragraphs)} paragraph files, {sum(not q.impossible for q in qs)} answerable + "
          f"{sum(q.impossible for q in qs)} unanswerable questions")
    report(args.models, qs, out)


def report(models: list[Path], qs: list, out: list) -> None:
    """Per confidence model, at its own ``min_confidence``, the figures the module docstring lists for questions
    ``qs`` and their answers and signals ``out`` (``fit_confidence.replay``)."""
    for path in models:
        card = json.loads(path.read_text(encoding="utf-8"))
        floor = card["min_confidence"]
        scored = [(fc.predict(card["model"], sig) if sig is not None else 0.0, squad_right(a, q), q.impossible)
                  for q, (a, sig) in zip(qs, out)]
        ans = [p for p, _, imp in scored if not imp]
        imp = [p for p, _, i in scored if i]
        given = [(p, ok) for p, ok, _ in scored if p >= floor]
        rel = reliability(given)
        good = sum((p >= floor and ok) or (i and p < floor) for p, ok, i in scored) / len(scored)
        print(f"{path} (min_confidence {floor}): false refusals {sum(p < floor for p in ans) / len(ans):.3f}  "
              f"unanswerable refused {sum(p < floor for p in imp) / max(1, len(imp)):.3f}  "
              f"right when answered {sum(ok for _, ok in given) / max(1, len(given)):.3f} at "
              f"{sum(p for p, _ in given) / max(1, len(given)):.3f} shown  ECE {rel['ece']:.3f}  "
              f"wrong at 90 %+ {rel['wrong_at_90_or_more']:.3f}  right or rightly refused {good:.3f}  "
              f"({len(given)} answered)", flush=True)
        print("  shown -> right (answers) per bin: " + ", ".join(
            f"{b['confidence']:.2f} -> {b['right']:.2f} ({b['answers']})" for b in rel["bins"]), flush=True)


if __name__ == "__main__":
    main()
