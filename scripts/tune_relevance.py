#!/usr/bin/env python3
"""Tune the ranking settings on a dev split and write the best as a settings file, for scheduled retuning.

The same as ``search-rerank tune`` (see ``--help``), runnable from a
checkout without the console entry point installed. Leading ``--settings``,
``--index-dir`` and ``-v`` go to the command group, as they would before
``tune`` on the ``search-rerank`` command line.
"""

import sys

from search_rerank.cli import main

GROUP_OPTIONS = {"--settings": 2, "--index-dir": 2, "-v": 1, "--verbose": 1}

if __name__ == "__main__":
    args, group = sys.argv[1:], []
    while args and args[0] in GROUP_OPTIONS:
        taken = GROUP_OPTIONS[args[0]]
        group, args = group + args[:taken], args[taken:]
    main([*group, "tune", *args], prog_name="tune_relevance.py")
