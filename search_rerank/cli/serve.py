"""``search-rerank serve``: the HTTP API under gunicorn."""

from __future__ import annotations

import errno
import os
import socket
import sys
from pathlib import Path

import click

from ..core.errors import ConfigError
from ..core.settings import ServiceSettings, no_empty_host
from .common import Command, console, settings_for


def _a_host(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """An empty ``--host`` (a script's unset variable) is refused, as ``service.host`` is: gunicorn would listen
    on every interface."""
    try:
        return no_empty_host(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command(cls=Command)
@click.option("--host", callback=_a_host, help="Bind address (default: settings' service.host).")
@click.option("--port", type=click.IntRange(1, 65535), help="Port (default: settings' service.port).")
@click.option("--workers", type=click.IntRange(min=1), help="gunicorn workers.")
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None, workers: int | None) -> None:
    """Serve the HTTP API under gunicorn (one index and model copy per worker)."""
    settings = settings_for(ctx)
    from ..backends.synonyms import read_rules
    from ..indexing.indexes import read_manifest
    from ..serving.app import check_written_files

    read_manifest(settings)  # fail here, with the fix, rather than in every worker
    check_written_files(settings)
    if settings.lexical.synonyms_file is not None:  # a rule that is none: its line here, not a worker's boot failure
        read_rules(settings.lexical.synonyms_file)
    given = {"host": host, "port": port}
    served = settings.override(service={k: v for k, v in given.items() if v is not None}).service
    check_listenable(served)
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
    console.print(f"serving {settings.index_dir} on http://{served.address}")
    os.execvpe(args[0], args, env)


def check_listenable(service: ServiceSettings) -> None:
    """Bind where gunicorn will, and let go, so that a port in use or a host that is no address of this machine is
    one line here: gunicorn tries five times, a second apart, logs two lines each time and ends "Can't connect".

    As gunicorn binds: IPv6 for an IPv6 address, else IPv4 (a name resolved to its IPv4 address), SO_REUSEADDR on.
    """
    host = service.host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, service.port))
        except socket.gaierror as exc:
            raise ConfigError(f"service.host {host!r} does not resolve to an address ({exc.strerror})") from None
        except OSError as exc:
            where = service.address
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(
                    f"{where} is in use by another process: stop it, or choose another --port (service.port)"
                ) from None
            if exc.errno == errno.EADDRNOTAVAIL:
                raise ConfigError(
                    f"cannot listen on {where}: {host} is no address of this machine (0.0.0.0: all of its IPv4 "
                    "addresses; 127.0.0.1: this machine only)"
                ) from None
            raise ConfigError(f"cannot listen on {where}: {exc.strerror}") from None
