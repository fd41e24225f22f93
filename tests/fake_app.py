"""The real app with fake models, in its own process: ``python -m tests.fake_app DOCS INDEX PORT``.

The embedder is the hashing fake (in this process); the reader is ``fakes.CrashingReader`` in the worker process,
exactly where the real reader runs, so tests can crash it and watch the app live on. Also used for the browser
tests that need a reader slow enough to send a second question while the first is answered (``QA_FAKE_DELAY``).
"""

import sys

import qa
from qa import ui
from qa.config import Settings

from . import fakes


def main() -> None:
    docs, index_dir, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    fakes.register("fake")
    qa.register_reader("crashy", fakes.CrashingReader)
    settings = Settings(embedder="fake", reader="crashy", progress=False)
    qa.build_index(docs, index_dir, settings=settings)
    demo = ui.build_ui(index_dir, docs, settings)
    ui.launch(demo, port=port, settings=settings, index_dir=index_dir, docs_dir=docs, quiet=True)


if __name__ == "__main__":
    main()
