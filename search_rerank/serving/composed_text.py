"""A search body's text in Unicode's composed form (NFC), the one form the products are held in.

The catalogue is composed as it is read (``core.product.composed``): a "Müller" exported decomposed from macOS is
held as the composed one. A query typed or pasted decomposed ("u" then a combining diaeresis, as text copied from a
macOS file name is) must be read the same way, or a cluster's analyser cuts it into other words ("mu", "ller")
and a term or prefix on a keyword finds nothing. The embedded index's readers compose the text they analyse; a
body delegated to a cluster goes as sent. So every string value of a search body is composed once, where it comes
in, for both backends alike.

What must stay as the client sent it is left as it is: an aggregation's ``meta``, echoed back; and the values that
name a product or a place exactly, as a hit gave them, which the shop's ids and the index's sort values are, in
whatever form the shop wrote them (an id is never composed: it is the shop's key): a product id (``_id``, ``id``,
an ``ids`` query's or a pinned query's ``ids`` and ``docs``) and a ``search_after``. Keys are left too: an
aggregation's name is the client's own, looked up in the answer by the name it sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..core.product import composed

AS_SENT = ("meta", "_id", "id", "ids", "docs", "search_after")


def composed_values(value: Any) -> Any:
    """``value`` (a JSON body or part of one) with every string in it composed, except what stays as sent
    (:data:`AS_SENT`). A body is at most ``service.max_json_depth`` deep, as it was read."""
    if isinstance(value, str):
        return composed(value)
    if isinstance(value, Mapping):
        return {key: item if key in AS_SENT else composed_values(item) for key, item in value.items()}
    if isinstance(value, list):
        return [composed_values(item) for item in value]
    return value
