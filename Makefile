# risklab — the two commands of the quick start (`make demo`, `make test`) and a few more.
# Each target sets up its own virtual environment in .venv, so a fresh clone needs nothing else.

SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
OUT ?= demo-output

# First interpreter of python3 / python3.13 / python3.12 that is at least 3.12.
PYTHON_BOOT := $(shell for c in python3 python3.13 python3.12; do \
	if command -v $$c >/dev/null 2>&1 && $$c -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; then \
		echo $$c; break; fi; done)

.PHONY: demo test test-all test-fast lint bench docs clean check-python

check-python:
	@if [ -z "$(PYTHON_BOOT)" ]; then \
		echo "risklab needs Python >= 3.12: none of python3, python3.13, python3.12 on PATH is recent enough." >&2; \
		echo "Install Python 3.12 (e.g. 'pyenv install 3.12') and run make again." >&2; \
		exit 1; fi

$(VENV)/.installed-base: pyproject.toml | check-python
	$(PYTHON_BOOT) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | check-python
	$(PYTHON_BOOT) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,ingest,distributed]'
	touch $@ $(VENV)/.installed-base

$(VENV)/.installed-docs: pyproject.toml | check-python
	$(PYTHON_BOOT) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[docs]'
	touch $@ $(VENV)/.installed-base

demo: $(VENV)/.installed-base
	$(VENV)/bin/risklab demo --out $(OUT) --force

test: $(VENV)/.installed-test
	$(VENV)/bin/ruff check risklab tests examples benchmarks
	$(PY) -m pytest -n 2 --dist loadgroup -m "not extended"

# Everything, including the long real-MCMC cross-checks (refits after a simulated audit,
# prior-set refits, Dask against serial on a real fit, examples run for real): ~10 minutes more.
test-all: $(VENV)/.installed-test
	$(VENV)/bin/ruff check risklab tests examples benchmarks
	$(PY) -m pytest -n 2 --dist loadgroup

test-fast: $(VENV)/.installed-test
	$(PY) -m pytest -n 2 -m "not slow"

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check risklab tests examples benchmarks
	$(VENV)/bin/ruff format --check risklab tests examples benchmarks

# The documentation site (docs/_build/html/index.html); warnings are errors, as in the test suite.
docs: $(VENV)/.installed-docs
	$(PY) -m sphinx -W --keep-going -b html docs docs/_build/html

# The benchmark suite (benchmarks/README.md): about 25 minutes on a quiet 2-core machine.
# `make bench BENCH_ARGS=--quick` for a tiny run; the optional JAX samplers are installed first
# (the suite skips what is missing, and the Stan peer when rstan is not installed).
bench: $(VENV)/.installed-test
	@$(PY) -c "import numpyro, blackjax" 2>/dev/null || $(PY) -m pip install --quiet -e '.[bench]' \
		|| echo "bench: optional samplers (numpyro, blackjax) not installed; the suite skips them"
	$(PY) -m benchmarks.suite $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .ruff_cache
