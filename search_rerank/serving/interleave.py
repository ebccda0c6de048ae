"""Team-draft interleaving in the proxy: the served ranking (A) against a second settings file (B).

``service.interleave_with`` names B's settings file (e.g. ``tune``'s
``best.toml``). Of it, the ranking is taken: the ``fusion``, ``rerank`` and
``longtail`` sections and the candidates per leg (and whether the dense leg
runs). Indexes, models and deadlines are the served ones, since one worker
holds one set; a B that names another reranker is refused at start-up.

Both rankings therefore start from the same legs, so a query is retrieved
once, at the larger candidate count, and each ranking is ranked from it by
``SearchPipeline.rank_from``, which cuts the leg lists to that ranking's own
count, as tuning does. Fusion, rerank and the long-tail stage run per ranking;
cross-encoder scores are per (query, product), so a shared cache would
halve rerank time, but the stage is run as served to keep what B is measured
on what B would serve.

Which searches are interleaved: the ``X-Search-Rerank-Interleave`` header
(``on``/``off``) decides when sent (``on`` runs two rankings, so it needs the
admin token, see cost_limits); otherwise a share
(``service.interleave_share``) of shoppers, by a hash of the UBI client id
(the session id, else the query text, when the front end sends none). The
team-draft coin flips are seeded from the shopper and the query (text and
filters), never per request, so page 2 of a search continues page 1 and a
reload shows the same list.

Every shown product is logged as a UBI impression event carrying
``event_attributes.team``, which ``search-rerank interleaving-report`` reads
with the clicks the front end sends.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

from werkzeug.exceptions import BadRequest

from ..core.errors import ConfigError
from ..core.filters import Filters
from ..core.interleaving import Interleaved, team_draft
from ..core.pipeline import TOTAL, Ranking, SearchPipeline, SearchResult
from ..core.retrieval import DENSE, LEXICAL
from ..core.settings import Settings, load_settings, read_settings_file
from .cost_limits import NEEDS_TOKEN, CostRaised
from .ubi import UbiEvent, UbiEventAttributes, UbiObject, UbiPosition, utc_timestamp

INTERLEAVE_HEADER = "X-Search-Rerank-Interleave"
HEADER_VALUES = ("on", "off")
RANKING_SECTIONS = ("fusion", "rerank", "longtail")
LEG_FIELDS = {LEXICAL: ("candidates",), DENSE: ("candidates", "enabled")}
IMPRESSION_MESSAGE_TYPE = "INTERLEAVING"


@dataclass(frozen=True)
class InterleaveSetup:
    """Ranking B, where it came from, and the share of shoppers who see A and B interleaved."""

    settings_b: Settings
    source: str
    share: float

    @classmethod
    def from_settings(cls, served: Settings) -> InterleaveSetup | None:
        """None when ``service.interleave_with`` is unset; raises ConfigError naming the file when B is invalid."""
        path = served.service.interleave_with
        if path is None:
            return None
        load_settings(path)  # the whole file must be valid settings, not just the parts used
        return cls(
            ranking_settings(served, read_settings_file(path), str(path)), str(path), served.service.interleave_share
        )


def ranking_settings(served: Settings, data: Mapping[str, Any], source: str = "settings B") -> Settings:
    """``served`` with the ranking parts of ``data`` (a settings file's content) in place of its own."""
    sections: dict[str, dict[str, Any]] = {
        name: dict(data[name]) for name in RANKING_SECTIONS if isinstance(data.get(name), dict)
    }
    for leg, fields in LEG_FIELDS.items():
        values = data.get(leg)
        picked = {name: values[name] for name in fields if name in values} if isinstance(values, dict) else {}
        if picked:
            sections[leg] = picked
    b = served.override(**sections) if sections else served
    if b.rerank.model != served.rerank.model:
        raise ConfigError(
            f"{source}: rerank.model={b.rerank.model!r}, but the service serves "
            f"{served.rerank.model!r}; interleaving compares rankings on the served models, so "
            "leave rerank.model out of the file or serve that model"
        )
    return b


def shopper(client_id: str | None, session_id: str | None, query: str) -> str:
    """Who the traffic share buckets: the client, else the session, else (anonymous traffic) the query."""
    if client_id is not None:
        return f"client:{client_id}"
    return f"session:{session_id}" if session_id is not None else f"query:{query}"


def wanted(
    setup: InterleaveSetup | None, header: str | None, shopper_key: str, may_force: bool = False
) -> TypeGuard[InterleaveSetup]:
    """Whether to interleave this search: the header when sent, else the traffic share.

    ``on`` runs two rankings for one search, so it needs ``may_force`` (the request carries the admin token;
    raises :class:`~.cost_limits.CostRaised`, a 403, otherwise); ``off`` is anyone's. Never true without a
    ``setup``, which the return type tells the type checker.
    """
    if header is not None:
        value = header.strip().lower()
        if value not in HEADER_VALUES:
            raise BadRequest(f"{INTERLEAVE_HEADER}: {header!r} is not one of {list(HEADER_VALUES)}")
        if value == "on" and setup is None:
            raise BadRequest(
                f"{INTERLEAVE_HEADER}: on, but no second ranking is configured: set "
                "service.interleave_with to a settings file"
            )
        if value == "on" and not may_force:
            raise CostRaised(INTERLEAVE_HEADER, f"on runs two rankings for one search; forcing it {NEEDS_TOKEN}")
        return value == "on"
    return setup is not None and setup.share > 0 and _unit(f"share\0{shopper_key}") < setup.share


def seed(shopper_key: str, query: str, filters: Filters | None) -> int:
    """The team-draft seed: the same for every page and repeat of one shopper's search."""
    shown = "" if filters is None else json.dumps(filters.model_dump(mode="json", exclude_none=True), sort_keys=True)
    return int(_unit(f"seed\0{shopper_key}\0{query}\0{shown}") * 2**53)


def _unit(text: str) -> float:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2**64


@dataclass(frozen=True)
class InterleavedSearch:
    result: SearchResult
    interleaved: Interleaved
    source: str
    pinned: frozenset[str] = frozenset()
    """The products a pinned query put first (see serving.pinned): both rankings would show them there."""

    def teams(self, product_ids: Sequence[str]) -> list[str | None]:
        """The team that placed each product; None for a pinned one, which neither ranking placed: its clicks
        credit neither."""
        team_of = self.interleaved.team_of()
        return [None if pid in self.pinned else team_of.get(pid) for pid in product_ids]

    def section(self, product_ids: Sequence[str]) -> dict[str, Any]:
        """What the response says: that the list is interleaved, from what, and each hit's team.

        B is named by its file's name: shoppers' browsers read this, and the path is the server's layout (the
        UBI log, which the report reads, keeps the whole ``source``).
        """
        b = Path(self.source).name
        return {"method": "team_draft", "a": "served settings", "b": b, "teams": self.teams(product_ids)}


def run(
    pipeline: SearchPipeline,
    query: str,
    filters: Filters | None,
    size: int,
    offset: int,
    a: Settings,
    b: Settings,
    draft_seed: int,
    source: str = "settings B",
    deadline: float | None = None,
) -> InterleavedSearch:
    """Retrieve once, rank with A and with B, and merge the full lists by team draft; ``size`` hits from ``offset``.

    ``deadline``: the request's, as :meth:`SearchPipeline.run` takes it."""
    started = time.perf_counter()
    depth = {
        leg: max(a_leg.candidates, b_leg.candidates)
        for leg, a_leg, b_leg in ((LEXICAL, a.lexical, b.lexical), (DENSE, a.dense, b.dense))
    }
    retrieve_with = a.override(
        lexical={"candidates": depth[LEXICAL]},
        dense={"candidates": depth[DENSE], "enabled": a.dense.enabled or b.dense.enabled},
    )
    retrieved = pipeline.retrieve(query, filters, retrieve_with, deadline)
    rankings = [pipeline.rank_from(retrieved, s, deadline=deadline) for s in (a, b)]
    merged = team_draft(
        [c.product_id for c in rankings[0].candidates], [c.product_id for c in rankings[1].candidates], draft_seed
    )
    by_team = {
        "A": {c.product_id: c for c in rankings[0].candidates},
        "B": {c.product_id: c for c in rankings[1].candidates},
    }
    n = len(merged.ids)
    # Scores fall with position, so a client sorting by score keeps the interleaved order.
    candidates = [
        by_team[team][pid].with_score(1.0 - i / n) for i, (pid, team) in enumerate(zip(merged.ids, merged.teams))
    ]
    ranking = Ranking(
        query,
        candidates=candidates,
        stages={name: hits for name, hits in rankings[0].stages.items()},
        degraded={
            **rankings[0].degraded,
            **{f"b.{k}": v for k, v in rankings[1].degraded.items() if k not in retrieved.degraded},
        },
        skipped=rankings[0].skipped,
        anchor=retrieved.anchor,
        timings_ms={
            **retrieved.timings_ms,
            **{
                f"{stage}.b" if team == "B" else stage: ms
                for team, r in zip("AB", rankings)
                for stage, ms in r.timings_ms.items()
                if stage not in retrieved.timings_ms
            },
        },
    )
    hits = pipeline.hits(candidates[offset : offset + size], a)
    ranking.timings_ms[TOTAL] = (time.perf_counter() - started) * 1000
    return InterleavedSearch(SearchResult(query=query, hits=hits, total=n, ranking=ranking), merged, source)


def impression_events(
    search: InterleavedSearch,
    query_id: str,
    product_ids: Sequence[str],
    offset: int,
    *,
    application: str,
    user_query: str,
    client_id: str | None,
    session_id: str | None,
) -> list[UbiEvent]:
    """One UBI impression event per shown product, with the team that placed it (``event_attributes.team``)."""
    now = utc_timestamp()
    return [
        UbiEvent(
            action_name="impression",
            query_id=query_id,
            client_id=client_id,
            session_id=session_id,
            application=application,
            timestamp=now,
            message_type=IMPRESSION_MESSAGE_TYPE,
            user_query=user_query,
            # model_validate: ``team`` is one of the open attributes, not a declared field.
            event_attributes=UbiEventAttributes.model_validate(
                {
                    "object": UbiObject(object_id=pid, object_id_field="id"),
                    "position": UbiPosition(ordinal=offset + i),
                    **({"team": team} if team is not None else {}),
                }
            ),
        )
        for i, (pid, team) in enumerate(zip(product_ids, search.teams(product_ids)))
    ]
