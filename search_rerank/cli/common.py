"""What every command module shares: the console, error reporting, and how a command builds its settings."""

from __future__ import annotations

import sys
from typing import Any

import click
from rich.console import Console

from ..core.errors import SearchRerankError
from ..core.settings import Settings, load_settings

console = Console(width=None if sys.stdout.isatty() else 160)
"""Piped or logged (a CI job, a file), rich would cut tables at 80 columns and truncate the figures themselves
(the evaluate table has ten); a terminal keeps its own width."""


class Command(click.Command):
    """Shows SearchRerankError (bad row, bad setting, missing index) as a message, not a traceback; so too an
    OSError (a path that cannot be read or written, a full disk), which names its path."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SearchRerankError as exc:
            raise click.ClickException(str(exc)) from exc
        except ValueError as exc:  # pydantic validation of flags and filters
            raise click.ClickException(str(exc)) from exc
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename is not None else ""
            raise click.ClickException(f"{where}{exc.strerror or exc}") from exc


def settings_for(ctx: click.Context, **overrides: Any) -> Settings:
    """The command's settings: the root group's ``--settings`` file and ``--index-dir``, then ``overrides``."""
    obj = ctx.obj
    data = {k: v for k, v in overrides.items() if v is not None}
    if obj["index_dir"] is not None:
        data["index_dir"] = obj["index_dir"]
    return load_settings(obj["settings"], **data)
