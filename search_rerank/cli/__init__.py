"""The ``search-rerank`` command: generate, index, search, evaluate, tune, compare, judgments,
interleaving-report, reindex, train, onboard, models, profiles, serve, exposure-control.

Every command builds the one settings object (``--settings`` file, then
``SEARCH_RERANK_*`` variables, then these flags), and turns the package's own
errors into a one-line message with exit status 1, never a stack trace.

This module is the entry point: the root group, ``main``, and ``run_as_script``
for scripts/. Each command group lives in its own module (generate, indexing,
search, evaluation, judgments, training, onboard, models, serve, exposure); what they share is in
``common``. As an entry point, the root group is where the CLI reads the
environment (besides settings): it hands a copy to commands in ``ctx.obj``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import click

from .evaluation import compare, evaluate, interleaving_report, tune
from .exposure import exposure_control
from .generate import generate
from .indexing import index, reindex
from .judgments import judgments
from .models import models
from .onboard import onboard
from .profiles import profiles
from .search import search
from .serve import serve
from .training import train


@click.group()
@click.option(
    "--settings",
    "settings_file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="SEARCH_RERANK_SETTINGS",
    help="TOML or JSON settings file.",
)
@click.option(
    "--index-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Index directory (default: settings' index_dir).",
)
@click.option("-v", "--verbose", is_flag=True, help="Log at debug level.")
@click.pass_context
def main(ctx: click.Context, settings_file: Path | None, index_dir: Path | None, verbose: bool) -> None:
    """Hybrid BM25 + dense search with cross-encoder reranking and a long-tail boost."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    ctx.obj = {"settings": settings_file, "index_dir": index_dir, "environ": dict(os.environ)}


COMMANDS = (
    generate,
    index,
    reindex,
    search,
    evaluate,
    tune,
    compare,
    interleaving_report,
    judgments,
    train,
    onboard,
    models,
    profiles,
    serve,
    exposure_control,
)
for command in COMMANDS:
    main.add_command(command)


GROUP_OPTIONS = {"--settings": 2, "--index-dir": 2, "-v": 1, "--verbose": 1}


def run_as_script(command: str, argv: list[str], prog_name: str) -> None:
    """Run one subcommand from a script in scripts/ (for cron jobs and checkouts without the entry point).

    Leading ``--settings``, ``--index-dir`` and ``-v`` go to the command group,
    as they would before the subcommand on the ``search-rerank`` command line.
    """
    args = list(argv)
    group: list[str] = []
    while args and args[0] in GROUP_OPTIONS:
        taken = GROUP_OPTIONS[args[0]]
        group, args = group + args[:taken], args[taken:]
    main([*group, command, *args], prog_name=prog_name)


from .demo import demo as demo_command  # noqa: E402  (its own module; registered last, once ``main`` exists)

main.add_command(demo_command)
