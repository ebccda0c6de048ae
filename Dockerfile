# syntax=docker/dockerfile:1
# The search service under gunicorn, and the same image for one-shot `index`/`reindex` runs.
# Build: docker build -t search-rerank .   (GPU hosts: --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu126)
FROM python:3.11.7-slim-bookworm

# torch first, from PyTorch's CPU index: from PyPI, `pip install .` would pull the CUDA build (~3 GB more).
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN pip install --index-url "${TORCH_INDEX_URL}" "torch==${TORCH_VERSION}"

WORKDIR /src
COPY pyproject.toml setup.cfg README.md ./
COPY index_mappings ./index_mappings
COPY search_rerank ./search_rerank
RUN pip install . && rm -rf /src

# Indexes and models live on volumes; the service owns them but runs as no one else.
RUN useradd --create-home --uid 10001 search \
    && mkdir -p /data/indexes /data/catalog /models \
    && chown -R search:search /data /models
USER search
WORKDIR /home/search

ENV SEARCH_RERANK_INDEX_DIR=/data/indexes/products \
    SEARCH_RERANK_SERVICE__HOST=0.0.0.0 \
    SEARCH_RERANK_SERVICE__PORT=8000 \
    HF_HOME=/models/huggingface \
    HF_HUB_OFFLINE=1

EXPOSE 8000
# Liveness only (/health touches no index), so a slow disk does not get a worker restarted.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"]

ENTRYPOINT ["search-rerank"]
CMD ["serve"]
