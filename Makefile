# Two commands do all set-up on a fresh machine (Python 3.11, no GPU, no model hub):
#   make demo   install, pull the default model, ingest the demo corpus, ask a two-hop question
#   make test   install, pull the smallest model, run the tests
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.placecell-installed

.PHONY: demo test test-slow install clean

$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	# llama-cpp-python compiles from source (~5 min on 2 cores); pip's wheel cache makes reinstalls fast.
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
