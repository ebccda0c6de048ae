"""``search-rerank exposure-control``: the exposure controller's state, from a running server or its state file."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import click

from .common import Command, settings_for


@click.command("exposure-control", cls=Command)
@click.option(
    "--url",
    help="A running server (e.g. http://127.0.0.1:8000): asks its GET /admin/exposure-control with the admin token "
    "(SEARCH_RERANK_ADMIN_TOKEN). Default: read exposure_control.state_path.",
)
@click.pass_context
def exposure_control(ctx: click.Context, url: str | None) -> None:
    """Print the exposure controller's state as JSON: the strength served and its last decision."""
    if url is not None:
        click.echo(
            json.dumps(_from_server(url.rstrip("/"), ctx.obj["environ"].get("SEARCH_RERANK_ADMIN_TOKEN")), indent=2)
        )
        return
    path = settings_for(ctx).exposure_control.state_path
    if path is None:
        raise click.ClickException(
            "exposure_control.state_path is not set (the server keeps its state in a temporary file): "
            "name the server with --url"
        )
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise click.ClickException(f"{path} does not exist: the controller has not run with this state file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"{path} is not JSON: {exc}") from None
    if not isinstance(state, dict):
        raise click.ClickException(f"{path} is no state of the controller's (a JSON object): was it written by hand?")
    state.pop("totals", None)  # the counters behind the next interval, not state a person reads
    click.echo(json.dumps(state, indent=2))


def _from_server(url: str, token: str | None) -> dict:
    if not token:
        raise click.ClickException("set SEARCH_RERANK_ADMIN_TOKEN to the server's admin token")
    request = urllib.request.Request(f"{url}/admin/exposure-control", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise click.ClickException(f"{url} answered {exc.code}: {exc.read().decode(errors='replace')[:200]}") from None
    except (urllib.error.URLError, TimeoutError) as exc:
        raise click.ClickException(f"cannot reach {url}: {exc}") from None
