"""Elasticsearch's ``fuzziness`` option, read once for every query that takes one (text queries, the completion
suggester)."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from ..core.fuzziness import AUTO, Fuzziness
from .body_checks import InvalidQuery


def parse_fuzziness(value: Any, transpositions: Any, path: str) -> Fuzziness:
    """``fuzziness`` as Elasticsearch reads it: 0, 1, 2 (or such a string), ``AUTO`` or ``AUTO:low,high``;
    ``path`` is the query's, which holds it and ``fuzzy_transpositions``."""
    if not isinstance(transpositions, bool):
        raise InvalidQuery(f"{path}.fuzzy_transpositions", "expected true or false")
    text = str(value).strip().upper() if not isinstance(value, bool) else ""
    auto = re.fullmatch(r"AUTO(?::(\d+),(\d+))?", text)
    if auto is not None:
        if not auto.group(1):
            return replace(AUTO, transpositions=transpositions)
        low, high = int(auto.group(1)), int(auto.group(2))
        if low <= high:
            return Fuzziness(low, high, transpositions)
    elif re.fullmatch(r"\d+(\.\d*)?", text) and float(text) < 3:
        return Fuzziness.edits(int(float(text)), transpositions)
    raise InvalidQuery(f"{path}.fuzziness", "expected 0, 1, 2, AUTO or AUTO:low,high")
