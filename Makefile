# Two commands do all set-up on a fresh machine with Python 3.11:
#   make test    unit tests, every notebook on tiny settings, one book build
#   make book    every chapter with PROFILE (default: CPU, minutes), then the HTML book
PYTHON  ?= python3
PROFILE ?= default
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
UV      := $(VENV)/bin/uv

.PHONY: test test-fast lint book sync clean help

help:
	@echo "make test            run the test suite (creates .venv on first use)"
	@echo "make test-fast       the test suite without the slow tests (notebook runs, book builds)"
	@echo "make lint            ruff (settings in pyproject.toml)"
	@echo "make book            execute every notebook with PROFILE=$(PROFILE) and build _build/html"
	@echo "make book PROFILE=paper   the paper's settings (needs a GPU and the datasets)"
	@echo "                     (first checks every parameter, data file and the GPU; installs Fashion-MNIST if needed)"
	@echo "make sync            write _config.yml's repository.url into the install cells, regenerate notebooks/*.ipynb"

$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@# uv (pinned in requirements.txt) installs the same pins as pip, about 5x faster (measured on a
	@# 2-core machine: 22 s against 118 s, most of it torch's CUDA wheels); pip where uv cannot run
	$(PY) -m pip install --disable-pip-version-check -q "$$(grep -E '^uv==' requirements.txt | cut -d' ' -f1)" \
	  && $(UV) pip install -q --no-cache -p $(PY) -r requirements.txt \
	  || $(PY) -m pip install --disable-pip-version-check -q -r requirements.txt
	$(PY) -m pip install --disable-pip-version-check -q --no-deps -e .
	@# MathJax's static files only (the package's jupyter-server dependency is not needed)
	$(PY) -m pip install --disable-pip-version-check -q --no-deps jupyter-server-mathjax==0.2.6
	@touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check sharpmem_lib tests benchmarks notebooks

book: $(STAMP)
	$(PY) -m sharpmem_lib.pipeline build --profile $(PROFILE)

sync: $(STAMP)
	$(PY) -m sharpmem_lib.pipeline sync-repository
	$(VENV)/bin/jupytext --sync notebooks/[0-9][0-9]_*.py

clean:
	rm -rf _build
