"""Answer latency on the seeds, llama.cpp vs transformers reader, same GGUF, same prompt, same questions, one run.

    python bench/answer_latency.py [--runs 3] [--plot bench/answer_latency.png]

Per backend:
- warm: one process, models loaded, each seed question asked ``--runs`` times through ``qa.stream``; p50/p95 of
  the whole answer and of the first streamed answer text, and the reader's own figures (prompt tokens read,
  tokens copied, tokens/s for each);
- load: the reader's load time in this process;
- cold: ``qa ask`` as a new process, twice (the first may convert or assemble the model; the second is what a user
  sees every time after that), and that process's peak RSS.
The backends alternate question by question so machine noise hits both alike. Two more llama.cpp variants
alternate with them and are compared warm only: ``reader_fit_content=False`` (every question token scored) and
``evidence_sentences=2``; a third ignores the index's sentence table and embeds the evidence candidates per
question, as answering did before the table existed; a fourth copies one answer (greedy, ``reader_spans=1``)
instead of five; a fifth adds the second opinion (``second_opinion="smollm2-135m"``) to the choice among the five;
a sixth loads the model without the eval callback that hands the abstention probe its hidden state, to show what
the callback costs (its abstention falls back to the signals alone, as for any reader the probe was not fitted on).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import qa  # noqa: E402
from qa import answering, generation  # noqa: E402
from qa.generation import get_generator  # noqa: E402

QUESTIONS = [
    "How many soldiers would European countries contribute?",
    "How many US troops did Trump order to withdraw?",
    "What does Turkey consider the YPG to be part of?",
    "How deep is the safe zone Erdogan wants?",
    "Who won the 2018 FIFA World Cup?",
]
BACKENDS = ("llama-cpp", "transformers")
FIT_ALL = "llama-cpp, fit all"
TWO = "llama-cpp, 2 sentences"
NO_TABLE = "llama-cpp, evidence embedded per question"
ONE_SPAN = "llama-cpp, one copied answer"
WITH = "llama-cpp, with a second opinion"
NO_TAP = "llama-cpp, no hidden-state tap"


def without_sentence_table(select):
    """select_evidence as it was before the index's sentence table: split and embed the passages per question."""
    return lambda question, qvec, passages, embedder, settings, loaded=None: select(question, qvec, passages,
                                                                                  embedder, settings)


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[int(p * (len(xs) - 1))]


