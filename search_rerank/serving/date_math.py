"""A date in a query as Elasticsearch reads it on a date field: epoch milliseconds, a date of
``strict_date_optional_time`` (``2025-03-01``, ``2025-03-01T10:00:00Z``), or date math (``now-7d/d``,
``2025-03-01||+1M/M``); in the query's ``format`` (a named one, ``basic_date``, or a pattern, ``dd/MM/yyyy``,
ReactiveSearch's DateRange ``queryFormat`` among them) and ``time_zone``.

Where a bound rounds depends on which end it is, as Elasticsearch rounds it: ``gt`` and ``lte`` round up (to the
last millisecond of the unit: ``lte: "2025-03-01||/M"`` takes in the whole of March), ``gte`` and ``lt`` down. A
date written without its time is rounded the same way: ``lte: "2025-03-01"`` is the last millisecond of that
day, as Elasticsearch fills a missing hour, minute and second with their largest values there. A ``time_zone``
places a date written without an offset, and the days ``now/d`` rounds to; ``now`` itself is the same instant
everywhere.
"""

from __future__ import annotations

import calendar
import functools
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from ..core.catalog_fields import CYCLE_MS, EPOCH, DateParts, date_parts, in_cycle
from .es_compat import InvalidQuery, Unsupported

UNITS = {
    "y": "years",
    "M": "months",
    "w": "weeks",
    "d": "days",
    "h": "hours",
    "H": "hours",
    "m": "minutes",
    "s": "seconds",
}
MAX_OFFSET_HOURS = 18
"""The largest offset from UTC a time zone has, as Elasticsearch (Java's ZoneOffset) reads one."""
_MATH = re.compile(r"([+-])(\d+)([yMwdhHms])|/([yMwdhHms])")
DEFAULT_FORMAT = "strict_date_optional_time||epoch_millis"
"""A date field's formats where a query names none (Elasticsearch's default, the catalog fields' own)."""
ISO_FORMATS = {
    f"{strict}{name}"
    for strict in ("", "strict_")
    for name in (
        "date_optional_time",
        "date_optional_time_nanos",
        "date",
        "date_time",
        "date_time_no_millis",
        "date_hour",
        "date_hour_minute",
        "date_hour_minute_second",
        "date_hour_minute_second_fraction",
        "date_hour_minute_second_millis",
        "year_month_day",
        "year_month",
        "year",
    )
}
"""Named formats that write a date as ISO 8601 does, each a part of what ``strict_date_optional_time`` reads
(read here as that: a date in a stricter one of them is read the same)."""
BASIC_FORMATS = {
    "basic_date": r"(\d{4})(\d{2})(\d{2})",
    "basic_date_time": r"(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})\.(\d{3})(Z|[+-]\d{2}:?\d{2})",
    "basic_date_time_no_millis": r"(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})()(Z|[+-]\d{2}:?\d{2})",
}
# A pattern's letters (Java's DateTimeFormatter) and what each reads.
_PATTERN_PARTS = {
    "yyyy": ("year", r"\d{4}"),
    "uuuu": ("year", r"\d{4}"),
    "MM": ("month", r"\d{2}"),
    "dd": ("day", r"\d{2}"),
    "HH": ("hour", r"\d{2}"),
    "mm": ("minute", r"\d{2}"),
    "ss": ("second", r"\d{2}"),
    "SSS": ("fraction", r"\d{3}"),
    "XXX": ("offset", r"Z|[+-]\d{2}:\d{2}"),
    "Z": ("offset", r"Z|[+-]\d{2}:?\d{2}"),
    "X": ("offset", r"Z|[+-]\d{2}(?::?\d{2})?"),
}
_PATTERN_TOKEN = re.compile("|".join(sorted(map(re.escape, _PATTERN_PARTS), key=len, reverse=True)) + r"|'[^']*'|.")


def date_bound(
    value: Any, round_up: bool, path: str, options: Mapping[str, Any] | None = None, now_ms: int | None = None
) -> int:
    """``value`` as epoch milliseconds, read in ``options``' ``format`` and ``time_zone`` (a range's, a
    date_range's) and rounded up or down as the bound it is (the module says how)."""
    options = options or {}
    formats = str(options.get("format") or DEFAULT_FORMAT).split("||")
    zone = time_zone(options.get("time_zone"), f"{path.rpartition('.')[0]}.time_zone")
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InvalidQuery(path, f"failed to parse date field [{value}]")
    try:
        if isinstance(value, (int, float)):
            return int(value * 1000) if "epoch_second" in formats and "epoch_millis" not in formats else int(value)
        text = value.strip()
        if text.startswith("now"):
            return _apply(int(time.time() * 1000) if now_ms is None else now_ms, text[3:], round_up, zone, value, path)
        written, _, math = text.partition("||")
        for name in formats:
            anchor = _read(written, name, zone, round_up and not math)
            if anchor is not None:
                return _apply(anchor, math, round_up, zone, value, path)
    except (OverflowError, ValueError):  # a date past the years Python's dates hold (1 to 9999), or its digits
        raise InvalidQuery(path, f"failed to parse date field [{value}]: outside the years 1 to 9999") from None
    raise InvalidQuery(path, f"failed to parse date field [{value}] with format [{'||'.join(formats)}]")


