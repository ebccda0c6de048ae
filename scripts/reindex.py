#!/usr/bin/env python3
"""Rebuild every index as a new version and swap it in (or roll back), for cron jobs and deploy pipelines.

The same as ``search-rerank reindex`` (see ``--help``), runnable from a
checkout without the console entry point installed. Leading ``--settings``,
``--index-dir`` and ``-v`` go to the command group, as they would before
``reindex`` on the ``search-rerank`` command line.
"""

import sys

from search_rerank.cli import main

GROUP_OPTIONS = {"--settings": 2, "--index-dir": 2, "-v": 1, "--verbose": 1}

if __name__ == "__main__":
    args, group = sys.argv[1:], []
    while args and args[0] in GROUP_OPTIONS:
        taken = GROUP_OPTIONS[args[0]]
        group, args = group + args[:taken], args[taken:]
    main([*group, "reindex", *args], prog_name="reindex.py")
