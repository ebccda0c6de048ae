VENV ?= .venv
PY := $(VENV)/bin/python
export HF_HUB_OFFLINE := 1

.PHONY: install demo demo-cluster frontends lint test test-deps

$(VENV)/bin/search-rerank:
	scripts/install.sh $(VENV)

install: $(VENV)/bin/search-rerank

# The whole product on a generated 5k-product catalogue, served on http://127.0.0.1:8000: generate, index
# (BM25 + MiniLM/FAISS), train a small reranker (minutes, once: cached in models/), tune fusion on dev, serve
# with every stage on (indexes/demo/demo.toml). A second run reuses everything and serves at once.
demo: install
	$(VENV)/bin/search-rerank demo --data data/demo --out indexes/demo

# The same with BM25, filters and aggregations in a local osmem-server (in-memory, OpenSearch-compatible, from
# the dev extra) on 127.0.0.1:9201: facets from the cluster and the passthrough, without Docker. A local trial:
# for a real cluster see docker-compose.yml and docs/DOCKER.md.
demo-cluster: install
	$(VENV)/bin/search-rerank demo --data data/demo --out indexes/demo-cluster --cluster

# The front-end pages under frontend/ (Elastic Search UI, Searchkit from npm, exact versions from the lockfile),
# bundled into frontend/dist; tests/web/test_frontends.py serves them beside the app under /frontends/
frontends:
	cd frontend && npm ci --no-audit --no-fund && node build.mjs

# ruff (lint + format check) and mypy on the package: what CI runs before the tests
lint: install
	$(VENV)/bin/ruff check search_rerank tests benchmarks scripts
	$(VENV)/bin/ruff format --check search_rerank tests benchmarks scripts
	$(VENV)/bin/mypy search_rerank

# Chromium, nginx, docker-compose (apt-get) and the front ends' npm packages for their tests: installed where it can, else named
test-deps:
	@scripts/test_deps.sh

# What CI runs: lint, then every test. Two xdist workers, a module per worker at a time (module fixtures such as
# servers and indexes are built once): the demo test (minutes of training, collected first) runs on one while the
# other runs the rest, most of which waits on servers and browsers rather than on the CPU. --no-loadscope-reorder
# keeps that order: by default (since xdist 3.5) the modules with the most tests are queued first, which started the
# demo's four tests seven minutes in and left one worker idle at the end while the other still trained.
# lint and test-deps run side by side (mypy is a minute of CPU; apt-get and npm wait on the network).
test:
	@$(MAKE) -j2 --no-print-directory lint test-deps
	$(PY) -m pytest -q -n 2 --dist loadscope --no-loadscope-reorder
