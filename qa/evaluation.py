"""SQuAD-format scoring used by ``qa eval`` (v1.1 and v2.0 files).

Each article becomes one UTF-8 .txt file: its paragraphs' contexts, in order, each followed by a blank line;
gold answer offsets shift by the paragraph's position in that file. A retrieval hit is a passage from the right
file whose ``[start, end)`` covers a gold answer's ``[answer_start, answer_start + len(text))``.
"""

from __future__ import annotations

import json
import re
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import Settings
from .embeddings import embedder_name, get_embedder
from .errors import QAError
from .index import build_index, open_store
from .search import Passage, merge, rank_many, reranker, search_many

KS = (1, 5, 10)


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    source: str  # the article's file name
    golds: tuple[tuple[int, int, str], ...]  # (start, end, text) in the article file
    impossible: bool


def load_squad(path: str | Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        articles = data["data"]
        _ = [p["context"] for a in articles for p in a["paragraphs"]]
    except FileNotFoundError:
        raise QAError(f"No such file: {path}. Pass a SQuAD v1.1 or v2.0 JSON file.") from None
    except (ValueError, KeyError, TypeError) as e:
        raise QAError(f"{path} is not a SQuAD v1.1/v2.0 file ({type(e).__name__}: {e}).") from None
    return articles


def _file_name(title: str, taken: set[str]) -> str:
    base = re.sub(r"[^\w.()-]+", "_", title).strip("._") or "article"
    name, n = f"{base}.txt", 2
    while name in taken:
        name, n = f"{base}_{n}.txt", n + 1
    taken.add(name)
    return name


def write_corpus(articles: list[dict[str, Any]], folder: str | Path) -> list[Question]:
    """Write one .txt per article into ``folder``; return every question with gold offsets in those files."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    questions: list[Question] = []
    taken: set[str] = set()
    for art in articles:
        name = _file_name(str(art.get("title", "article")), taken)
        parts, offset = [], 0
        for para in art["paragraphs"]:
            ctx = para["context"]
            for qa in para.get("qas", []):
                golds = tuple(
                    (offset + a["answer_start"], offset + a["answer_start"] + len(a["text"]), a["text"])
                    for a in qa.get("answers", [])
                )
                impossible = bool(qa.get("is_impossible", False)) or not golds
                questions.append(Question(str(qa.get("id", len(questions))), qa["question"], name, golds, impossible))
            parts.append(ctx + "\n\n")
            offset += len(ctx) + 2
        # newline="" keeps the bytes as written; the offsets assume the text reads back unchanged.
        with open(folder / name, "w", encoding="utf-8", newline="") as f:
            f.write("".join(parts))
    return questions


def _all_chunks(loaded) -> list:
    return list(loaded.fetch(list(range(loaded.size))).values())


def hit(passage: Passage, q: Question) -> bool:
    return passage.source == q.source and any(passage.start <= s and e <= passage.end for s, e, _ in q.golds)


def evaluate_retrieval(questions: list[Question], index_dir: str | Path, settings: Settings) -> dict[str, Any]:
    """Recall@1/5/10 and MRR@10 over the answerable questions."""
    answerable = [q for q in questions if not q.impossible]
    loaded = open_store(index_dir, settings).load()
    embedder = get_embedder(settings)
    t0 = time.perf_counter()
    reader = reranker(settings)
    if reader is None:
        rankings = rank_many(loaded, embedder, [q.question for q in answerable], max(KS), settings)
        lists = [{k: merge(loaded, r, k) for k in KS} for r in rankings]
    else:  # as qa.search does: the reranked top 10, whose first k are the top k
        found = search_many(loaded, embedder, [q.question for q in answerable], max(KS), settings, reader=reader)
        lists = [{k: ps[:k] for k in KS} for ps in found]
    per_query_ms = 1000 * (time.perf_counter() - t0) / max(1, len(answerable))
    hits = {k: 0 for k in KS}
    rr = 0.0
    for q, by_k in zip(answerable, lists):
        for k in KS:
            passages = by_k[k]
            if any(hit(p, q) for p in passages):
                hits[k] += 1
            if k == max(KS):
                rr += next((1.0 / (i + 1) for i, p in enumerate(passages) if hit(p, q)), 0.0)
    n = max(1, len(answerable))
    return {
        "questions": len(answerable),
        **{f"recall@{k}": hits[k] / n for k in KS},
        f"mrr@{max(KS)}": rr / n,
        "search_ms_per_question_batched": per_query_ms,
        "reranked": reader is not None,
    }


# ---------------------------------------------------------------------------------------------------------------
# Answers: SQuAD normalisation and scoring


_MARKER = re.compile(r"\s*\[\d+\]")


def normalize_answer(text: str) -> str:
    """SQuAD's normalisation: lower case, no punctuation, no articles, single spaces."""
    import string

    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def f1_score(prediction: str, gold: str) -> float:
    from collections import Counter

    p, g = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if not p or not g:
        return float(p == g)
    same = sum((Counter(p) & Counter(g)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(p), same / len(g)
    return 2 * precision * recall / (precision + recall)


def sample_questions(questions: list[Question], answerable: int | None, impossible: int | None, seed: int) -> tuple[list[Question], list[Question]]:
    """A reproducible sample: ``random.Random(seed)`` draws the answerable ones, then the unanswerable ones."""
    import random

    rng = random.Random(seed)
    ans = [q for q in questions if not q.impossible]
    imp = [q for q in questions if q.impossible]
    ans = rng.sample(ans, answerable) if answerable is not None and answerable < len(ans) else ans
    imp = rng.sample(imp, impossible) if impossible is not None and impossible < len(imp) else imp
    return ans, imp


def evaluate_answers(answerable: list[Question], impossible: list[Question], index_dir: str | Path,
                     settings: Settings, progress: bool = False) -> dict[str, Any]:
    """F1/EM, contains-gold, citation accuracy, abstention, false refusals and latency of ``qa.answer``."""
    from .answering import answer

    rows = []
    questions = [*answerable, *impossible]
    answer(questions[0].question, index_dir=index_dir, settings=settings)  # warm up: load the models once
    for i, q in enumerate(questions):
        t0 = time.perf_counter()
        a = answer(q.question, index_dir=index_dir, settings=settings)
        rows.append((q, a, time.perf_counter() - t0))
        if progress and (i + 1) % 20 == 0:
            print(f"  {i + 1}/{len(questions)} answered", flush=True)
    f1s, ems, contains, cited, answered, refused, abstained = [], [], [], [], 0, 0, 0
    for q, a, _ in rows:
        text = _MARKER.sub("", a.text).strip()
        if q.impossible:
            abstained += a.abstained
            continue
        if a.abstained:
            refused += 1
            f1s.append(0.0), ems.append(0.0), contains.append(0.0)
            continue
        answered += 1
        golds = [t for _, _, t in q.golds]
        f1s.append(max(f1_score(text, g) for g in golds))
        ems.append(max(float(normalize_answer(text) == normalize_answer(g)) for g in golds))
        contains.append(max(float(normalize_answer(g) in normalize_answer(text)) for g in golds))
        cited.append(any(c.source == q.source and any(c.start <= s and e <= c.end for s, e, _ in q.golds)
                         for c in a.citations))
    answered_imp = [a for q, a, _ in rows if q.impossible and not a.abstained]
    lat = sorted(t for _, _, t in rows)
    n_ans, n_imp = max(1, len(answerable)), max(1, len(impossible))
    return {
        "answerable": len(answerable),
        "unanswerable": len(impossible),
        "f1": sum(f1s) / n_ans,
        "exact_match": sum(ems) / n_ans,
        "contains_gold": sum(contains) / n_ans,
        "f1_when_answered": (sum(f1s) / answered) if answered else 0.0,
        "citation_accuracy": (sum(cited) / len(cited)) if cited else 0.0,
        "abstention_on_unanswerable": abstained / n_imp,
        "false_refusals": refused / n_ans,
        "answered_unanswerable": len(answered_imp),
        "latency_p50_s": statistics.median(lat) if lat else 0.0,
        "latency_p95_s": lat[min(len(lat) - 1, int(0.95 * len(lat)))] if lat else 0.0,
        "calibration": reliability([(a.confidence, squad_right(a, q)) for q, a, _ in rows if not a.abstained]),
    }


def run_eval(path: str | Path, settings: Settings, workdir: str | Path | None = None, answers: int | None = None,
             impossible: int | None = None, seed: int = 13, progress: bool = False) -> dict[str, Any]:
    """Write the SQuAD file as articles, index them and score retrieval (and answers when ``answers`` or
    ``impossible`` is given). Returns a JSON-able report."""
    articles = load_squad(path)
    with tempfile.TemporaryDirectory(prefix="qa-eval-") as tmp:
        root = Path(workdir) if workdir else Path(tmp)
        # "eval-index": in a Milvus store the folder's name names the collection, apart from the user's "index"
        docs, index_dir = root / "docs", root / "eval-index"
        questions = write_corpus(articles, docs)
        t0 = time.perf_counter()
        stats = build_index(docs, index_dir, settings=settings)
        build_s = time.perf_counter() - t0
        report = {
            "file": str(path),
            "articles": len(articles),
            "paragraphs": sum(len(a["paragraphs"]) for a in articles),
            "answerable": sum(not q.impossible for q in questions),
            "unanswerable": sum(q.impossible for q in questions),
            "chunks": stats.chunks,
            "chunk_chars_median": statistics.median(
                [c.end - c.start for c in _all_chunks(open_store(index_dir, settings).load())]
            ) if stats.chunks else 0,
            "index_seconds": build_s,
            "embedder": embedder_name(settings),
            "retrieval": evaluate_retrieval(questions, index_dir, settings),
        }
        if answers or impossible:
            ans, imp = sample_questions(questions, answers or 0, impossible or 0, seed)
            report["answers"] = {"seed": seed, **evaluate_answers(ans, imp, index_dir, settings, progress)}
    return report


def format_report(report: dict[str, Any]) -> str:
    r = report["retrieval"]
    lines = [
        f"{report['file']}: {report['articles']} articles, {report['paragraphs']} paragraphs, "
        f"{report['answerable']} answerable / {report['unanswerable']} unanswerable questions",
        f"index: {report['chunks']} chunks (median {report['chunk_chars_median']:.0f} chars), "
        f"built in {report['index_seconds']:.1f} s with {report['embedder']}",
        f"retrieval over {r['questions']} answerable questions:",
    ]
    lines += [f"  recall@{k:<3} {r[f'recall@{k}']:.3f}" for k in KS]
    lines.append(f"  MRR@{max(KS):<5} {r[f'mrr@{max(KS)}']:.3f}")
    lines.append(f"  search  {r['search_ms_per_question_batched']:.1f} ms per question (batched)")
    if "answers" in report:
        a = report["answers"]
        lines += [
            f"answers on {a['answerable']} answerable + {a['unanswerable']} unanswerable questions (seed {a['seed']}):",
            f"  F1 {a['f1']:.3f}   exact match {a['exact_match']:.3f}   contains gold {a['contains_gold']:.3f}"
            f"   F1 when answered {a['f1_when_answered']:.3f}",
            f"  citation accuracy {a['citation_accuracy']:.3f} (answered questions whose citation covers the gold answer)",
            f"  abstention on unanswerable {a['abstention_on_unanswerable']:.3f}   false refusals {a['false_refusals']:.3f}",
            f"  latency p50 {a['latency_p50_s']:.2f} s   p95 {a['latency_p95_s']:.2f} s",
            _calibration_line(a["calibration"]),
        ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------
# Dialogues: doc2dial-format folders (documents/*.txt and turns.jsonl), scored as ../shared/README.md says.


@dataclass(frozen=True)
class DialogueTurn:
    id: str
    question: str
    history: tuple[tuple[str, str], ...]  # (role "user" | "agent", text), oldest first
    source: str  # the page's file name under documents/
    golds: tuple[tuple[int, int], ...]  # grounding spans [start, end) in that page

    def said(self, role: str) -> list[str]:
        """The earlier turns of ``role`` ("user" or "agent"), oldest first."""
        return [text for r, text in self.history if r == role]


def load_turns(folder: str | Path) -> list[DialogueTurn]:
    path = Path(folder) / "turns.jsonl"
    if not (Path(folder) / "documents").is_dir() or not path.is_file():
        raise QAError(f"{folder} is not a doc2dial-format folder: it needs documents/*.txt and turns.jsonl.")
    turns = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            t = json.loads(line)
            turns.append(DialogueTurn(t["id"], t["question"], tuple((h["role"], h["text"]) for h in t["history"]),
                              t["doc_file"], tuple((a["answer_start"], a["answer_start"] + len(a["text"]))
                                                   for a in t["answers"])))
    return turns


def sample_turns(turns: list[DialogueTurn], later: int, first: int, seed: int) -> tuple[list[DialogueTurn], list[DialogueTurn]]:
    """``random.Random(seed).sample(later_turns, later)``, then ``.sample(first_turns, first)`` from the same draw."""
    import random

    rng = random.Random(seed)
    late = [t for t in turns if t.history]
    firsts = [t for t in turns if not t.history]
    return rng.sample(late, min(later, len(late))), rng.sample(firsts, min(first, len(firsts)))


def tuning_turns(turns: list[DialogueTurn], n: int, seed: int = 5) -> list[DialogueTurn]:
    """``random.Random(seed).sample`` of ``n`` later turns (all, if fewer) outside the public figure's sample
    (``sample_turns(turns, 120, 40, 7)``): the dialogue turns that may be used for tuning."""
    import random

    later, first = sample_turns(turns, 120, 40, 7)
    public = {id(t) for t in later + first}
    pool = [t for t in turns if t.history and id(t) not in public]
    return random.Random(seed).sample(pool, min(n, len(pool)))


def _overlap(p: Passage, start: int, end: int) -> int:
    return max(0, min(p.end, end) - max(p.start, start))


def dialogue_hit(p: Passage, t: DialogueTurn) -> bool:
    """A passage of the right page that covers at least half of a gold span's characters."""
    return p.source == t.source and any(2 * _overlap(p, s, e) >= e - s > 0 for s, e in t.golds)


def cites_gold(citations, t: DialogueTurn) -> bool:
    return any(c.source == t.source and _overlap(c, s, e) > 0 for c in citations for s, e in t.golds)


def chat_history(t: DialogueTurn) -> list[dict[str, str]]:
    return [{"role": "user" if role == "user" else "assistant", "content": text} for role, text in t.history]


def evaluate_dialogues(later: list[DialogueTurn], first: list[DialogueTurn], index_dir: str | Path, settings: Settings,
                       progress: bool = False) -> dict[str, Any]:
    from .answering import answer
    from .search import search

    def found(question: str, t: DialogueTurn) -> bool:
        return any(dialogue_hit(p, t) for p in search(question, k=5, index_dir=index_dir, settings=settings))

    n_first = sum(found(t.question, t) for t in first)
    alone = followup = answered = cited = 0
    lat: list[float] = []
    given: list[tuple[float, bool]] = []
    for i, t in enumerate(later, 1):
        alone += found(t.question, t)
        t0 = time.perf_counter()
        a = answer(t.question, index_dir, history=chat_history(t), settings=settings)
        lat.append(time.perf_counter() - t0)
        followup += found(a.searched_for, t)
        if not a.abstained:
            answered += 1
            cited += cites_gold(a.citations, t)
            given.append((a.confidence, cites_gold(a.citations, t)))
        if progress and i % 20 == 0:
            import sys

            print(f"  {i}/{len(later)} later turns", file=sys.stderr, flush=True)
    lat.sort()
    return {
        "first_turns": len(first), "later_turns": len(later),
        "first@5": n_first / max(1, len(first)),
        "alone@5": alone / max(1, len(later)),
        "followup@5": followup / max(1, len(later)),
        "answered": answered / max(1, len(later)),
        "cited": cited / max(1, answered),
        "latency_p50_s": statistics.median(lat) if lat else 0.0,
        "calibration": reliability(given),
    }


def run_dialogue_eval(folder: str | Path, settings: Settings, workdir: str | Path | None = None, later: int = 120,
                      first: int = 40, seed: int = 7, progress: bool = False) -> dict[str, Any]:
    """Index the folder's documents and score search and answers on sampled turns. Returns a JSON-able report."""
    turns = load_turns(folder)
    late, firsts = sample_turns(turns, later, first, seed)
    with tempfile.TemporaryDirectory(prefix="qa-eval-") as tmp:
        index_dir = (Path(workdir) if workdir else Path(tmp)) / "eval-dialogues"
        t0 = time.perf_counter()
        stats = build_index(Path(folder) / "documents", index_dir, settings=settings)
        return {"folder": str(folder), "pages": stats.documents, "chunks": stats.chunks,
                "index_seconds": time.perf_counter() - t0, "embedder": embedder_name(settings), "seed": seed,
                "dialogues": evaluate_dialogues(late, firsts, index_dir, settings, progress)}


def format_dialogue_report(report: dict[str, Any]) -> str:
    d = report["dialogues"]
    return "\n".join([
        f"{report['folder']}: {report['pages']} pages, {report['chunks']} chunks, indexed in "
        f"{report['index_seconds']:.1f} s with {report['embedder']}",
        f"{d['later_turns']} later + {d['first_turns']} first turns (seed {report['seed']}); a hit covers half a gold span:",
        f"  search top 5: first turns {d['first@5']:.3f}   later turns alone {d['alone@5']:.3f}   "
        f"later turns as searched for after the follow-up rewrite {d['followup@5']:.3f}",
        f"  later turns answered {d['answered']:.3f}   of those, citing the gold span {d['cited']:.3f}",
        f"  latency p50 {d['latency_p50_s']:.2f} s",
        _calibration_line(d["calibration"]),
    ])


def _calibration_line(c: dict[str, Any]) -> str:
    """The reliability of the confidence shown on answers given: per bin, the mean confidence and the share right."""
    bins = "  ".join(f"{b['bin']}: {b['answers']} at {b['confidence']:.2f}, {b['right']:.2f} right" for b in c["bins"])
    floor = c.get("ece_if_calibrated")
    floor = (f" (a perfectly calibrated confidence: median {floor['median']:.3f}, 95 % under {floor['p95']:.3f})"
             if floor else "")
    return (f"  confidence of the {c['answers']} answers given: ECE {c['ece']:.3f} (5 bins){floor}, wrong answers "
            f"shown at 90 % or more {c['wrong_at_90_or_more']:.3f}\n    {bins}")


# ---------------------------------------------------------------------------------------------------------------
# Whether an answer is right: what Answer.confidence estimates (qa/weights/fit_confidence.py) and what the
# reliability tables in docs/benchmarks.md count.


def covers(c: Passage, source: str, start: int, end: int, half: bool = False) -> bool:
    """``c`` is in ``source`` and covers ``[start, end)`` (with ``half``: at least half of its characters)."""
    if c.source != source or end <= start:
        return False
    return 2 * _overlap(c, start, end) >= end - start if half else (c.start <= start and end <= c.end)


#: How many questions back the first question of a factoid follow-up may be (SQuAD lists a paragraph's questions
#: together).
FOLLOW_UP_BACK = 3
_NAME = re.compile(r"\b([A-Z][\w'-]+(?:\s+(?:of\s+)?[A-Z][\w'-]+)*)")


def factoid_follow_ups(questions: list[Question], unanswerable: bool = False) -> list[tuple[Question, Question, str]]:
    """``(first, second, second as a follow-up)`` from SQuAD questions: an answerable question, then a later one
    of the same article (at most FOLLOW_UP_BACK apart) with the longest name the two share replaced by "it"
    ("What is the major tributary of the Rhine?" after a question about the Rhine: "What is the major tributary
    of it?"), kept when :func:`qa.questions.needs_context` then holds. Crude (the replacement does not always read
    well), but factoid, unlike doc2dial's turns. ``unanswerable``: the second may be unanswerable too."""
    from .questions import needs_context

    out = []
    for i, q2 in enumerate(questions):
        for q1 in reversed(questions[max(0, i - FOLLOW_UP_BACK):i]):  # the nearest earlier one sharing a name
            if q1.impossible or (q2.impossible and not unanswerable) or q1.source != q2.source:
                continue
            names = [m for m in _NAME.findall(q2.question[1:]) if m in q1.question]
            if not names:
                continue
            name = max(names, key=len)
            asked = re.sub(r"\bthe\s+" + re.escape(name), name, q2.question, count=1).replace(name, "it", 1)
            if asked != q2.question and needs_context(asked):
                out.append((q1, q2, asked))
            break
    return out


def squad_right(a, q: Question) -> bool:
    """A short answer is right when its F1 against a gold answer is at least 0.5 or it holds a gold answer;
    quoted sentences are right when a citation covers a gold answer. Any answer to an unanswerable question is
    wrong, and so is an abstention (it is not an answer)."""
    if a.abstained or q.impossible:
        return False
    if a.shape == "short":
        golds = [t for _, _, t in q.golds]
        return (max(f1_score(a.short, g) for g in golds) >= 0.5
                or any(normalize_answer(g) and normalize_answer(g) in normalize_answer(a.short) for g in golds))
    return any(covers(c, q.source, s, e) for c in a.citations for s, e, _ in q.golds)


# ---------------------------------------------------------------------------------------------------------------
# SelQA answer-sentence files, scored as ../shared/README.md says: each (article, section) is one file, the line
# "{article} — {section}", a blank line, then its candidates joined by single spaces. A hit: the answer is not
# abstained and a citation in the right file covers at least half of the characters of an answer sentence.


@dataclass(frozen=True)
class SentenceQuestion:
    question: str
    source: str
    golds: tuple[tuple[int, int], ...]  # the answer sentences, [start, end) in the file
    q_types: tuple[str, ...]
    article: str = ""


def load_selqa(path: str | Path, folder: str | Path) -> list[SentenceQuestion]:
    """Write the file's sections into ``folder`` and return its questions with their answer sentences' offsets."""
    try:
        items = json.loads(Path(path).read_text(encoding="utf-8"))
        _ = [(i["question"], i["article"], i["section"], i["candidates"], i["answers"]) for i in items]
    except FileNotFoundError:
        raise QAError(f"No such file: {path}. Pass a SelQA answer-sentence JSON file.") from None
    except (ValueError, KeyError, TypeError) as e:
        raise QAError(f"{path} is not a SelQA answer-sentence file ({type(e).__name__}: {e}).") from None
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names: dict[tuple[str, str], str] = {}
    taken: set[str] = set()
    out = []
    for item in items:
        key = (item["article"], item["section"])
        head = f"{item['article']} — {item['section']}\n\n"
        starts, pos = [], len(head)
        for c in item["candidates"]:
            starts.append(pos)
            pos += len(c) + 1
        if key not in names:
            names[key] = _file_name(f"{key[0]}_{key[1]}", taken)
            with open(folder / names[key], "w", encoding="utf-8", newline="") as f:
                f.write(head + " ".join(item["candidates"]))
        golds = tuple((starts[i], starts[i] + len(item["candidates"][i])) for i in item["answers"])
        out.append(SentenceQuestion(item["question"], names[key], golds, tuple(item.get("q_types") or ()),
                                    item["article"]))
    return out


def selqa_right(a, q: SentenceQuestion) -> bool:
    return not a.abstained and any(covers(c, q.source, s, e, half=True) for c in a.citations for s, e in q.golds)


def run_selqa_eval(path: str | Path, settings: Settings, workdir: str | Path | None = None, sample: int = 0,
                   seed: int = 13, progress: bool = False, articles=None) -> dict[str, Any]:
    """Index the file's sections together and ask every question (or a seeded ``sample``) through ``qa.answer``:
    the share cited (a citation covers half of an answer sentence) and answered, overall and by question type.
    ``articles`` (a predicate on the article's name) keeps only those articles' questions; every section is indexed."""
    import random

    from .answering import answer

    with tempfile.TemporaryDirectory(prefix="qa-eval-") as tmp:
        root = Path(workdir) if workdir else Path(tmp)
        questions = load_selqa(path, root / "docs")
        if articles is not None:
            questions = [q for q in questions if articles(q.article)]
        if sample and sample < len(questions):
            questions = random.Random(seed).sample(questions, sample)
        t0 = time.perf_counter()
        stats = build_index(root / "docs", root / "eval-selqa", settings=settings)
        index_s = time.perf_counter() - t0
        rows, lat = [], []
        for i, q in enumerate(questions, 1):
            t1 = time.perf_counter()
            a = answer(q.question, root / "eval-selqa", settings=settings)
            lat.append(time.perf_counter() - t1)
            rows.append((q, a, selqa_right(a, q)))
            if progress and i % 50 == 0:
                print(f"  {i}/{len(questions)} questions", file=__import__("sys").stderr, flush=True)
    by_type: dict[str, dict[str, float]] = {}
    for t in sorted({t for q, _, _ in rows for t in q.q_types}):
        mine = [(a, ok) for q, a, ok in rows if t in q.q_types]
        by_type[t] = {"questions": len(mine), "cited": sum(ok for _, ok in mine) / len(mine),
                      "answered": sum(not a.abstained for a, _ in mine) / len(mine)}
    n = max(1, len(rows))
    return {"file": str(path), "sections": stats.documents, "chunks": stats.chunks, "index_seconds": index_s,
            "embedder": embedder_name(settings), "seed": seed if sample else None, "questions": len(rows),
            "cited": sum(ok for *_, ok in rows) / n, "answered": sum(not a.abstained for _, a, _ in rows) / n,
            "cited_when_answered": sum(ok for *_, ok in rows) / max(1, sum(not a.abstained for _, a, _ in rows)),
            "by_type": by_type, "latency_p50_s": statistics.median(lat) if lat else 0.0,
            "calibration": reliability([(a.confidence, ok) for _, a, ok in rows if not a.abstained]),
            # A short answer is judged here by its sentence alone (SelQA has no gold span), which is not what its
            # confidence estimates (that the span is right); quoted answers are judged as the confidence means.
            "calibration_quotes": reliability([(a.confidence, ok) for _, a, ok in rows
                                               if not a.abstained and a.shape == "quotes"])}


def reliability(pairs: list[tuple[float, bool]], bins: int = 5) -> dict[str, Any]:
    """Expected calibration error over ``bins`` equal-width confidence bins, and each bin's count, mean
    confidence and share right, for answers given as (confidence, right)."""
    table, ece = [], 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        mine = [(p, ok) for p, ok in pairs if lo <= p < hi or (b == bins - 1 and p == 1.0)]
        if mine:
            conf, acc = sum(p for p, _ in mine) / len(mine), sum(ok for _, ok in mine) / len(mine)
            ece += len(mine) / len(pairs) * abs(conf - acc)
            table.append({"bin": f"{lo:.1f}-{hi:.1f}", "answers": len(mine), "confidence": round(conf, 3),
                          "right": round(acc, 3)})
    wrong = [p for p, ok in pairs if not ok]
    return {"answers": len(pairs), "ece": round(ece, 4), "bins": table,
            "wrong_at_90_or_more": round(sum(p >= 0.9 for p in wrong) / max(1, len(wrong)), 4),
            "ece_if_calibrated": ece_if_calibrated([p for p, _ in pairs], bins)}


def ece_if_calibrated(confidences: list[float], bins: int = 5, draws: int = 2000, seed: int = 0) -> dict[str, float]:
    """The ECE a perfectly calibrated confidence would show on these answers (each right with exactly its
    confidence), by simulation: its median and 95th percentile. On few answers ECE is far from 0 even then (the
    public SQuAD sample's 130 answers: median 0.06), so a measured ECE is read against this floor."""
    import numpy as np

    if not confidences:
        return {"median": 0.0, "p95": 0.0}
    conf = np.asarray(confidences, dtype=float)
    which = np.minimum((conf * bins).astype(int), bins - 1)
    right = np.random.default_rng(seed).random((draws, len(conf))) < conf
    ece = np.zeros(draws)
    for b in np.unique(which):
        mine = which == b
        ece += mine.sum() / len(conf) * np.abs(right[:, mine].mean(1) - conf[mine].mean())
    return {"median": round(float(np.median(ece)), 4), "p95": round(float(np.percentile(ece, 95)), 4)}


def format_selqa_report(report: dict[str, Any]) -> str:
    lines = [f"{report['file']}: {report['sections']} sections, {report['chunks']} chunks, indexed in "
             f"{report['index_seconds']:.1f} s with {report['embedder']}",
             f"{report['questions']} questions" + (f" (seed {report['seed']})" if report["seed"] is not None else "")
             + f": cited {report['cited']:.3f}   answered {report['answered']:.3f}   cited when answered "
               f"{report['cited_when_answered']:.3f}"]
    lines += [f"  {t:<6} {r['questions']:>5} questions   cited {r['cited']:.3f}   answered {r['answered']:.3f}"
              for t, r in report["by_type"].items()]
    lines.append(_calibration_line(report["calibration"]))
    if "calibration_quotes" in report:
        lines.append("  quoted answers only, judged as their confidence means (a short answer is judged here by its "
                     "sentence, not its span):")
        lines.append(_calibration_line(report["calibration_quotes"]))
    lines.append(f"  latency p50 {report['latency_p50_s']:.2f} s")
    return "\n".join(lines)
