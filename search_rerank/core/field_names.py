"""A field's name as people misspell it: the records the service reads from outside (a shop's catalog, a front
end's UBI events) name fields in their own spelling, and a slip would otherwise lose the field's value.

``spelling_key`` reads away what is no slip at all (case and separators: ``queryId``, ``Query-ID``,
``query_id``; ``Review Count``, ``reviewCount``); ``one_slip`` tells a name one typing slip from another
(``brnad``, ``descripton``), which a reader refuses rather than guess at.
"""

from __future__ import annotations

from collections.abc import Collection

from rapidfuzz.distance import OSA

SLIP_MIN_LETTERS = 5
"""Below this many letters one slip makes another word as often as a misspelling (``size``, ``sire``)."""


def spelling_key(name: str) -> str:
    """A field name as a misspelling of it may still read: ``queryId``, ``Query-ID`` and ``query_id`` alike."""
    return "".join(ch for ch in name.lower() if ch.isalnum())


def one_slip(name: str, fields: Collection[str]) -> str | None:
    """The field of ``fields`` that ``name`` is one slip from (a letter missed, added, changed or two swapped,
    its spelling key against theirs), among names of at least :data:`SLIP_MIN_LETTERS` letters; None if none."""
    key = spelling_key(name)
    for field in fields:
        target = spelling_key(field)
        if min(len(key), len(target)) >= SLIP_MIN_LETTERS and OSA.distance(key, target, score_cutoff=1) <= 1:
            return field
    return None
