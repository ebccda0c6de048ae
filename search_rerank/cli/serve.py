"""``search-rerank serve``: the HTTP API under gunicorn."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from .common import Command, console, settings_for


@click.command(cls=Command)
@click.option("--host", help="Bind address (default: settings' service.host).")
@click.option("--port", type=click.IntRange(1, 65535), help="Port (default: settings' service.port).")
@click.option("--workers", type=click.IntRange(min=1), help="gunicorn workers.")
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None, workers: int | None) -> None:
    """Serve the HTTP API under gunicorn (one index and model copy per worker)."""
    settings = settings_for(ctx)
    from ..indexing.indexes import read_manifest

    read_manifest(settings)  # fail here, with the fix, rather than in every worker
    env = dict(ctx.obj["environ"])  # read by the root group, the CLI's entry point
    env["SEARCH_RERANK_INDEX_DIR"] = str(Path(settings.index_dir).resolve())
    if ctx.obj["settings"] is not None:
        env["SEARCH_RERANK_SETTINGS"] = str(Path(ctx.obj["settings"]).resolve())
    for key, value in (("HOST", host), ("PORT", port), ("WORKERS", workers)):
        if value is not None:
            env[f"SEARCH_RERANK_SERVICE__{key}"] = str(value)
    args = [
        sys.executable,
        "-m",
        "gunicorn",
        "-c",
        "python:search_rerank.serving.gunicorn_conf",
        "search_rerank.serving:create_app()",
    ]
    served = settings.service.model_copy(update={k: v for k, v in (("host", host), ("port", port)) if v is not None})
    console.print(f"serving {settings.index_dir} on http://{served.address}")
    os.execvpe(args[0], args, env)
