"""``python -m search_rerank``: the ``search-rerank`` command where its console script is not on PATH (a virtual
environment not activated, a container's python); ``python -m search_rerank.cli`` runs the same."""

from .cli import main

if __name__ == "__main__":  # imported (a documentation build, pkgutil.walk_packages), it runs nothing
    main()
