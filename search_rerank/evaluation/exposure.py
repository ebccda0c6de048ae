"""Exposure metrics: how the shown products fall among the popularity tiers, and popularity from clicks.

The tiers and the stages that steer exposure (the gated boost, xQuAD) live in
``core.longtail``; this module only measures what a ranking exposes. Click
counts say what shoppers actually see and buy, for catalogs whose sales
signals are missing or stale.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from ..core.longtail import TIERS, percentile_ranks, tier
from ..core.settings import LongTailSettings
from ..data.clicks import Impression


def tier_shares(
    lists: Iterable[Sequence[str]], popularity: Mapping[str, float], settings: LongTailSettings
) -> dict[str, float]:
    """Share of the shown products in each tier, over all lists: where exposure goes, torso included, which
    the head/long-tail split of lt_share@10 hides. Products of unknown popularity are not counted."""
    counts = Counter(tier(popularity[pid], settings) for ids in lists for pid in ids if pid in popularity)
    total = sum(counts.values())
    return {name: counts[name] / total if total else 0.0 for name in TIERS}


def click_popularity(impressions: Iterable[Impression], catalog: Iterable[str] = ()) -> dict[str, float]:
    """Percentiles of click counts: popularity as traffic sees it, for catalogs whose sales signals are missing
    or stale. Products in ``catalog`` that were never shown or clicked count as the least popular."""
    clicks: Counter[str] = Counter()
    for impression in impressions:
        clicks.update({pid: 0 for pid in impression.shown})
        clicks.update(impression.clicked)
    for pid in catalog:
        clicks.setdefault(pid, 0)
    ids = sorted(clicks)
    return dict(zip(ids, percentile_ranks(np.array([clicks[pid] for pid in ids], dtype=np.float64)).tolist()))