def check_options(options: Mapping[str, Any], path: str) -> None:
    """A date query's ``format`` and ``time_zone``: a format read here passes, another is a 501 naming it; a time
    zone that is none is a 400."""
    formats = options.get("format")
    for name in str(formats).split("||") if formats is not None else ():
        if not _known_format(name):
            raise Unsupported(f"{path}.format", f"the date format {name!r}")
    time_zone(options.get("time_zone"), f"{path}.time_zone")


def time_zone(name: Any, path: str) -> tzinfo:
    """A ``time_zone`` (``Europe/Berlin``, ``+01:00``, ``UTC``) as Python's; none given: UTC."""
    if name is None:
        return UTC
    text = str(name).strip()
    offset = re.fullmatch(r"([+-])(\d{2}):?(\d{2})", text)
    if offset is not None:
        hours, minutes = int(offset.group(2)), int(offset.group(3))
        if hours > MAX_OFFSET_HOURS or minutes > 59 or (hours == MAX_OFFSET_HOURS and minutes):
            raise InvalidQuery(path, f"Zone offset not in valid range: {text} (-18:00 to +18:00)")
        sign = 1 if offset.group(1) == "+" else -1
        return timezone(sign * timedelta(hours=hours, minutes=minutes))
    if text in ("Z", "UTC", "GMT"):
        return UTC
    if text not in zone_names():
        raise InvalidQuery(path, f"Unknown time-zone ID: {text[:100]}")
    return ZoneInfo(text)


@functools.cache
def zone_names() -> frozenset[str]:
    """The IANA zones this machine knows. A request's name is looked up here, not opened as a file: ZoneInfo reads
    the name as a path under the zone directory, and a name past the file system's limit raised an OSError."""
    return frozenset(available_timezones())


def _known_format(name: str) -> bool:
    return (
        name in ISO_FORMATS
        or name in BASIC_FORMATS
        or name in ("epoch_millis", "epoch_second")
        or (_pattern(name) is not None)
    )


def _read(text: str, name: str, zone: tzinfo, fill_up: bool) -> int | None:
    """``text`` read in the format ``name`` as epoch milliseconds (with ``fill_up``, to the last millisecond of
    what it names); None where it is not one of that format's dates."""
    if name in ("epoch_millis", "epoch_second"):
        if re.fullmatch(r"-?\d+(\.\d+)?", text) is None or (name == "epoch_millis" and "." in text):
            return None
        return int(float(text) * 1000) if name == "epoch_second" else int(text)
    parts: DateParts | None
    if name in ISO_FORMATS:
        parts = date_parts(text + "-01" if re.fullmatch(r"\d{4}", text) else text)  # a year alone is its January
    elif name in BASIC_FORMATS:
        match = re.fullmatch(BASIC_FORMATS[name], text)
        parts = None if match is None else DateParts(*match.groups())
    else:
        pattern = _pattern(name)
        match = None if pattern is None else pattern.fullmatch(text)
        parts = None if match is None else DateParts(**{"year": "1970", **match.groupdict()})
    millis = None if parts is None else parts.millis(zone)
    if millis is None or parts is None:
        return None
    return millis + (parts.rest() if fill_up else 0)


def _pattern(name: str) -> re.Pattern[str] | None:
    """A Java date pattern (``yyyy-MM-dd``, ``dd/MM/yyyy HH:mm``) as a regular expression of :class:`DateParts`'
    groups; None where it holds a letter read nowhere here (a month's name, a week)."""
    out, seen = [], set()
    for token in _PATTERN_TOKEN.findall(name):
        if token in _PATTERN_PARTS:
            group, digits = _PATTERN_PARTS[token]
            if group in seen:
                return None
            seen.add(group)
            out.append(f"(?P<{group}>{digits})")
        elif token.startswith("'"):
            out.append(re.escape(token.strip("'")))
        elif token.isalpha():
            return None
        else:
            out.append(re.escape(token))
    return re.compile("".join(out)) if seen else None


