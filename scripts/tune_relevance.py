#!/usr/bin/env python3
"""Tune the ranking settings on a dev split and write the best as a settings file, for scheduled retuning.

The same as ``search-rerank tune`` (see ``--help``), runnable from a checkout
without the console entry point installed.
"""

import sys
from pathlib import Path

from search_rerank.cli import run_as_script

if __name__ == "__main__":
    run_as_script("tune", sys.argv[1:], prog_name=Path(__file__).name)
