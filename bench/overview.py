"""Requests about the articles as a whole ("What are these articles about?"): how often the request matcher
(``qa.questions.collection_request``) fires on real questions, what the overview quotes as each article's opening
(``qa.evidence.openings``) on held-out articles, for checking by hand, and what the seeds' phrasings get.

    python bench/overview.py [--data ../shared/data] [--fake] [--phrasings-only]

1. Matches over held-out questions: SQuAD 1.1 train, the SQuAD 2.0 tuning and train-10 files, SelQA dev and the
   doc2dial turns (each asked alone, and the doc2dial ones with their conversation). Every match is printed.
2. Openings, two per article, of 10 SQuAD 2.0 train-10 articles, 10 SelQA dev sections and 12 doc2dial pages
   (seeded), and of the seeds, indexed together in a temporary folder, chunked as the shipped embedder chunks
   (``--fake``: by the fake embedder's short chunks, which cut more sentences between chunks): read them and
   count the ones that are not their article's first real sentences.
3. The seeds, through ``qa.answer`` with the shipped models: each phrasing's shape, confidence and first words.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PHRASINGS = ["What are these articles about?", "Summarize the articles", "Summarize the articles.",
             "What is this about?", "Give me an overview", "What do the documents say?", "What are the main points?",
             "tl;dr", "What is the main topic of these articles?", "Summarize", "What's in here?",
             "Summarize the first article", "What are the articles about?", "List the articles",
             "What articles do you have?", "How many articles are there?", "Summarize the fifth article",
             # naming a topic: not a request about the articles as a whole
             "What is the safe zone?", "Explain the safe zone plans"]


def held_out_questions(data: Path) -> dict[str, list[tuple[str, list]]]:
    def squad(name: str) -> list[tuple[str, list]]:
        d = json.loads((data / name).read_text(encoding="utf-8"))["data"]
        return [(q["question"], []) for a in d for p in a["paragraphs"] for q in p["qas"]]

    turns = [json.loads(line) for line in (data / "doc2dial-dmv-va" / "turns.jsonl").open(encoding="utf-8")]
    return {"squad1.1-train": squad("squad1.1-train.json"),
            "squad2-dev-15-tuning": squad("squad2-dev-15-tuning-articles.json"),
            "squad2-train-10": squad("squad2-train-10-articles.json"),
            "selqa-dev": [(x["question"], []) for x in
                          json.loads((data / "selqa" / "selqa-ass-dev.json").read_text(encoding="utf-8"))],
            "doc2dial turns, alone": [(t["question"], []) for t in turns],
            "doc2dial turns, in their conversation": [
                (t["question"], [{"role": "user" if h["role"] == "user" else "assistant", "content": h["text"]}
                                 for h in t["history"]]) for t in turns]}


def matches(data: Path) -> None:
    from qa.questions import collection_request, small_talk

    for name, qs in held_out_questions(data).items():
        hits = [q for q, h in qs if collection_request(q, h or None)]
        print(f"{name}: {len(hits)} of {len(qs)} match{' ' + repr(hits[:20]) if hits else ''}")
        if "in their conversation" not in name:  # small talk is read from the message alone
            chat = [q for q, _ in qs if small_talk(q)]
            print(f"  small talk: {len(chat)} of {len(qs)}{' ' + repr(chat[:20]) if chat else ''}")


def held_out_articles(data: Path, root: Path, seeds: bool = True) -> Path:
    """``root``/docs holding 10 SQuAD 2.0 train-10 articles, 10 SelQA dev sections and 12 doc2dial pages (seeded),
    and with ``seeds`` the 3 seeds: none of them a test set."""
    from qa.evaluation import load_selqa, load_squad, write_corpus

    docs = root / "docs"
    write_corpus(load_squad(data / "squad2-train-10-articles.json"), docs)
    load_selqa(data / "selqa" / "selqa-ass-dev.json", root / "selqa")
    sections = sorted((root / "selqa").iterdir())
    random.Random(1).shuffle(sections)
    for p in sections[:10]:
        shutil.copy(p, docs / f"selqa_{p.name}")
    pages = sorted((data / "doc2dial-dmv-va" / "documents").iterdir())
    random.Random(1).shuffle(pages)
    for p in pages[:12]:
        shutil.copy(p, docs / f"d2d_{p.name}")
    if seeds:
        for p in (ROOT / "seeds").iterdir():
            shutil.copy(p, docs / f"seed_{p.name}")
    return docs


def openings(data: Path, fake: bool) -> None:
    import qa
    from qa.config import Settings
    from qa.evidence import openings as opening_lines
    from qa.local_store import load_index
    from tests import fakes

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        docs = held_out_articles(data, root)
        settings = Settings(progress=False)
        if fake:
            fakes.register("fake")
            settings = Settings(embedder="fake", progress=False)
        qa.build_index(docs, root / "index", settings=settings)
        loaded = load_index(root / "index")
        files = loaded.manifest["files"]
        for source in sorted(files):
            print(f"== {source} (title: {files[source]['title'][:70]})")
            for p in opening_lines(loaded, source, 2):
                print(f"   - {p.text[:200]}")
        print(f"{len(files)} articles")


def phrasings() -> None:
    import qa

    for q in PHRASINGS:
        a = qa.answer(q)
        print(f"{q!r}: {a.shape} {a.confidence:.2f} {a.text[:90]!r}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--phrasings-only", action="store_true")
    ap.add_argument("--fake", action="store_true", help="chunk as the fake embedder does (shorter chunks)")
    args = ap.parse_args()
    if not args.phrasings_only:
        matches(args.data)
        openings(args.data, args.fake)
    phrasings()


if __name__ == "__main__":
    main()
