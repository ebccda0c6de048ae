#!/usr/bin/env python3
"""Rebuild every index as a new version and swap it in (or roll back), for cron jobs and deploy pipelines.

The same as ``search-rerank reindex`` (see ``--help``), runnable from a checkout
without the console entry point installed.
"""

import sys
from pathlib import Path

from search_rerank.cli import run_as_script

if __name__ == "__main__":
    run_as_script("reindex", sys.argv[1:], prog_name=Path(__file__).name)
