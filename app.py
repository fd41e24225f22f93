"""Gradio UI: ask about the articles and read the passages that match, with their exact place in the file.

    python app.py            # http://127.0.0.1:7860, index/ built from seeds/ on first use

This is the search front end; cited answers join it with `qa.answer()`. Nothing is built at import.
"""

from __future__ import annotations

import html
import os

import qa
from qa.config import Settings
from qa.index import DEFAULT_INDEX_DIR


def render_passages(passages: list[qa.Passage], show_scores: bool = True) -> str:
    """Passages as inert HTML: every piece of article text is escaped, so nothing in an article can run."""
    if not passages:
        return "<p><em>No passage in the articles matches this question.</em></p>"
    parts = []
    for i, p in enumerate(passages, 1):
        score = (f" · score {p.score:.3f} (dense {p.dense:.2f}, BM25 {p.bm25:.1f})" if show_scores else "")
        body = html.escape(p.text).replace("\n", "<br>")
        parts.append(
            f"<div class='qa-passage' id='passage-{i}'><h4>[{i}] {html.escape(p.title)}</h4>"
            f"<p><code>{html.escape(p.source)}</code> characters {p.start}–{p.end}{score}</p>"
            f"<blockquote>{body}</blockquote></div>"
        )
    return "\n".join(parts)


def build_ui(index_dir: str = DEFAULT_INDEX_DIR, settings: Settings | None = None):
    import gradio as gr

    settings = settings or Settings.from_env()

    def run_search(question: str, k: float, show_scores: bool) -> str:
        try:
            return render_passages(qa.search(question, k=int(k), index_dir=index_dir, settings=settings), show_scores)
        except qa.QAError as e:
            return f"<p class='qa-error'><strong>{html.escape(type(e).__name__)}:</strong> {html.escape(str(e))}</p>"

    with gr.Blocks(title="qa: ask the articles") as demo:
        gr.Markdown("## Ask the articles\nPassages are quoted exactly from the files, with their character offsets.")
        with gr.Row():
            question = gr.Textbox(label="Question", placeholder="How many soldiers would European countries contribute?",
                                  scale=4)
            ask = gr.Button("Search", variant="primary", scale=1)
        with gr.Row():
            k = gr.Slider(1, 10, value=5, step=1, label="Passages")
            show_scores = gr.Checkbox(value=True, label="Show retrieval scores")
        results = gr.HTML()
        ask.click(run_search, [question, k, show_scores], results, api_name="search")
        question.submit(run_search, [question, k, show_scores], results, api_name=False)
    return demo


if __name__ == "__main__":
    build_ui().launch(server_name=os.environ.get("QA_HOST", "127.0.0.1"), server_port=int(os.environ.get("QA_PORT", "7860")))
