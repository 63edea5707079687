# agent-mesh: every target bootstraps .venv (Python 3.13, pinned dependencies) on its own.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CONFIG ?=
PYTEST_ARGS ?=
SERVE_ARGS ?=

.PHONY: help serve install uninstall test test-fast lint docs bench targets clean

# `make` / `make help` lists every target: the `## ` text after a target's name is its line.
help: ## list the targets (this)
	@echo "usage: make TARGET [CONFIG=agent-mesh.yaml] [SERVE_ARGS=...] [PYTEST_ARGS=...]"
	@awk 'BEGIN {FS = ":.*## "} /^[a-z][a-z-]*:.*## / {printf "  make %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml requirements.lock scripts/bootstrap.sh
	@scripts/bootstrap.sh
	@touch $(STAMP)

serve: $(STAMP) ## run agent-mesh serve (proxy, web page, API) on the active mesh, or CONFIG=file
	$(VENV)/bin/agent-mesh serve $(if $(CONFIG),--config $(CONFIG),) $(SERVE_ARGS)

install: ## put agent-mesh and mcpwrap on PATH (uv tool, else pipx, else ~/.local; INSTALL_WITH=uv|pipx|venv)
	@scripts/install.sh

uninstall: ## remove what make install put on PATH
	@scripts/install.sh --uninstall

targets: $(STAMP) ## install the third-party servers and clients the e2e tests drive (.targets/)
	@scripts/install-targets.sh

test: $(STAMP) targets ## install everything the tests need, then run the whole suite
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP) ## run the suite without the e2e tests
	$(PY) -m pytest -m "not e2e" $(PYTEST_ARGS)

lint: $(STAMP) ## ruff, ruff format --check, mypy --strict, then make docs
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check policy addons mcpwrap
	$(VENV)/bin/mypy
	@$(MAKE) --no-print-directory docs

docs: $(STAMP) ## build the docs site into site/ (mkdocs build --strict, offline)
	NO_MKDOCS_2_WARNING=1 PYTHONWARNINGS=ignore::DeprecationWarning $(VENV)/bin/mkdocs build --strict --site-dir site

bench: $(STAMP) ## run the benchmarks in bench/ (each prints ratios against a baseline from the same run)
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean: ## remove .venv, .targets, caches and site/
	rm -rf $(VENV) .targets .pytest_cache .mypy_cache .ruff_cache site
