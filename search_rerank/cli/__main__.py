"""``python -m search_rerank.cli``: what scripts and tests run when the console script is not on PATH."""

from . import main

main()
