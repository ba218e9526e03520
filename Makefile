# Two commands do all set-up on a fresh machine (Python 3.11, no GPU, no model hub):
#   make demo   install, pull the default model, ingest the demo corpus, ask a two-hop question
#   make test   install, pull the smallest model, run the tests
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.placecell-installed
# the llama-cpp-python pin, read from pyproject.toml so it is written once
LLAMA_REQ := $(shell grep -o 'llama-cpp-python\[server\]==[0-9.]*' pyproject.toml)
LLAMA_CFLAGS := $(if $(filter x86_64,$(shell uname -m)),-mno-amx-tile -mno-amx-int8 -mno-amx-bf16)

# exit 0 when the installed llama-cpp-python was compiled with AMX kernels (placecell's own check;
# on a fresh .venv placecell is not installed yet, the import fails and nothing is rebuilt: correct,
# since that build was just made without AMX)
export AMX_IN_BUILD := import sys; from placecell.tools.llm.llamacpp import build_has_amx; sys.exit(0 if build_has_amx() else 1)

.PHONY: demo test test-slow install clean

$(STAMP): pyproject.toml setup.py Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	# llama-cpp-python compiles from source (~5 min on 2 cores) for this CPU (-march=native), but
	# without llama.cpp's AMX kernels: their matmul segfaults on AMX Xeons here (ggml-org/llama.cpp#20824).
	# --no-cache-dir: pip's wheel cache may hold a build made with them.
	CFLAGS="$(LLAMA_CFLAGS)" CXXFLAGS="$(LLAMA_CFLAGS)" $(BIN)/pip install --no-cache-dir '$(LLAMA_REQ)'
	# A .venv made before this rule keeps its AMX build (pip sees the pin satisfied): rebuild it.
	if [ -n "$(LLAMA_CFLAGS)" ] && $(BIN)/python -c "$$AMX_IN_BUILD" 2>/dev/null; then \
		CFLAGS="$(LLAMA_CFLAGS)" CXXFLAGS="$(LLAMA_CFLAGS)" $(BIN)/pip install --no-cache-dir --force-reinstall --no-deps '$(LLAMA_REQ)'; fi
	$(BIN)/pip install -e '.[dev,train,server,postgres]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/placecell models pull qwen2.5-coder-0.5b
	$(BIN)/placecell demo

test: $(STAMP)
	$(BIN)/placecell models pull smollm2-135m
	$(BIN)/pytest

test-slow: $(STAMP)
	$(BIN)/placecell models pull smollm2-135m
	$(BIN)/pytest -m slow

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
