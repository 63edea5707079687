# agent-mesh: every target bootstraps .venv (Python 3.13, pinned dependencies) on its own.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CONFIG ?=
PYTEST_ARGS ?=
SERVE_ARGS ?=

.PHONY: serve test test-fast lint bench targets clean help docs

help:
	@echo "make serve   run agent-mesh on the embedded default (or CONFIG=file)"
	@echo "make test    install everything the tests need, then run the whole suite"
	@echo "make lint    ruff + mypy --strict"
	@echo "make bench   run the benchmarks in bench/"
	@echo "make docs    build the docs site into site/ (mkdocs build --strict, offline)"

$(STAMP): pyproject.toml requirements.lock scripts/bootstrap.sh
	@scripts/bootstrap.sh
	@touch $(STAMP)

serve: $(STAMP)
	$(VENV)/bin/agent-mesh serve $(if $(CONFIG),--config $(CONFIG),) $(SERVE_ARGS)

targets: $(STAMP)
	@scripts/install-targets.sh

test: $(STAMP) targets
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(PY) -m pytest -m "not e2e" $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check policy addons mcpwrap
	$(VENV)/bin/mypy
	@$(MAKE) --no-print-directory docs

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 PYTHONWARNINGS=ignore::DeprecationWarning $(VENV)/bin/mkdocs build --strict --site-dir site

bench: $(STAMP)
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .targets .pytest_cache .mypy_cache .ruff_cache site
