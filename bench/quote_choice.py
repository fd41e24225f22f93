"""Which sentences a why / how / describe answer quotes: ranked by the best span in each ("span") or by the
reader's sentence head ("head"), for each reader given, side by side in one run.

    python bench/quote_choice.py [--readers qa-reader PATH.onnx ...] [--sample 300] [--seed 13]

SelQA dev (tuning data; the test file is never read), the questions of the articles held out from the sentence
head's training (``train_reader.selqa_for_training``: the other half trains recipe 384's head), every question asked through ``qa.answer`` with the
refusal rule off (``min_confidence`` 0), so that the figure is the choice of sentence alone: the share whose
citations cover half of an answer sentence, overall and for why / how questions. A reader without a sentence head
shows "span" only.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qa import evidence  # noqa: E402
from qa.config import Settings  # noqa: E402
from qa.evaluation import run_selqa_eval  # noqa: E402
from qa.reading import PACKAGED_READER, WEIGHTS_DIR, card  # noqa: E402
from qa.weights.train_reader import selqa_for_training  # noqa: E402


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared/data/selqa/selqa-ass-dev.json"))
    ap.add_argument("--readers", nargs="+", default=[PACKAGED_READER])
    ap.add_argument("--sample", type=int, default=300)
    ap.add_argument("--seed", type=int, default=13)
    args = ap.parse_args(argv)
    print(f"{'reader':<40} {'quotes by':<9} {'cited':>6} {'why':>6} {'how':>6} {'answered':>8} {'s':>5}")
    with tempfile.TemporaryDirectory(prefix="qa-quote-choice-") as tmp:
        for reader in args.readers:
            path = WEIGHTS_DIR / "reader.int8.onnx" if reader == PACKAGED_READER else Path(reader)
            training = card(path).get("training", {})
            modes = ["span", "head"] if training.get("sentence_head") else ["span"]
            settings = Settings(reader=reader, min_confidence=0.0, progress=False)
            for mode in modes:
                t0 = time.perf_counter()
                with mock.patch.object(evidence, "QUOTES_BY", mode):
                    # One index per reader's run is rebuilt incrementally: the sections are the same files.
                    r = run_selqa_eval(args.data, settings, workdir=tmp, sample=args.sample, seed=args.seed,
                                      articles=lambda a: not selqa_for_training(a))
                why, how = (r["by_type"].get(t, {}).get("cited", float("nan")) for t in ("why", "how"))
                print(f"{Path(reader).name[:40]:<40} {mode:<9} {r['cited']:>6.3f} {why:>6.3f} {how:>6.3f} "
                      f"{r['answered']:>8.3f} {time.perf_counter() - t0:>5.0f}", flush=True)
                print(json.dumps({"reader": reader, "quotes_by": mode, **{k: r[k] for k in
                                  ("questions", "cited", "answered", "by_type")}}), file=sys.stderr)


if __name__ == "__main__":
    main()
