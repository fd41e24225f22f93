"""What the bench/fit_*.py scripts share: the held-out tuning sample and a conditional logit.

The evaluation sample (100 answerable + 100 unanswerable, seed 13, as `qa eval --answers 100 --impossible 100`) is
excluded; tuning questions are drawn from the rest with seed 7, so every fitted weight is judged on questions it
never saw.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

from qa.evaluation import Question, load_squad, sample_questions, write_corpus
from qa.index import build_index


def record_reads(settings, seen: dict, pass_prior: bool = True) -> None:
    """Make the reader for ``settings`` leave each ``extract`` result in ``seen["ext"]`` (and its contexts in
    ``seen["contexts"]``). ``pass_prior=False`` withholds the retrieval prior, to record the reader's own choice."""
    from qa.generation import get_generator

    reader = get_generator(settings)
    extract = reader.extract

    def recording_extract(question, contexts, on_text=None, prior=None):
        seen["contexts"] = list(contexts)
        seen["ext"] = extract(question, contexts, on_text=on_text, prior=prior if pass_prior else None)
        return seen["ext"]

    reader.extract = recording_extract


SQUAD = str(Path(__file__).resolve().parents[2] / "shared/data/squad2-dev-5-articles.json")


def tuning_args(parser: argparse.ArgumentParser | None = None) -> argparse.Namespace:
    """``--squad`` and ``--tune`` (answerable questions), as the fit scripts that read answerable questions take,
    added to a script's own ``parser`` if it has one."""
    parser = parser or argparse.ArgumentParser()
    parser.add_argument("--squad", default=SQUAD)
    parser.add_argument("--tune", type=int, default=300, help="answerable questions")
    return parser.parse_args()


def read_tuning_questions(settings, seen: dict, squad: str, tune: int) -> Iterator[Question]:
    """Answer each held-out answerable tuning question in turn, yielding it once ``seen`` holds what the recording
    hooks left for it (see ``record_reads``); progress goes to stderr."""
    from qa.answering import answer_many

    with tempfile.TemporaryDirectory() as tmp:
        tune_ans, _, index_dir = tuning_sample(squad, Path(tmp), tune, tune, settings)
        for i, q in enumerate(tune_ans):
            seen.clear()
            answer_many([q.question], index_dir, settings)
            yield q
            if (i + 1) % 50 == 0:
                print(f"  {i + 1}/{len(tune_ans)}", file=sys.stderr, flush=True)


def tuning_sample(squad: str, folder: Path, answerable: int, impossible: int, settings) -> tuple[list[Question], list[Question], Path]:
    """Write the SQuAD articles under ``folder``, index them, and draw the held-out tuning questions."""
    questions = write_corpus(load_squad(squad), folder / "docs")
    build_index(folder / "docs", folder / "index", settings=settings)
    ev_ans, ev_imp = sample_questions(questions, 100, 100, 13)
    held = {q.id for q in ev_ans + ev_imp}
    ans, imp = sample_questions([q for q in questions if q.id not in held], answerable, impossible, 7)
    return ans, imp, folder / "index"


def conditional_logit(rows: list[tuple[np.ndarray, np.ndarray]], l2: float) -> np.ndarray:
    """Weights w maximising, per row (X: one line per candidate, right: which candidates are right), the softmax
    probability of the right candidates under X @ w. Rows with no right candidate are skipped."""
    def nll(w):
        total = l2 * float(w @ w)
        for X, right in rows:
            if right.any():
                z = X @ w
                p = np.exp(z - z.max())
                total -= np.log((p / p.sum())[right].sum() + 1e-12)
        return total

    return minimize(nll, np.zeros(rows[0][0].shape[1]), method="L-BFGS-B").x


def cross_validated_picks(rows: list[tuple[np.ndarray, np.ndarray]], l2: float, folds: int = 5) -> list[int]:
    """For each row, the candidate picked by weights fitted on the other folds."""
    picks = [0] * len(rows)
    for fold in np.array_split(np.random.default_rng(0).permutation(len(rows)), folds):
        held_out = set(fold.tolist())
        w = conditional_logit([r for i, r in enumerate(rows) if i not in held_out], l2)
        for i in fold:
            picks[i] = int(np.argmax(rows[i][0] @ w))
    return picks
