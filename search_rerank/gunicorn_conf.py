"""gunicorn settings, taken from the same validated settings as everything else.

Run: ``gunicorn -c python:search_rerank.gunicorn_conf 'search_rerank.service:create_app()'``
(``search-rerank serve`` does this). No preload: each worker opens the
indexes and models itself, after the fork, so no torch or FAISS state is
shared across processes.
"""

import os

from search_rerank.settings import load_settings

_service = load_settings(os.environ.get("SEARCH_RERANK_SETTINGS")).service

bind = f"{_service.host}:{_service.port}"
workers = _service.workers
threads = _service.threads
worker_class = "gthread"
timeout = _service.timeout_s
graceful_timeout = 30
keepalive = 5
preload_app = False
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("SEARCH_RERANK_LOG_LEVEL", "info")
