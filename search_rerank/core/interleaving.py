"""Team-draft interleaving: two rankings merged into one list, each position owned by the ranker that placed it.

Like picking sides for a game, the ranker with fewer picks so far (a coin
flip when even) adds its best product not yet in the list, and that position
belongs to its team. Serving interleaves with it (serving.interleave);
evaluation credits the teams from clicks (evaluation.interleaving).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

TEAMS = ("A", "B")
TEAM_ATTRIBUTE = "team"


@dataclass(frozen=True)
class Interleaved:
    ids: tuple[str, ...]
    teams: tuple[str, ...]
    """The team ("A" or "B") that placed each product, position by position."""

    def team_of(self) -> dict[str, str]:
        return dict(zip(self.ids, self.teams))


def team_draft(
    a: Sequence[str], b: Sequence[str], seed: int | np.random.Generator, length: int | None = None
) -> Interleaved:
    """Merge two rankings by team draft; a product both rank goes to whichever team picks it first."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    length = len(set(a) | set(b)) if length is None else length
    ids: list[str] = []
    teams: list[str] = []
    seen: set[str] = set()
    picks = {"A": 0, "B": 0}
    cursor = {"A": 0, "B": 0}
    lists = {"A": list(a), "B": list(b)}
    while len(ids) < length:
        for team in TEAMS:
            while cursor[team] < len(lists[team]) and lists[team][cursor[team]] in seen:
                cursor[team] += 1
        left = [team for team in TEAMS if cursor[team] < len(lists[team])]
        if not left:
            break
        if len(left) == 1:
            team = left[0]
        elif picks["A"] != picks["B"]:
            team = "A" if picks["A"] < picks["B"] else "B"
        else:
            team = "A" if rng.random() < 0.5 else "B"
        product = lists[team][cursor[team]]
        ids.append(product)
        teams.append(team)
        seen.add(product)
        picks[team] += 1
    return Interleaved(tuple(ids), tuple(teams))
