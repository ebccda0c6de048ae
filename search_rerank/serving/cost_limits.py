"""What one search may cost: less work than the deployment's settings, never more, unless it carries the admin token.

A search's CPU and memory grow with a few settings: the candidates each leg
retrieves, the cross-encoder's window (about 16 ms per candidate on a CPU),
the MMR depth (quadratic), and interleaving (two rankings). A request may
name each of them (``POST /search``'s ``overrides``, an Elasticsearch
retriever's ``rank_window_size`` or ``k``, a ``knn`` search's ``k``, the
``X-Search-Rerank-Interleave`` header), so without a bound any browser could
multiply what a search costs, and a reranking past its deadline keeps its
thread: a trickle of such requests would make every shopper's reranks time
out. So a request may lower these values or keep them, and raise one only
with the admin token (the header the admin routes check; the routes say
whether the request carries it, ``context.admin_token_sent``). Overrides that
do not change the cost (fusion weights, long-tail strength, personalisation
weights, a stage switched on at its served depth) are anyone's.
"""

from __future__ import annotations

from ..core.settings import Settings

COST_SETTINGS = ("lexical.candidates", "dense.candidates", "rerank.window", "diversity.depth")
"""The settings whose value a request may lower but raise only with the admin token (``section.field``)."""
NEEDS_TOKEN = "needs the admin token ('Authorization: Bearer ...')"


class CostRaised(Exception):
    """A request asks for more work than the served settings (a 403): ``field`` is what asked for it."""

    def __init__(self, field: str, reason: str):
        self.field = field
        self.reason = reason
        super().__init__(f"[{field}] {reason}")


def served_value(settings: Settings, setting: str) -> int:
    section, name = setting.split(".")
    return getattr(getattr(settings, section), name)


def raised_message(asked: int, setting: str, served: Settings) -> str:
    return f"{asked} is more than this service's {setting} ({served_value(served, setting)}); raising it {NEEDS_TOKEN}"


def raised_settings(served: Settings, asked: Settings) -> dict[str, str]:
    """The cost settings ``asked`` raises above ``served``, each with why that needs the admin token."""
    return {
        setting: raised_message(served_value(asked, setting), setting, served)
        for setting in COST_SETTINGS
        if served_value(asked, setting) > served_value(served, setting)
    }


def check_cost(asked: int, setting: str, served: Settings, field: str, admin: bool) -> None:
    """Raise :class:`CostRaised` naming ``field`` when ``asked`` is above the served ``setting``, unless ``admin``
    (the request carries the admin token)."""
    if asked > served_value(served, setting) and not admin:
        raise CostRaised(field, raised_message(asked, setting, served))
