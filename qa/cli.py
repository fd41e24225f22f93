"""``qa index | search | ask | eval | settings``: a thin shell over the library. Exit 2 on a documented error."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import asdict

from .config import Settings, default_docs_dir
from .errors import QAError
from .local_store import DEFAULT_INDEX_DIR


def _cmd_index(args: argparse.Namespace, settings: Settings) -> int:
    from .index import build_index

    docs = args.docs or str(default_docs_dir())
    progress = None if args.quiet or args.json or not settings.progress else stage_printer()
    stats = build_index(docs, args.index, settings=settings, progress=progress)
    if progress:
        progress.finish()
    print(json.dumps(stats.as_dict(), indent=2, ensure_ascii=False) if args.json else stats)
    return 0


def stage_printer():
    """Progress of a build on stderr: a bar per stage (rate, ETA) on a terminal, else one line per stage."""
    from tqdm import tqdm

    tty = sys.stderr.isatty()
    state: dict = {"stage": None, "bar": None, "t0": 0.0}

    def close():
        if state["bar"] is not None:
            state["bar"].close()
        elif state["stage"] is not None:
            print(f"{state['stage']}: done in {time.monotonic() - state['t0']:.1f} s", file=sys.stderr, flush=True)

    def report(stage: str, done: int, total: int) -> None:
        if stage != state["stage"]:
            close()
            state.update(stage=stage, bar=None, t0=time.monotonic())
            unit = "file" if stage.startswith("reading") else "sentence" if stage.endswith("sentences") else "chunk"
            if tty:
                state["bar"] = tqdm(total=total, desc=stage, unit=unit, file=sys.stderr, leave=True)
            else:
                print(f"{stage}: {total} {unit}s", file=sys.stderr, flush=True)
        if state["bar"] is not None:
            state["bar"].n = done
            state["bar"].refresh()
        if stage == "writing" and done >= total:
            close()
            state.update(stage=None, bar=None)

    report.finish = close
    return report


def _cmd_search(args: argparse.Namespace, settings: Settings) -> int:
    from .search import search

    passages = search(args.question, k=args.k, index_dir=args.index, settings=settings)
    if args.json:
        print(json.dumps([asdict(p) for p in passages], indent=2, ensure_ascii=False))
        return 0
    if not passages:
        print("No passages found.")
    for i, p in enumerate(passages, 1):
        quote = " ".join(p.text.split())
        if len(quote) > 400:
            quote = quote[:399] + "…"
        print(f"[{i}] {p.title}\n    {p.source} [{p.start}:{p.end}]  score {p.score:.4f} "
              f"(dense {p.dense:.3f}, bm25 {p.bm25:.2f})\n    {quote}\n")
    return 0


def _cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    from .answering import answer

    a = answer(args.question, index_dir=args.index, settings=settings)
    if args.json:
        print(json.dumps(a.to_dict(), indent=2, ensure_ascii=False))
        return 0
    print(a.text)
    if not a.abstained:
        means = ("each line is its article's opening" if a.shape == "overview"
                 else "the estimated chance that the answer it shows the sources of is right" if a.shape == "source"
                 else "the estimated chance that this answer is right")
        print(f"(confidence {a.confidence:.0%}: {means})")
    if a.corrected:
        print(f"(read as: {a.corrected})")
    if a.history_used:
        print(f"(searched for: {a.searched_for})")
    for c in a.citations:
        i, j = c.answer_start - c.start, c.answer_end - c.start
        text = c.text
        if a.shape == "short" and 0 <= i < j <= len(text):  # the short answer, marked inside its sentence
            text = f"{text[:i]}«{text[i:j]}»{text[j:]}"
        print(f"\n[{c.n}] {c.source} [{c.start}:{c.end}]  {c.title}\n    “{' '.join(text.split())}”")
    if a.abstained and a.related:
        print("\nRelated passages (not citations):")
        for p in a.related:
            quote = " ".join(p.text.split())
            print(f"  - {p.source} [{p.start}:{p.end}]  {quote[:160]}{'…' if len(quote) > 160 else ''}")
    return 0


def _cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    from .evaluation import (
        format_dialogue_report,
        format_report,
        format_selqa_report,
        run_dialogue_eval,
        run_eval,
        run_selqa_eval,
    )

    if args.selqa:
        report = run_selqa_eval(args.selqa, settings, workdir=args.workdir, sample=args.sample,
                                seed=13 if args.seed is None else args.seed, progress=not args.json)
        print(json.dumps(report, indent=2) if args.json else format_selqa_report(report))
        return 0
    if args.dialogues:
        report = run_dialogue_eval(args.dialogues, settings, workdir=args.workdir, later=args.later,
                                   first=args.first, seed=7 if args.seed is None else args.seed,
                                   progress=not args.json)
        print(json.dumps(report, indent=2) if args.json else format_dialogue_report(report))
        return 0
    if not args.file:
        raise QAError("qa eval needs a SQuAD-format JSON file, --dialogues DIR for a doc2dial-format folder, or "
                      "--selqa FILE for a SelQA answer-sentence file.")
    report = run_eval(args.file, settings, workdir=args.workdir, answers=args.answers, impossible=args.impossible,
                      seed=13 if args.seed is None else args.seed, progress=not args.json)
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


def _cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    from .check import check

    check()
    return 0


def _cmd_settings(args: argparse.Namespace, settings: Settings) -> int:
    print(Settings.describe())
    print("\ncurrent values:")
    for k, v in asdict(settings).items():
        print(f"  {k} = {v!r}")
    return 0


def _cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from .ui import main as serve

    serve([a for i, a in enumerate(args.rest) if not (i == 0 and a == "--")])
    return 0


STORE_HELP = ("where the index lives: local (default; $QA_STORE), a Milvus Lite file such as milvus.db, or a "
              "Milvus server http://HOST:19530")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qa", description="Ask questions about a folder of articles, offline.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("index", help="build or update the index (only changed files are re-embedded)")
    p.add_argument("--docs", help="folder of articles (default: seeds/)")
    p.add_argument("--index", default=DEFAULT_INDEX_DIR, help="index folder (default: index/)")
    p.add_argument("--json", action="store_true", help="print the build summary as JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    p.add_argument("--store", help=STORE_HELP)
    p.set_defaults(func=_cmd_index)

    p = sub.add_parser("search", help="show the passages that best match a question")
    p.add_argument("question")
    p.add_argument("-k", type=int, default=5, help="number of passages (default 5)")
    p.add_argument("--index", default=DEFAULT_INDEX_DIR, help="index folder (default: index/)")
    p.add_argument("--json", action="store_true", help="print passages as JSON")
    p.add_argument("--store", help=STORE_HELP)
    p.set_defaults(func=_cmd_search)

    p = sub.add_parser("ask", help="answer a question with cited sentences (or say the articles don't)")
    p.add_argument("question")
    p.add_argument("--index", default=DEFAULT_INDEX_DIR, help="index folder (default: index/)")
    p.add_argument("--json", action="store_true", help="print the answer object as JSON")
    p.add_argument("--store", help=STORE_HELP)
    p.set_defaults(func=_cmd_ask)

    p = sub.add_parser("eval", help="score retrieval (and answers) on a SQuAD v1.1/v2.0 JSON file, or on "
                                    "doc2dial-format dialogues (--dialogues DIR), or SelQA answer sentences (--selqa FILE)")
    p.add_argument("file", nargs="?", help="SQuAD-format JSON file")
    p.add_argument("--dialogues", metavar="DIR", help="a doc2dial-format folder: documents/*.txt and turns.jsonl")
    p.add_argument("--selqa", metavar="FILE", help="a SelQA answer-sentence file: each section indexed as one "
                                                   "article, every question asked; cited and answered by type")
    p.add_argument("--sample", type=int, default=0, help="with --selqa: ask a seeded sample of N questions (0: all)")
    p.add_argument("--later", type=int, default=120, help="with --dialogues: later turns sampled (default 120)")
    p.add_argument("--first", type=int, default=40, help="with --dialogues: first turns sampled (default 40)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--workdir", help="keep the written articles and index here (default: a temporary folder)")
    p.add_argument("--answers", type=int, default=0, help="also answer N sampled answerable questions")
    p.add_argument("--impossible", type=int, default=0, help="also answer M sampled unanswerable questions")
    p.add_argument("--seed", type=int, default=None, help="sampling seed (default 13; 7 with --dialogues)")
    p.add_argument("--store", help=STORE_HELP)
    p.set_defaults(func=_cmd_eval)

    p = sub.add_parser("serve", help="start the browser UI on http://127.0.0.1:7860 (same as python app.py)",
                       add_help=False)
    p.add_argument("rest", nargs=argparse.REMAINDER, help="options of the UI; `qa serve --help` lists them")
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser("check", help="check that every part of the answer path works on this machine "
                                     "(each in a process of its own; set-up runs it)")
    p.set_defaults(func=_cmd_check)

    p = sub.add_parser("settings", help="list every setting, its QA_* variable, default and current value")
    p.set_defaults(func=_cmd_settings)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:  # the UI has its own options (--host, --port, --share, ...)
        argv = ["serve", "--", *argv[1:]]
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    try:
        store = getattr(args, "store", None)
        settings = Settings.from_env(**({"store": store} if store else {}))
        return args.func(args, settings)
    except QAError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ValueError as e:  # bad QA_* values
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