def cold(backend: str, index_dir: Path) -> tuple[float, float]:
    """Seconds and peak RSS (MB) of one `qa ask` process: its own plus its model workers'."""
    env = {**os.environ, "QA_READER_BACKEND": backend}
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the (large) parent through fork and exec.
    code = (f"import runpy, sys; sys.argv = ['qa', 'ask', {QUESTIONS[0]!r}, '--index', {str(index_dir)!r}]\n"
            "try:\n    runpy.run_module('qa', run_name='__main__')\nexcept SystemExit:\n    pass\n"
            "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0].split()[1]\n"
            "from qa import worker\n"  # and the models' worker processes, still running until exit
            "kids = sum(int([l for l in open(f'/proc/{w.pid}/status') if l.startswith('VmHWM:')][0].split()[1])\n"
            "           for w in list(worker._LIVE) if w.pid)\n"
            "print('RSS', int(hwm) + kids, file=sys.stderr)")
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=ROOT, env=env)
    seconds = time.perf_counter() - t0
    rss = next(int(line.split()[1]) for line in out.stderr.splitlines() if line.startswith("RSS "))
    return seconds, rss / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--plot", default=str(ROOT / "bench" / "answer_latency.png"))
    args = ap.parse_args()

    index_dir = ROOT / "index"
    # The models run in this process (not in worker processes, the default): the no-tap variant swaps a function
    # of qa.generation here, and the reader's own figures (stats) are what is compared. bench/reader_build.py
    # times the default path, workers included.
    base = qa.Settings.from_env(progress=False, model_process=False)
    qa.build_index(ROOT / "seeds", index_dir, settings=base)
    settings = {b: replace(base, reader_backend=b) for b in BACKENDS}
    load_s = {}
    for b in BACKENDS:
        t0 = time.perf_counter()
        get_generator(settings[b]).load()
        load_s[b] = time.perf_counter() - t0
        qa.answer(QUESTIONS[0], index_dir=index_dir, settings=settings[b])  # warm every path once
    # Two more variants of llama.cpp, warm only: scoring `fit` on every question token (as before 2026-11-22), and
    # reading two evidence sentences instead of three.
    settings[FIT_ALL] = replace(settings["llama-cpp"], reader_fit_content=False)
    settings[TWO] = replace(settings["llama-cpp"], evidence_sentences=2)
    settings[NO_TABLE] = replace(settings["llama-cpp"])
    settings[ONE_SPAN] = replace(settings["llama-cpp"], reader_spans=1)
    settings[WITH] = replace(settings["llama-cpp"], second_opinion="smollm2-135m")
    # The same GGUF by its path is another engine (the engines are keyed by model name); it gets no eval callback.
    settings[NO_TAP] = replace(settings["llama-cpp"], generator=str(generation.resolve_gguf(base.generator, base.cache_dir)))
    real_callback = generation._EVAL_CALLBACK
    generation._EVAL_CALLBACK = lambda hook: None
    try:
        get_generator(settings[NO_TAP]).load()
    finally:
        generation._EVAL_CALLBACK = real_callback
    for v in (FIT_ALL, TWO, ONE_SPAN, WITH, NO_TAP):
        qa.answer(QUESTIONS[0], index_dir=index_dir, settings=settings[v])
    variants = (*BACKENDS, FIT_ALL, TWO, NO_TABLE, ONE_SPAN, WITH, NO_TAP)
    with_table = answering.select_evidence
    total = {b: [] for b in variants}
    first = {b: [] for b in variants}
    reads = {b: [] for b in variants}
    texts = {b: {} for b in variants}
    for _ in range(args.runs):
        for q in QUESTIONS:
            for b in variants:
                time.sleep(0.3)  # let the other backend's thread pool go idle (torch's OpenMP threads spin a while)
                answering.select_evidence = without_sentence_table(with_table) if b == NO_TABLE else with_table
                t0 = time.perf_counter()
                seen = None
                for part in qa.stream(q, index_dir=index_dir, settings=settings[b]):
                    if seen is None and part.text:
                        seen = time.perf_counter() - t0
                total[b].append(time.perf_counter() - t0)
                first[b].append(seen if seen is not None else total[b][-1])
                reads[b].append(get_generator(settings[b]).stats)
                texts[b][q] = part.text
    answering.select_evidence = with_table
    colds = {b: [cold(b, index_dir) for _ in range(2)] for b in BACKENDS}

    print(f"{len(QUESTIONS)} seed questions x {args.runs} runs per backend, alternating; reader threads "
          f"{base.threads or 'default'} (QA_THREADS; default: llama.cpp all cores up to 4, torch its own)")
    head = (f"{'backend':<13} {'warm p50':>8} {'p95':>6} {'first p50':>9} {'prompt tok':>10} {'prompt tok/s':>12} "
            f"{'copied tok':>10} {'copy tok/s':>10} {'load':>6} {'cold 2nd':>8} {'cold RSS':>9}")
    print(head)
    rows = {}
    for b in BACKENDS:
        r = reads[b]
        p_tok = statistics.median(x.prompt_tokens for x in r)
        p_rate = sum(x.prompt_tokens for x in r) / sum(x.prompt_seconds for x in r)
        g_tok = statistics.median(x.generated_tokens for x in r)
        g_rate = sum(x.generated_tokens for x in r) / max(1e-9, sum(x.generate_seconds for x in r))
        rows[b] = dict(p50=statistics.median(total[b]), p95=pct(total[b], 0.95), first=statistics.median(first[b]),
                       cold=colds[b][1][0], rss=colds[b][1][1])
        print(f"{b:<13} {rows[b]['p50']:7.2f}s {rows[b]['p95']:5.2f}s {rows[b]['first']:8.2f}s {p_tok:10.0f} "
              f"{p_rate:12.0f} {g_tok:10.0f} {g_rate:10.1f} {load_s[b]:5.1f}s {rows[b]['cold']:7.2f}s "
              f"{rows[b]['rss']:7.0f}MB")
        print(f"{'':<13} cold runs: {', '.join(f'{s:.2f} s' for s, _ in colds[b])}")
    a, t = rows["llama-cpp"], rows["transformers"]
    print(f"llama.cpp vs transformers: warm p50 {t['p50'] / a['p50']:.2f}x faster, first text {t['first'] / a['first']:.2f}x, "
          f"cold start {t['cold'] / a['cold']:.2f}x, peak RSS {t['rss'] / a['rss']:.2f}x smaller")
    fa = {k: statistics.median(v[FIT_ALL]) for k, v in (("p50", total), ("first", first))}
    fa_read = statistics.median(x.prompt_seconds for x in reads[FIT_ALL])
    a_read = statistics.median(x.prompt_seconds for x in reads["llama-cpp"])
    print(f"llama.cpp, fit on the question's content words (default) vs on every token: warm p50 {a['p50']:.2f} vs "
          f"{fa['p50']:.2f} s, first text {a['first']:.2f} vs {fa['first']:.2f} s, reading {a_read:.3f} vs "
          f"{fa_read:.3f} s; same answers {sum(texts['llama-cpp'][q] == texts[FIT_ALL][q] for q in QUESTIONS)}/"
          f"{len(QUESTIONS)}")
    two = {k: statistics.median(v[TWO]) for k, v in (("p50", total), ("first", first))}
    print(f"llama.cpp, three evidence sentences (default) vs two (QA_EVIDENCE_SENTENCES=2): warm p50 {a['p50']:.2f} vs "
          f"{two['p50']:.2f} s, first text {a['first']:.2f} vs {two['first']:.2f} s; same answers "
          f"{sum(texts['llama-cpp'][q] == texts[TWO][q] for q in QUESTIONS)}/{len(QUESTIONS)}")
    nt = {k: statistics.median(v[NO_TABLE]) for k, v in (("p50", total), ("first", first))}
    print(f"llama.cpp, evidence looked up in the index's sentence table (default) vs embedded per question: warm p50 "
          f"{a['p50']:.2f} vs {nt['p50']:.2f} s, first text {a['first']:.2f} vs {nt['first']:.2f} s; same answers "
          f"{sum(texts['llama-cpp'][q] == texts[NO_TABLE][q] for q in QUESTIONS)}/{len(QUESTIONS)}")
    one = {k: statistics.median(v[ONE_SPAN]) for k, v in (("p50", total), ("first", first))}
    print(f"llama.cpp, five copied answers, best kept (default) vs one (greedy, QA_READER_SPANS=1): warm p50 "
          f"{a['p50']:.2f} vs {one['p50']:.2f} s, first text {a['first']:.2f} vs {one['first']:.2f} s; same answers "
          f"{sum(texts['llama-cpp'][q] == texts[ONE_SPAN][q] for q in QUESTIONS)}/{len(QUESTIONS)}")
    w = {k: statistics.median(v[WITH]) for k, v in (("p50", total), ("first", first))}
    print(f"llama.cpp, choosing alone (default) vs with a second opinion (QA_SECOND_OPINION=smollm2-135m): warm p50 "
          f"{a['p50']:.2f} vs {w['p50']:.2f} s, first text {a['first']:.2f} vs {w['first']:.2f} s; same answers "
          f"{sum(texts['llama-cpp'][q] == texts[WITH][q] for q in QUESTIONS)}/{len(QUESTIONS)}")
    for q in QUESTIONS:
        if texts["llama-cpp"][q] != texts[WITH][q]:
            print(f"  {q}\n    alone: {texts['llama-cpp'][q]}\n    with:  {texts[WITH][q]}")
    ntap = {k: statistics.median(v[NO_TAP]) for k, v in (("p50", total), ("first", first))}
    nt_read = statistics.median(x.prompt_seconds for x in reads[NO_TAP])
    print(f"llama.cpp, with the hidden-state tap (default) vs without: warm p50 {a['p50']:.2f} vs {ntap['p50']:.2f} s, "
          f"reading {a_read:.3f} vs {nt_read:.3f} s, copying {statistics.median(x.generate_seconds for x in reads['llama-cpp']):.3f}"
          f" vs {statistics.median(x.generate_seconds for x in reads[NO_TAP]):.3f} s")
    same = sum(texts["llama-cpp"][q] == texts["transformers"][q] for q in QUESTIONS)
    print(f"same answer text from both backends: {same}/{len(QUESTIONS)}")
    for q in QUESTIONS:
        if texts["llama-cpp"][q] != texts["transformers"][q]:
            print(f"  {q}\n    llama-cpp:    {texts['llama-cpp'][q]}\n    transformers: {texts['transformers'][q]}")

    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(8, 2.8))
        labels = ["warm p50", "first text p50", "cold start"]
        keys = ["p50", "first", "cold"]
        for i, b in enumerate(BACKENDS):
            axes[0].barh([y + 0.38 * i for y in range(3)], [rows[b][k] for k in keys], height=0.36,
                         color=["#2563eb", "#9ca3af"][i], label=b)
        axes[0].set_yticks([y + 0.19 for y in range(3)], labels)
        axes[0].invert_yaxis()
        axes[0].set_xlabel("seconds (lower is better)")
        axes[0].legend(fontsize=8)
        axes[1].bar(BACKENDS, [rows[b]["rss"] for b in BACKENDS], color=["#2563eb", "#9ca3af"])
        axes[1].set_ylabel("peak RSS of `qa ask`, MB")
        fig.suptitle("Gemma-3-270M reader on the seeds, 2 cores", fontsize=10)
        fig.tight_layout()
        fig.savefig(args.plot, dpi=110)
        print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
