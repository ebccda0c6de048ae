"""``python -m search_rerank``: the ``search-rerank`` command where its console script is not on PATH (a virtual
environment not activated, a container's python); ``python -m search_rerank.cli`` runs the same."""

from .cli import main

main()
