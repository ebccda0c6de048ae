VENV ?= .venv
PY := $(VENV)/bin/python
export HF_HUB_OFFLINE := 1

.PHONY: install demo frontends lint test

$(VENV)/bin/search-rerank:
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"

install: $(VENV)/bin/search-rerank

# Generate a demo catalog, index it (BM25 + MiniLM/FAISS) and serve search on http://127.0.0.1:8000
demo: install
	[ -f data/demo/corpus.jsonl ] || $(VENV)/bin/search-rerank generate --out data/demo --products 5000 --queries 500
	[ -f indexes/demo/current.json ] || $(VENV)/bin/search-rerank --index-dir indexes/demo index --catalog data/demo
	$(VENV)/bin/search-rerank --index-dir indexes/demo serve

# The front-end pages under frontend/ (Elastic Search UI, Searchkit from npm, exact versions from the lockfile),
# bundled into frontend/dist; tests/web/test_frontends.py serves them beside the app under /frontends/
frontends:
	cd frontend && npm ci --no-audit --no-fund && node build.mjs

# ruff (lint + format check) and mypy on the package: what CI runs before the tests
lint: install
	$(VENV)/bin/ruff check search_rerank tests benchmarks scripts
	$(VENV)/bin/ruff format --check search_rerank tests benchmarks scripts
	$(VENV)/bin/mypy search_rerank

test: lint
	$(PY) -m pytest -q