def _apply(anchor: int, math: str, round_up: bool, zone: tzinfo, value: Any, path: str) -> int:
    moment = (EPOCH + timedelta(milliseconds=anchor)).astimezone(zone)
    position = 0
    for step in _MATH.finditer(math):
        if step.start() != position:
            break
        position = step.end()
        sign, amount, unit, rounding = step.groups()
        if rounding:
            moment = _rounded(moment, rounding, round_up)
        else:
            moment = _added(moment, int(amount) * (1 if sign == "+" else -1), unit)
    if position != len(math):
        raise InvalidQuery(path, f"failed to parse date field [{value}]: bad date math [{math}]")
    return (moment - EPOCH) // timedelta(milliseconds=1)


def _added(moment: datetime, amount: int, unit: str) -> datetime:
    if unit in ("y", "M"):
        months = moment.month - 1 + amount * (12 if unit == "y" else 1)
        year, month = moment.year + months // 12, months % 12 + 1
        return moment.replace(year=year, month=month, day=min(moment.day, calendar.monthrange(year, month)[1]))
    return moment + timedelta(**{UNITS[unit]: amount})


def _rounded(moment: datetime, unit: str, up: bool) -> datetime:
    """The first millisecond of ``moment``'s ``unit`` in its time zone (a week starting on Monday), or with ``up``
    its last."""
    start = moment.replace(microsecond=0)
    if unit in ("y", "M", "w", "d"):
        start = start.replace(hour=0, minute=0, second=0)
    if unit in ("h", "H"):
        start = start.replace(minute=0, second=0)
    if unit == "m":
        start = start.replace(second=0)
    if unit == "y":
        start = start.replace(month=1, day=1)
    if unit == "M":
        start = start.replace(day=1)
    if unit == "w":
        start -= timedelta(days=start.weekday())
    if not up:
        return start
    try:
        return _added(start, 1, unit) - timedelta(milliseconds=1)
    except (OverflowError, ValueError):  # the unit holding 9999-12-31 ends where Python's dates do
        return datetime.max.replace(microsecond=999_000, tzinfo=moment.tzinfo)


FIXED_UNITS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
CALENDAR_UNITS = {
    "minute": "1m",
    "1m": "1m",
    "hour": "1h",
    "1h": "1h",
    "day": "1d",
    "1d": "1d",
    "week": "1w",
    "1w": "1w",
}
WEEK_MS = 7 * 86_400_000
MONDAY_OFFSET_MS = 4 * 86_400_000
"""1970-01-01 was a Thursday: weeks begin on Monday, four days after the epoch's week would."""
MONTHS = {"month": 1, "1M": 1, "quarter": 3, "1q": 3, "year": 12, "1y": 12}


def calendar_months(text: Any) -> int | None:
    """How many months a ``calendar_interval`` of months, quarters or years spans; None for another."""
    return MONTHS.get(str(text).strip()) if text is not None else None


def month_edges(first: float | None, last: float | None, months: int, limit: int) -> list[int]:
    """The first millisecond of each period of ``months`` months (a quarter's and a year's aligned on January)
    from the one holding ``first`` to the one after ``last`` (epoch milliseconds, UTC), at most ``limit`` + 1 of
    them (past it, too many buckets); none without dates."""
    if first is None or last is None:
        return []
    moment, years = in_cycle(int(first))
    period = ((moment.year + years) * 12 + moment.month - 1) // months * months
    edges: list[int] = []
    while len(edges) <= limit:
        edges.append(_month_start(period))
        if edges[-1] > last:
            break
        period += months
    return edges


def _month_start(period: int) -> int:
    """The first millisecond (UTC) of the ``period``-th month from the year 0's January, past the year 9999 too."""
    year, month = divmod(period, 12)
    cycles, year = divmod(year - EPOCH.year, 400)
    start = datetime(EPOCH.year + year, month + 1, 1, tzinfo=UTC)
    return (start - EPOCH) // timedelta(milliseconds=1) + cycles * CYCLE_MS


def fixed_interval(text: Any, path: str) -> int:
    """A ``fixed_interval`` (``30d``, ``90m``, ``1500ms``) in milliseconds."""
    match = re.fullmatch(r"(\d{1,15})(ms|s|m|h|d)", str(text).strip())  # past 10**15 days, past a long's millis
    if match is None or int(match.group(1)) == 0:
        raise InvalidQuery(path, f"failed to parse setting [fixed_interval] with value [{text}]")
    return int(match.group(1)) * FIXED_UNITS[match.group(2)]


def calendar_interval(text: Any, path: str) -> tuple[int, int]:
    """A ``calendar_interval`` of a fixed length in UTC, as its milliseconds and the offset its buckets start at
    (a week's on Monday); months, quarters and years, whose lengths vary, are :func:`calendar_months`'."""
    unit = CALENDAR_UNITS.get(str(text).strip())
    if unit is None:
        raise InvalidQuery(path, f"The supplied interval [{text}] could not be parsed as a calendar interval.")
    if unit == "1w":
        return WEEK_MS, MONDAY_OFFSET_MS
    return fixed_interval(unit, path), 0
