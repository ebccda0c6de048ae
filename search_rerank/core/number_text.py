"""A number as it is written in the text the product reads: a file's cell, a URI parameter, a cursor's value.

Python's ``int()`` and ``float()`` read more than anyone types as a number: ``" 10"``, ``"1_000"`` (a thousand),
``"nan"``, ``"inf"``, the digits of other scripts. Elasticsearch's parsers and a spreadsheet's columns do not, so
a text is read as a number only where it matches one of these (ASCII digits, an optional sign).
"""

from __future__ import annotations

import re

WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+")
DECIMAL_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
