"""Overview requests about a topic the articles name ("Tell me about Anatolia"), on held-out articles: what the
answer quotes, for judging by hand whether it tells about the topic, and the confidence it shows.

    python bench/topic_overviews.py [--rank 0] [--data ../shared/data]

The corpus is ``bench/overview.py``'s: 10 SQuAD 2.0 train-10 articles, 10 SelQA dev sections and 12 doc2dial
pages (seeded), indexed together with the shipped models. Each article gives one topic: its ``--rank``-th most
frequent capitalised phrase (leading function words and month names dropped, at least 4 characters, at least
twice in the article, not in its file name); so the topics are not chosen by hand, and some are not topics at all
("State", "Open"). Each request "Tell me about TOPIC" is answered with refusals off (``min_confidence`` 0), and
printed with whether sentences named the topic (``qa.evidence.about_topic``), the confidence it shows and its
quotes.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from collections import Counter
from dataclasses import replace
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

_SKIP = set("""January February March April May June July August September October November December Monday Tuesday
Wednesday Thursday Friday Saturday Sunday The This That These Those However There When After Before While Although
During Since If You Your We Our It In On At For From With By As An And But Or To Of Learn Find Read See Download
Apply Get Can Do Does Did Is Are What Who How Why Where Which""".split())
_NAME = re.compile(r"\b([A-Z][\w'-]*[a-z][\w'-]*(?:\s+(?:of\s+|the\s+)?[A-Z][\w'-]*[a-z][\w'-]*)*)")


def topic_of(path: Path, rank: int) -> str | None:
    counts: Counter[str] = Counter()
    for m in _NAME.finditer(path.read_text(encoding="utf-8")):
        words = m.group(1).split()
        while words and words[0] in _SKIP:
            words = words[1:]
        phrase = " ".join(words)
        if len(phrase) >= 4 and phrase.lower() not in path.stem.lower().replace("_", " "):
            counts[phrase] += 1
    common = [p for p, k in counts.most_common() if k >= 2]
    return common[rank] if len(common) > rank else None


def main() -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    import overview

    import qa
    from qa import evidence
    from qa.config import Settings

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rank", type=int, default=0, help="which of each article's most frequent phrases (0: the first)")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    args = ap.parse_args()
    settings = Settings(progress=False)
    named: list[int] = []
    about_topic = evidence.about_topic

    def spy(ev, topic):
        found = about_topic(ev, topic)
        named.append(len(found))
        return found

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        docs = overview.held_out_articles(args.data, root, seeds=False)
        qa.build_index(docs, root / "index", settings=settings)
        shown = []
        for path in sorted(docs.iterdir()):
            topic = topic_of(path, args.rank)
            if topic is None:
                continue
            named.clear()
            with mock.patch.object(evidence, "about_topic", spy):
                a = qa.answer(f"Tell me about {topic}", root / "index", settings=replace(settings, min_confidence=0.0))
            shown.append(a.confidence)
            print(f"== Tell me about {topic}  [{path.name[:45]}] named {named[-1] if named else 0}, "
                  f"confidence {a.confidence:.3f}{', refused' if a.abstained else ''}")
            for c in a.citations:
                print(f"   [{c.source[:25]}] {' '.join(c.text.split())[:230]}")
    print(f"{len(shown)} requests; confidence shown: median {sorted(shown)[len(shown) // 2]:.3f}")


if __name__ == "__main__":
    main()
