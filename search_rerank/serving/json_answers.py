"""How the app writes its JSON answers: objects in their own order, and never a NaN or an Infinity.

Python's ``json`` writes a float that is not finite as the bare word ``NaN`` or ``Infinity``, which is no JSON: a
browser's ``JSON.parse`` throws on the whole answer, and in an ``_msearch`` every search of it is lost with the one
that held the value. Scores are kept finite where they enter (core.retrieval.finite); whatever else might carry one
(a figure computed from a cluster's answer) is written as ``null``, Elasticsearch's "no value", rather than break
the page.
"""

from __future__ import annotations

import math
from typing import Any

from flask.json.provider import DefaultJSONProvider


class FiniteJSONProvider(DefaultJSONProvider):
    sort_keys = False
    """Answers keep their objects' order, as Elasticsearch's do: a keyed histogram's or range's buckets in the order
    asked, a hit's fields as the product holds them (Flask would sort every object's keys)."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        try:
            return super().dumps(obj, allow_nan=False, **kwargs)
        except ValueError:  # a NaN or an infinity somewhere: the rare answer pays for a second pass
            return super().dumps(without_non_finite(obj), allow_nan=False, **kwargs)


def without_non_finite(value: Any) -> Any:
    """``value`` with each float that is not finite replaced by None, in objects and lists at any depth."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: without_non_finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [without_non_finite(item) for item in value]
    return value
