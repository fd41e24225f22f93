# Two entry points, both starting from a fresh machine:
#   make run    set up .venv, then start the app on the seeds (http://127.0.0.1:7860)
#   make test   set up .venv, then run the whole test suite
PY := .venv/bin/python
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: setup check run test lint reader
setup: .venv/.installed

# torch is pinned first: the 2.13.0 CPU wheel is on disk; an unpinned torch would pull gigabytes of CUDA.
.venv/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[test,milvus]"
	# Set-up proves it works: every model on the answer path loads, each in a process of its own, and answers.
	$(PY) -m qa check
	touch $@

check: setup
	$(PY) -m qa check

run: setup
	$(PY) app.py

test: setup
	$(PY) -m pytest -q

lint: setup
	$(PY) -m ruff check qa tests bench app.py

# Retrain the evidence reader from ../shared/data (CPU, two stages of about 1.6 and 2.3 h; resumes), then refit the
# confidence model for it (held-out SQuAD, SelQA and doc2dial; cached under ~/.cache/qa/confidence).
# DATA=DIR reads the training files from DIR instead of ../shared/data; RECIPE=128 trains the reader before (four stages).
reader: setup
	$(PY) -m qa.weights.train_reader $(if $(DATA),--data $(DATA)) $(if $(RECIPE),--recipe $(RECIPE))
	$(PY) -m qa.weights.fit_confidence $(if $(DATA),--data $(DATA))
