"""The browser UI's HTML: the chat, the source cards with the cited sentence highlighted, the library and a
build's summary, and the page's CSS. Everything that came from an article or a model goes through ``esc``, so
`<script>`, `onerror=` and Markdown images stay text."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from .answering import Answer
from .config import Settings
from .errors import QAError
from .evidence import indexed_text
from .index import live_manifest
from .local_store import LoadedIndex
from .search import Passage

WINDOW_CHARS = 600  # article text shown on each side of a cited sentence


@dataclass(frozen=True)
class Turn:
    """One question and its answer, with the article window around each citation (computed when answered,
    so the sources panel stays right even if the index changes afterwards)."""

    answer: Answer
    windows: tuple[tuple[str, str, str], ...] = ()  # per citation: (text before, cited text, text after)
    error: str = ""


# ---------------------------------------------------------------------------------------------------------------
# Rendering: everything that came from an article or a model goes through `esc`.


def esc(text: str) -> str:
    return html.escape(text, quote=True)


#: A follow-up is searched with the conversation's earlier questions and last answer pasted in, which can run to
#: hundreds of words; the chat shows the start of it, and the whole on hover (and in ``Answer.searched_for``).
SEARCHED_CHARS = 160


def searched_html(searched_for: str) -> str:
    shown = searched_for
    if len(shown) > SEARCHED_CHARS:
        cut = shown.rfind(" ", 0, SEARCHED_CHARS)
        shown = shown[:cut if cut > SEARCHED_CHARS // 2 else SEARCHED_CHARS].rstrip(" ,;:(") + " …"
    return f"<div class='qa-searched' title='{esc(searched_for)}'>searched for: <q>{esc(shown)}</q></div>"


def window(loaded: LoadedIndex | None, p: Passage, chars: int = WINDOW_CHARS) -> tuple[str, str, str]:
    """(before, cited, after): the cited text with up to ``chars`` characters of its article on each side."""
    text = indexed_text(loaded, p.source) if loaded is not None else ""
    if text[p.start:p.end] != p.text:  # the article changed or was removed since: show the citation alone
        return "", p.text, ""
    a, b = max(0, p.start - chars), min(len(text), p.end + chars)
    # Start and stop at a word boundary so the window doesn't open mid-word.
    if a > 0:
        a = next((i + 1 for i in range(a, p.start) if text[i].isspace()), a)
    if b < len(text):
        b = next((i for i in range(b, p.end, -1) if text[i - 1].isspace()), b)
    before, after = text[a:p.start], text[p.end:b]
    return ("… " if a > 0 else "") + before, p.text, after + (" …" if b < len(text) else "")


_CITE = re.compile(r"\[(\d+)\]")


def _answer_html(text: str, turn_no: int) -> str:
    """The answer text escaped, with each [n] turned into a link to source n of this turn."""
    parts, pos = [], 0
    for m in _CITE.finditer(text):
        parts.append(esc(text[pos:m.start()]))
        n = m.group(1)
        parts.append(f"<a class='qa-cite' href='#qa-src-{turn_no}-{n}' data-target='qa-src-{turn_no}-{n}' "
                     f"title='Show source {n}'>[{n}]</a>")
        pos = m.end()
    parts.append(esc(text[pos:]))
    return "".join(parts)


def _in_sentence(a: Answer, turn_no: int) -> str:
    """A short answer shown inside the verbatim sentence it came from, the answer marked."""
    if a.shape != "short" or not a.citations:
        return ""
    c = a.citations[0]
    i, j = c.answer_start - c.start, c.answer_end - c.start
    if not (0 <= i < j <= len(c.text)):
        return ""
    return (f"<blockquote class='qa-context'>“{esc(c.text[:i])}<mark>{esc(c.text[i:j])}</mark>{esc(c.text[j:])}” "
            f"{_answer_html(f'[{c.n}]', turn_no)}</blockquote>")


#: What the confidence shown beside an answer means, by the answer's shape (its tooltip).
_CONFIDENCE_MEANS = {
    "short": "The estimated chance that this answer is right, measured on held-out questions",
    "quotes": "The estimated chance that this answer is right, measured on held-out questions",
    "overview": "The chance that each quoted line is its article's opening, checked by hand on held-out articles",
    "source": "The estimated chance that the answer whose sentences these are is right, as shown with it",
}


def render_chat(turns: list[Turn], pending: Answer | None = None, pending_question: str = "",
                status: str = "", waiting: list[str] | tuple[str, ...] = ()) -> str:
    if not turns and pending is None and not pending_question and not waiting:
        return ("<div class='qa-chat qa-empty'><p>Ask a question about the articles. Every answer is copied from "
                "article sentences and cites them; when the articles don't say, you are told so.</p></div>")
    out = ["<div class='qa-chat'>"]
    for i, t in enumerate(turns, 1):
        a = t.answer
        out.append(f"<div class='qa-msg qa-user'>{esc(a.question)}</div>")
        if t.error:
            out.append(f"<div class='qa-msg qa-bot qa-error' role='alert'><strong>Could not answer.</strong> "
                       f"{esc(t.error)}</div>")
            continue
        searched = searched_html(a.searched_for) if a.history_used else ""
        if a.corrected:  # its misspelt words were corrected before it was read (qa/spelling.py)
            searched = f"<div class='qa-searched qa-corrected'>read as: <q>{esc(a.corrected)}</q></div>" + searched
        if a.shape == "chat":  # a reply to small talk: it claims nothing, so it shows no badge, sources or confidence
            out.append(f"<div class='qa-msg qa-bot qa-chat-reply' data-turn='{i}'><p>{esc(a.text)}</p></div>")
        elif a.abstained:
            out.append(
                f"<div class='qa-msg qa-bot qa-abstain' data-turn='{i}'>{searched}"
                f"<div class='qa-badge'>Not in the articles</div>"
                f"<p>{esc(a.text)}</p>"
                + ("<p class='qa-note'>The closest passages are listed under Sources as related reading, "
                   "not as evidence.</p>" if a.related else "")
                + "</div>")
        else:
            out.append(
                f"<div class='qa-msg qa-bot qa-answer' data-turn='{i}'>{searched}"
                f"<p class='qa-text{' qa-lines' if a.shape in ('overview', 'source') else ''}'>{_answer_html(a.text, i)}</p>"
                f"{_in_sentence(a, i)}"
                f"<div class='qa-meta'>{len(a.citations)} source{'s' if len(a.citations) != 1 else ''} · "
                f"<span title='{esc(_CONFIDENCE_MEANS.get(a.shape, _CONFIDENCE_MEANS['short']))}'>"
                f"{a.confidence:.0%} likely right</span> · {a.seconds:.1f} s</div></div>")
    if pending_question:
        body = esc(pending.text) if pending is not None and pending.text else ""
        out.append(f"<div class='qa-msg qa-user'>{esc(pending_question)}</div>")
        out.append("<div class='qa-msg qa-bot qa-pending' aria-busy='true'>"
                   + (searched_html(pending.searched_for) if pending is not None and pending.history_used else "")
                   + f"<p class='qa-text'>{body}<span class='qa-caret'>▍</span></p>"
                   f"<div class='qa-meta'>{esc(status)}</div></div>")
    for j, q in enumerate(waiting, 1):
        out.append(f"<div class='qa-msg qa-user qa-queued'>{esc(q)}</div>")
        out.append(f"<div class='qa-msg qa-bot qa-waiting' aria-busy='true'><div class='qa-meta'>waiting: "
                   f"{'answered next' if j == 1 else f'number {j} in line'}, after the question above</div></div>")
    out.append("</div>")
    return "".join(out)


def _source_card(turn_no: int, n: int, p: Passage, win: tuple[str, str, str], show_scores: bool,
                 related: bool = False) -> str:
    before, cited, after = win
    scores = (f"<div class='qa-scores'>score {p.score:.3f} · dense {p.dense:.3f} · BM25 {p.bm25:.2f}</div>"
              if show_scores else "")
    label = "related" if related else f"[{n}]"
    ident = f"qa-rel-{turn_no}-{n}" if related else f"qa-src-{turn_no}-{n}"
    return (
        f"<div class='qa-src{' qa-related' if related else ''}' id='{ident}'>"
        f"<div class='qa-src-head'><span class='qa-n'>{label}</span> <strong>{esc(p.title)}</strong></div>"
        f"<div class='qa-file'><code>{esc(p.source)}</code> · characters {p.start}–{p.end}</div>{scores}"
        f"<div class='qa-window'>{esc(before)}<mark class='qa-hl'>{esc(cited)}</mark>{esc(after)}</div></div>"
    )


def render_sources(turns: list[Turn], show_scores: bool = False) -> str:
    if not turns:
        return "<div class='qa-sources qa-empty'><p>Sources of the answers appear here.</p></div>"
    out = ["<div class='qa-sources'>"]
    # Newest first and open; older turns folded (a click on their [n] unfolds them). Errors and replies to small
    # talk have no sources, so the newest turn that does is the one open.
    newest = max((i for i, t in enumerate(turns, 1) if not t.error and t.answer.shape != "chat"), default=0)
    for i in range(len(turns), 0, -1):
        t = turns[i - 1]
        a = t.answer
        if t.error or a.shape == "chat":  # a reply to small talk has no passage to show
            continue
        cards = [_source_card(i, c.n, c, w, show_scores) for c, w in zip(a.citations, t.windows)]
        if a.abstained:
            cards = [_source_card(i, j, p, w, show_scores, related=True)
                     for j, (p, w) in enumerate(zip(a.related, t.windows), 1)]
        if not cards:
            cards = ["<p class='qa-note'>No passage to show.</p>"]
        title = f"Q{i}: {esc(a.question)}"
        out.append(f"<details class='qa-turn' id='qa-turn-{i}'{' open' if i == newest else ''}>"
                   f"<summary>{title}{' (not in the articles: related passages)' if a.abstained else ''}"
                   f"</summary>{''.join(cards)}</details>")
    out.append("</div>")
    return "".join(out)


def render_library(index_dir: str | Path, settings: Settings | None = None) -> str:
    try:
        m = live_manifest(index_dir, settings)
    except QAError as e:
        return f"<div class='qa-error' role='alert'>{esc(str(e))}</div>"
    rows = []
    for source, f in sorted(m["files"].items()):
        when = f.get("indexed_at", "")
        try:
            when = datetime.fromisoformat(when).astimezone().strftime("%Y-%m-%d %H:%M")
        except (TypeError, ValueError):
            pass
        rows.append(f"<tr><td>{esc(f.get('title', ''))}</td><td><code>{esc(source)}</code></td>"
                    f"<td class='qa-num'>{int(f.get('chunks', 0))}</td><td>{esc(when)}</td></tr>")
    skipped = "".join(f"<li><code>{esc(s['source'])}</code>: {esc(s['reason'])}</li>" for s in m.get("skipped", []))
    counts = m.get("counts", {})
    return (
        f"<div class='qa-library'><p>{int(counts.get('documents', len(rows)))} articles, "
        f"{int(counts.get('chunks', 0))} chunks · index <code>{esc(str(m.get('generation', '')))}</code> built "
        f"{esc(str(m.get('created', '')))} from <code>{esc(str(m.get('docs_dir', '')))}</code> with "
        f"<code>{esc(str(m['embedder']['name']))}</code></p>"
        "<table class='qa-table'><thead><tr><th>Title</th><th>File</th><th>Chunks</th><th>Indexed</th></tr>"
        f"</thead><tbody>{''.join(rows)}</tbody></table>"
        + (f"<details class='qa-skipped'><summary>Skipped files ({len(m.get('skipped', []))})</summary>"
           f"<ul>{skipped}</ul></details>" if skipped else "")
        + "</div>"
    )


def render_stats(stats) -> str:
    def names(items):
        return ", ".join(esc(s) for s in items[:20]) + (" …" if len(items) > 20 else "")

    lines = [f"<strong>{'Index updated' if stats.wrote else 'Nothing changed'}</strong> "
             f"({esc(stats.generation)}, {stats.seconds:.1f} s): {stats.documents} articles, {stats.chunks} chunks, "
             f"{stats.chunks_embedded} embedded, {stats.chunks_reused} reused; {stats.sentences} sentences."]
    for label, items in (("Added", stats.added), ("Changed", stats.changed), ("Removed", stats.removed)):
        if items:
            lines.append(f"{label} ({len(items)}): {names(items)}")
    if stats.skipped:
        lines.append("Skipped: " + "; ".join(f"{esc(s.source)} ({esc(s.reason)})" for s in stats.skipped[:20]))
    return "<div class='qa-ok' role='status'>" + "<br>".join(lines) + "</div>"


def error_html(e: BaseException) -> str:
    return f"<div class='qa-error' role='alert'><strong>Error:</strong> {esc(str(e))}</div>"


CSS = """
:root { --qa-accent: #1d4ed8; }
.qa-chat { display: flex; flex-direction: column; gap: .6rem; min-height: 14rem; }
.qa-empty { color: #6b7280; }
.qa-msg { padding: .6rem .8rem; border-radius: .6rem; max-width: 92%; line-height: 1.5; }
.qa-user { align-self: flex-end; background: #eef2ff; border: 1px solid #c7d2fe; }
.qa-bot { align-self: flex-start; background: #ffffff; border: 1px solid #d1d5db; }
.qa-answer { border-left: 4px solid #16a34a; }
.qa-abstain { border-left: 4px solid #d97706; background: #fffbeb; }
.qa-pending { border-left: 4px solid #9ca3af; }
.qa-waiting { border-left: 4px dashed #d1d5db; color: #6b7280; }
.qa-error { border-left: 4px solid #dc2626; background: #fef2f2; padding: .5rem .8rem; border-radius: .4rem; }
.qa-ok { border-left: 4px solid #16a34a; background: #f0fdf4; padding: .5rem .8rem; border-radius: .4rem; }
.qa-badge { display: inline-block; font-size: .8rem; font-weight: 600; color: #92400e; background: #fde68a;
            border-radius: .3rem; padding: 0 .4rem; margin-bottom: .3rem; }
.qa-searched { font-size: .85rem; color: #4b5563; margin-bottom: .3rem; }
.qa-meta, .qa-note, .qa-file, .qa-scores { font-size: .8rem; color: #6b7280; }
.qa-text { margin: 0; font-size: 1.05rem; }
.qa-context { margin: .4rem 0 0; padding: .2rem .6rem; border-left: 3px solid #d1d5db; color: #374151;
  font-family: Georgia, serif; font-size: .95rem; }
.qa-context mark { background: #fef08a; color: #111827; padding: 0 .1rem; }
.qa-cite { font-weight: 600; color: var(--qa-accent); text-decoration: none; cursor: pointer; padding: 0 .1rem; }
.qa-cite:hover { text-decoration: underline; }
.qa-caret { animation: qa-blink 1s steps(1) infinite; color: #9ca3af; }
@keyframes qa-blink { 50% { opacity: 0; } }
.qa-turn { margin-bottom: .6rem; }
.qa-turn > summary { cursor: pointer; font-weight: 600; margin-bottom: .4rem; }
.qa-src { border: 1px solid #d1d5db; border-radius: .5rem; padding: .5rem .7rem; margin-bottom: .5rem;
          transition: box-shadow .3s, border-color .3s; }
.qa-src.qa-active, .qa-src:target { border-color: var(--qa-accent); box-shadow: 0 0 0 3px #bfdbfe; }
.qa-related { border-style: dashed; }
.qa-n { font-weight: 700; color: var(--qa-accent); }
.qa-lines { white-space: pre-line; }
.qa-window { white-space: pre-line; font-family: Georgia, serif; margin-top: .4rem; max-height: 18rem;
             overflow-y: auto; color: #374151; }
.qa-hl { background: #fef08a; color: #111827; padding: 0 .1rem; }
.qa-table { width: 100%; border-collapse: collapse; }
.qa-table th, .qa-table td { text-align: left; padding: .25rem .5rem; border-bottom: 1px solid #e5e7eb; }
.qa-num { text-align: right; }
"""
