"""Online comparison of two rankers by team-draft interleaving, credited from clicks.

An A/B test splits traffic and compares click rates between two groups of
shoppers, so shopper-to-shopper variance drowns small differences for weeks.
Interleaving shows each shopper one list merged from both rankers and asks
which ranker's products they clicked: every impression compares A with B on
the same person and query, and far fewer impressions decide (Radlinski,
Kurup & Joachims, "How does clickthrough data reflect retrieval quality?",
CIKM 2008; Chapelle et al., TOIS 2012).

Team draft: like picking sides for a game, the ranker with fewer picks so far
(a coin flip when even) adds its best product not yet in the list, and that
position belongs to its team. A click credits the team that placed the
product. Logs carry the team of each shown product as
``event_attributes.team`` ("A" or "B") on UBI impression events; clicks may
omit it and take the team their product was shown with.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..core.interleaving import TEAM_ATTRIBUTE, TEAMS
from ..data.clicks import named_action, object_id, ubi_record
from ..data.loaders import checked_rows, numbered_text_lines
from .significance import randomisation_p


def credit(teams: Mapping[str, str], clicked: Iterable[str]) -> int:
    """+1 when B's products got more clicks, -1 when A's did, 0 for a tie (no clicks included)."""
    clicks = {"A": 0, "B": 0}
    for product in clicked:
        if product in teams:
            clicks[teams[product]] += 1
    return int(np.sign(clicks["B"] - clicks["A"]))


@dataclass(frozen=True)
class InterleavingResult:
    impressions: int
    a_wins: int
    b_wins: int
    ties: int
    preference_b: float
    """(B wins - A wins) / impressions: -1 (always A) .. +1 (always B)."""
    p_value: float

    def to_json(self) -> dict:
        return asdict(self)


def summarise(outcomes: Sequence[int], *, resamples: int = 10_000, seed: int = 0) -> InterleavingResult:
    """Wins per team and the p-value of "no preference", by sign flips of the per-impression outcomes."""
    values = np.asarray(outcomes, dtype=np.int64)
    if values.size == 0:
        raise ValueError("no interleaved impressions to credit")
    a_wins, b_wins = int(np.count_nonzero(values < 0)), int(np.count_nonzero(values > 0))
    return InterleavingResult(
        impressions=int(values.size),
        a_wins=a_wins,
        b_wins=b_wins,
        ties=int(values.size) - a_wins - b_wins,
        preference_b=(b_wins - a_wins) / values.size,
        p_value=randomisation_p(values, resamples=resamples, seed=seed),
    )


def preference_curve(
    outcomes: Sequence[int], *, checkpoints: int = 100, resamples: int = 4000, seed: int = 0
) -> list[tuple[int, float, float]]:
    """(searches, preference for B, p-value) after the first n outcomes, at about ``checkpoints`` values of n
    (multiples of 25): how the verdict of an online test would have read as the searches came in."""
    step = 25 * max(1, round(len(outcomes) / checkpoints / 25))
    points = sorted({*range(step, len(outcomes) + 1, step), len(outcomes)} - {0})
    curve = []
    for n in points:
        s = summarise(outcomes[:n], resamples=resamples, seed=seed)
        curve.append((n, s.preference_b, s.p_value))
    return curve


def searches_needed(curve: Sequence[tuple[int, float, float]], alpha: float = 0.05) -> int | None:
    """The fewest searches from which every later checkpoint of ``curve`` stays significant; None if never.

    "Stays": a test stopped at the first p < alpha would stop on noise (peeking);
    requiring it to hold from there on is the conservative reading.
    """
    return next((n for k, (n, _, _) in enumerate(curve) if all(p < alpha for _, _, p in curve[k:])), None)


NO_SEARCH = "no query_id"
OTHER_TEAM = f"event_attributes.{TEAM_ATTRIBUTE} not one of {', '.join(TEAMS)}"
"""Why :func:`read_interleaved_ubi` passed an event over, as it counts them."""


def read_interleaved_ubi(
    *paths: str | Path, passed_over: Counter[str] | None = None
) -> list[tuple[dict[str, str], set[str]]]:
    """Per UBI query id: the team of each shown product and the products clicked.

    Events of other actions, query records and bulk action lines are
    skipped; a search with no team-tagged impression was not interleaved and
    is left out. So is an event that is not the interleaving's, counted in
    ``passed_over`` by why: one of no search (an empty or absent
    ``query_id``, which the UBI JavaScript client sends for a click outside
    a result page) and an impression whose ``team`` is a front end's own
    (``"red"``): the service logs both as valid UBI events, and refusing them
    would leave a test's whole log unreadable.
    """
    passed_over = Counter() if passed_over is None else passed_over
    teams: dict[str, dict[str, str]] = {}
    clicks: dict[str, set[str]] = {}
    for path in paths:
        for query_id, product, action, team in checked_rows(path, numbered_text_lines(path), _event):
            if query_id is None:
                passed_over[NO_SEARCH] += 1
            elif action == "impression" and isinstance(team, str) and team in TEAMS:
                teams.setdefault(query_id, {})[product] = team
            elif action == "impression" and team is not None:
                passed_over[OTHER_TEAM] += 1
            elif action == "click":
                clicks.setdefault(query_id, set()).add(product)
    return [(shown, clicks.get(query_id, set())) for query_id, shown in teams.items()]


def _event(text: str) -> tuple[str | None, str, str, object] | None:
    record: dict[str, Any] = ubi_record(text)
    action = named_action(record.get("action_name"), ("impression", "click"))
    if action is None:
        return None
    attributes = record.get("event_attributes")
    if not isinstance(attributes, dict):
        raise ValueError(f"{action} event: event_attributes must be an object")
    product = object_id(attributes)
    if product is None:
        raise ValueError(f"{action} event: needs event_attributes.object.object_id")
    query_id = record.get("query_id")
    if query_id is not None and not isinstance(query_id, str):
        raise ValueError(f"{action} event: query_id must be text, got {query_id!r}")
    return query_id or None, product, action, attributes.get(TEAM_ATTRIBUTE)
