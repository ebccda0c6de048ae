"""``search-rerank profiles``: rebuild the shopper profiles from UBI logs, forget a shopper, sign a shopper's id."""

from __future__ import annotations

import os
import time

import click

from .common import Command, console, settings_for

SECONDS_READ_AS_MS = 1e8
"""An event time (in seconds) before March 1973: what a timestamp written in epoch seconds becomes when it is read,
as UBI's (OpenSearch's ``epoch_millis``) are, as milliseconds. No shop logged behaviour then."""
BATCH = 1000
"""Events applied per store call: one SQLite transaction, or one read-modify-write per profile in the batch."""


@click.group()
def profiles() -> None:
    """Shopper profiles for the personalisation stage (store: personalisation.store)."""


@profiles.command("build", cls=Command)
@click.option(
    "--ubi",
    "pattern",
    required=True,
    help="UBI NDJSON log file, a glob of them (quote it), or the folder of the service's (ubi.*.ndjson*).",
)
@click.option("--skip-bad", is_flag=True, help="Count and skip lines that are not JSON instead of stopping.")
@click.pass_context
def build(ctx: click.Context, pattern: str, skip_bad: bool) -> None:
    """Rebuild every profile from the UBI logs: the store is emptied, then the events replayed oldest first.

    A shopper forgotten (DELETE /profiles/{user_id}, or ``profiles forget``) while a UBI log was kept has a record
    of it in the log: none of their events up to it are replayed, so logs older than the forget do not bring the
    shopper back. Give the glob that takes every worker's files, rotated ones included (``ubi.*.ndjson*``).
    An event dated more than a day ahead is left out, as ``POST /ubi/events`` refuses it: it would date its
    profile ahead, which then neither decays nor expires until then (a log the service did not write may hold one).

    Products are looked up in the served index (an event on a product no longer in it is left out) and the
    profile vectors come from its stored embeddings. Events the service receives while this runs are in the
    logs too: run it again, or let the service apply new ones as they come.
    """
    from ..backends.profile_index import open_profile_store
    from ..core.profile_store import profile_events
    from ..data.clicks import read_shopper_actions
    from ..data.loaders import LoadStats
    from ..indexing.indexes import open_pipeline
    from ..serving.ubi import FUTURE_TOLERANCE_S

    settings = settings_for(ctx)
    personal = settings.personalisation
    weighted = [action for action, weight in personal.action_weights.items() if weight > 0]
    stats = LoadStats()
    actions, forgotten = read_shopper_actions(pattern, weighted, skip_bad=skip_bad, stats=stats)
    if not actions and not forgotten:  # an empty file after a rotation, a glob matching only it: keep what is built
        raise click.ClickException(
            f"{pattern}: no {', '.join(weighted)} event of a shopper to build from; the profiles are left as they were"
        )
    latest = time.time() + FUTURE_TOLERANCE_S
    ahead = sum(action.at > latest for action in actions)
    actions = [action for action in actions if action.at <= latest]
    pipeline = open_pipeline(settings)
    store = open_profile_store(settings)
    applied = 0
    try:
        store.clear()
        for start in range(0, len(actions), BATCH):
            batch = actions[start : start + BATCH]
            ids = sorted({a.product_id for a in batch})
            events = profile_events(batch, pipeline.store.get(ids), pipeline.vectors_of(ids))
            store.apply(events, personal)
            applied += len(events)
        expired = store.purge(before=time.time() - personal.ttl_s, max_profiles=personal.max_profiles)
    finally:
        store.close()
        pipeline.close()
    console.print(
        f"{len(actions)} shopper event(s) read ({', '.join(weighted)}), {applied} applied, "
        f"{len(actions) - applied} on products not in the index; {expired} profile(s) past the TTL or max_profiles removed"
        + (f"; {forgotten} event(s) of forgotten shoppers left out" if forgotten else "")
        + (f"; {ahead} event(s) dated more than a day ahead left out" if ahead else "")
        + (f"; {stats.skipped} bad line(s) skipped" if stats.skipped else "")
    )
    newest = max((action.at for action in actions), default=None)
    if newest is not None and newest < SECONDS_READ_AS_MS:
        console.print(
            f"warning: the newest event is of {time.strftime('%Y-%m-%d', time.gmtime(newest))}: UBI timestamps are "
            "epoch milliseconds or ISO 8601, and a log written in epoch seconds (time.time()) reads as 1970; "
            "write them in milliseconds"
        )


@profiles.command("forget", cls=Command)
@click.argument("user_id")
@click.pass_context
def forget(ctx: click.Context, user_id: str) -> None:
    """Forget a shopper: their profile and their sessions' (as DELETE /profiles/{user_id} does), after writing
    the forget to the UBI log (service.ubi_log_path, when set) so that ``profiles build`` does not bring them back."""
    from ..backends.profile_index import open_profile_store
    from ..core.profile import SAFE_ID_PATTERN, safe_id
    from ..serving.identity import UnsignedId, identity_keys, named_for_forgetting
    from ..serving.ubi import UbiLog

    if safe_id(user_id) is None:  # as the service refuses it: no profile has such an id, and its record in the
        # UBI log would stop every profiles build at that line
        raise click.BadParameter(f"user_id must match {SAFE_ID_PATTERN}", param_hint="USER_ID")
    try:  # a signed id, as front ends send it, names the shopper it verifies to (as DELETE /profiles/{id} reads it)
        user_id = named_for_forgetting(user_id, identity_keys(os.environ))
    except UnsignedId:
        raise click.BadParameter(
            "its signature is not the identity key's for this id: give the id signed as the shop signs it, "
            "or the id alone",
            param_hint="USER_ID",
        ) from None
    except ValueError as exc:  # a key too short to be safe
        raise click.UsageError(str(exc)) from None
    settings = settings_for(ctx)
    log = UbiLog.configured(settings.service)
    if log is not None:
        log.record_forget(user_id, settings.service.ubi_application)
    store = open_profile_store(settings)
    try:
        removed = store.forget(user_id)
    finally:
        store.close()
    console.print(f"{removed} profile(s) removed")


@profiles.command("sign", cls=Command)
@click.argument("user_id")
@click.pass_context
def sign(ctx: click.Context, user_id: str) -> None:
    """Print USER_ID signed with the identity key (the first in SEARCH_RERANK_IDENTITY_KEY), as the shop's server
    writes it into the page for the browser to send: to try a deployment that requires signed ids with curl, and
    to check the server's signing code against this one."""
    from ..core.profile import SAFE_ID_PATTERN, safe_id
    from ..serving.identity import IDENTITY_KEY_VARIABLE, identity_keys, signed

    if safe_id(user_id) is None:
        raise click.BadParameter(f"user_id must match {SAFE_ID_PATTERN}", param_hint="USER_ID")
    try:
        keys = identity_keys(ctx.obj["environ"])
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    if not keys:
        raise click.ClickException(f"set {IDENTITY_KEY_VARIABLE} to the service's identity key")
    click.echo(signed(keys[0], user_id))
