"""Everything a candidate reader must show before it ships, one step after another, resumable.

    python bench/candidate.py CANDIDATE_DIR [--steps confidence seeds quotes dialogue_quotes squad ...]

CANDIDATE_DIR holds what ``python -m qa.weights.train_reader --out DIR`` exports (reader.int8.onnx and its card).
Each step writes its figures to ``CANDIDATE_DIR/figures/<step>.txt`` and is skipped when that file exists, so the
same command goes on where a stopped run left off (fit_confidence keeps its own cache of readings too):

- confidence: ``python -m qa.weights.fit_confidence --out CANDIDATE_DIR/confidence.json`` for the candidate
  (held-out SQuAD tuning articles, the SelQA dev half its head never trained on, doc2dial tuning turns), and for a
  reader with a sentence head the same fit with its logit as one more signal, as figures (``--dry-run``);
- seeds: issue 38's seed questions, shipped reader and candidate side by side (``seed_checks``);
- quotes: ``bench/quote_choice.py``, span vs sentence head, both readers, held-out SelQA dev;
- dialogue_quotes: ``bench/dialogue_choice.py``, span vs sentence head for the candidate on doc2dial tuning turns;
- squad / dialogues / selqa / covid: the public ``qa eval`` commands of the README, the candidate with its own
  confidence model (``QA_READER``, ``QA_CONFIDENCE``, its ``min_confidence``). These are the reported figures;
  nothing is chosen on them.

It never touches qa/weights: shipping is copying reader.int8.onnx, reader.json and confidence.json there.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT))

#: (question, earlier question asked first or None, pattern the answer or a citation must hold; None = abstain).
#: From issue 38 ("The seeds"): five questions that must be right and cited, two that must be refused.
SEED_CHECKS = [
    ("Why does Turkey oppose the YPG?", None, r"PKK"),
    ("What did Graham ask European allies to do?", None, r"hundreds of troops"),
    ("What did Trump tell Ilhan Ahmed?", None, r"loved the Kurds"),
    ("What is the goal of the de-escalation zone in southwest Syria?", None, r"ending hostilities"),
    ("and how many US troops would stay?", "How many soldiers would European countries contribute?", r"\b200\b"),
    ("Who won the 2018 FIFA World Cup?", None, None),
    ("Who wrote Hamlet?", None, None),
    ("Who won the 2018 FIFA World Cup?", "How many soldiers would European countries contribute?", None),
    ("Who wrote Hamlet?", "What did Trump tell Ilhan Ahmed?", None),
]

STEPS = ("confidence", "seeds", "quotes", "dialogue_quotes", "squad", "dialogues", "selqa", "covid")


def seed_checks(settings, index_dir: Path) -> list[dict]:
    """Each check asked through ``qa.answer`` (the earlier question first, its real answer as history)."""
    import qa

    out = []
    for q, before, pattern in SEED_CHECKS:
        history = [qa.answer(before, index_dir=index_dir, settings=settings)] if before else None
        a = qa.answer(q, index_dir=index_dir, history=history, settings=settings)
        if pattern is None:
            ok = a.abstained
        else:
            ok = not a.abstained and any(re.search(pattern, t, re.I) for t in [a.text, *(c.text for c in a.citations)])
        out.append({"question": q, "after": before, "ok": ok, "text": a.text[:200],
                    "confidence": round(a.confidence, 3), "abstained": a.abstained})
    return out


def run_seeds(cand: Path) -> str:
    import qa
    from qa.config import Settings

    from_env = Settings.from_env(progress=False)
    conf = json.loads((cand / "confidence.json").read_text()) if (cand / "confidence.json").exists() else {}
    readers = {"shipped": from_env,
               "candidate": dataclasses.replace(from_env, reader=str(cand / "reader.int8.onnx"),
                                                confidence=str(cand / "confidence.json") if conf else "",
                                                min_confidence=conf.get("min_confidence", 0.0))}
    index_dir = Path(os.environ.get("TMPDIR", "/tmp")) / "qa-candidate-seeds"
    qa.build_index(ROOT / "seeds", index_dir, settings=from_env)
    lines = []
    results = {name: seed_checks(s, index_dir) for name, s in readers.items()}
    for name, rows in results.items():
        lines.append(f"{name}: {sum(r['ok'] for r in rows)} of {len(rows)} right "
                     f"(min_confidence {readers[name].min_confidence})")
    for i, (q, before, _) in enumerate(SEED_CHECKS):
        lines.append(f"- {q}" + (f" (after: {before})" if before else ""))
        for name, rows in results.items():
            r = rows[i]
            lines.append(f"    {name:<9} {'ok ' if r['ok'] else 'NO '} {r['confidence']:.2f} {r['text'][:140]}")
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("candidate", type=Path, help="folder with the candidate's reader.int8.onnx and reader.json")
    ap.add_argument("--steps", nargs="+", default=list(STEPS), choices=STEPS)
    ap.add_argument("--data", type=Path, default=DATA)
    args = ap.parse_args(argv)
    cand = args.candidate.expanduser().resolve()
    reader = cand / "reader.int8.onnx"
    if not reader.exists() or not (cand / "reader.json").exists():
        raise SystemExit(f"{cand} has no reader.int8.onnx with its reader.json: export one with "
                         "python -m qa.weights.train_reader --out DIR")
    figures = cand / "figures"
    figures.mkdir(exist_ok=True)
    py = sys.executable
    env = {**os.environ, "QA_READER": str(reader), "QA_PROGRESS": "0"}
    for step in args.steps:
        out = figures / f"{step}.txt"
        if out.exists():
            print(f"{step}: done before ({out})", flush=True)
            continue
        if step != "confidence" and not (cand / "confidence.json").exists():
            raise SystemExit("the candidate has no confidence model yet: run the confidence step first")
        if step != "confidence":
            env["QA_CONFIDENCE"] = str(cand / "confidence.json")
            env["QA_MIN_CONFIDENCE"] = str(json.loads((cand / "confidence.json").read_text())["min_confidence"])
        commands = {
            "confidence": [py, "-m", "qa.weights.fit_confidence", "--data", str(args.data),
                           "--out", str(cand / "confidence.json")],
            "quotes": [py, "bench/quote_choice.py", "--readers", "qa-reader", str(reader)],
            "dialogue_quotes": [py, "bench/dialogue_choice.py", "--bonus", "2", "--quotes-by", "span", "head"],
            "squad": [py, "-m", "qa", "eval", str(args.data / "squad2-dev-5-articles.json"), "--answers", "100",
                      "--impossible", "100", "--seed", "13"],
            "dialogues": [py, "-m", "qa", "eval", "--dialogues", str(args.data / "doc2dial-dmv-va")],
            "selqa": [py, "-m", "qa", "eval", "--selqa", str(args.data / "selqa" / "selqa-ass-test.json"),
                      "--sample", "400", "--seed", "13"],
            "covid": [py, "-m", "qa", "eval", str(args.data / "covid-qa.json")],
        }
        t0 = time.time()
        print(f"{step}: running", flush=True)
        if step == "seeds":
            text = run_seeds(cand)
        else:
            # The shipped reader's env for quote_choice: it names both readers itself.
            step_env = env if step != "quotes" else {k: v for k, v in env.items() if not k.startswith("QA_")}
            r = subprocess.run(commands[step], cwd=ROOT, env=step_env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
            if r.returncode != 0:
                raise SystemExit(f"{step} failed ({' '.join(commands[step])}):\n{r.stdout[-3000:]}")
            text = r.stdout
            if step == "confidence" and json.loads((cand / "reader.json").read_text()).get(
                    "training", {}).get("sentence_head"):
                # The same cached readings refit with the sentence head's logit as one more signal (a minute):
                # figures only, to choose by.
                from qa.weights.fit_confidence import FEATURES

                r = subprocess.run([*commands[step][:-2], "--dry-run", "--features", *FEATURES, "head"], cwd=ROOT,
                                   env=step_env, capture_output=True, text=True)
                text += "\n## with the sentence head as a signal (--dry-run)\n" + r.stderr
        text = f"# {time.strftime('%Y-%m-%d %H:%M')}, {time.time() - t0:.0f} s\n{text}"
        tmp = out.with_suffix(".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(out)
        print(text, flush=True)


if __name__ == "__main__":
    main()
