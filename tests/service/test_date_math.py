"""A date in a query is read as Elasticsearch reads it on a date field (serving/date_math.py)."""

from __future__ import annotations

import pytest

from search_rerank.core.catalog_fields import format_date, parse_date
from search_rerank.serving.date_math import calendar_interval, check_options, date_bound, fixed_interval, month_edges
from search_rerank.serving.es_compat import InvalidQuery, Unsupported

NOW = parse_date("2026-12-04T13:45:30.250Z")


def bound(value, round_up=False) -> str:
    return format_date(date_bound(value, round_up, "query.range.added.gte", now_ms=NOW))


@pytest.mark.parametrize(
    ("value", "up", "expected"),
    [
        ("now", False, "2026-12-04T13:45:30.250Z"),
        ("now-7d", False, "2026-11-27T13:45:30.250Z"),
        ("now/d", False, "2026-12-04T00:00:00.000Z"),
        ("now/d", True, "2026-12-04T23:59:59.999Z"),
        ("now-1M/M", False, "2026-11-01T00:00:00.000Z"),
        ("now/w", False, "2026-11-30T00:00:00.000Z"),  # weeks begin on Monday
        ("now+1y/y", True, "2027-12-31T23:59:59.999Z"),
        ("2025-01-31||+1M", False, "2025-02-28T00:00:00.000Z"),  # the month's last day, not March 3rd
        ("2025-03-01||/M", True, "2025-03-31T23:59:59.999Z"),
    ],
)
def test_date_math_adds_then_rounds_down_or_up(value, up, expected):
    assert bound(value, up) == expected


def test_a_date_without_its_time_rounded_up_is_its_last_millisecond():
    assert bound("2025-03-01", True) == "2025-03-01T23:59:59.999Z"
    assert bound("2025-03-01T10", True) == "2025-03-01T10:59:59.999Z"
    assert bound("2025-03-01", False) == "2025-03-01T00:00:00.000Z"


def test_four_digits_are_a_year_and_more_are_epoch_milliseconds():
    assert bound("2025") == "2025-01-01T00:00:00.000Z"
    assert bound("1740787200000") == "2025-03-01T00:00:00.000Z"
    assert bound(1740787200000) == "2025-03-01T00:00:00.000Z"


@pytest.mark.parametrize("value", ["last spring", "now-7x", "2025-03-01||+", True, None, {"a": 1}])
def test_what_is_no_date_is_a_400_naming_the_bound(value):
    with pytest.raises(InvalidQuery) as raised:
        date_bound(value, False, "query.range.added.gte")
    assert raised.value.field == "query.range.added.gte"


@pytest.mark.parametrize(
    ("value", "format_", "expected"),
    [
        ("20250301", "basic_date", "2025-03-01T00:00:00.000Z"),  # ReactiveSearch's DateRange queryFormat
        ("20250301T101500+0100", "basic_date_time_no_millis", "2025-03-01T09:15:00.000Z"),
        ("2025-03-01", "date", "2025-03-01T00:00:00.000Z"),
        ("01/03/2025", "dd/MM/yyyy", "2025-03-01T00:00:00.000Z"),
        ("2025/03/01 10:15", "yyyy/MM/dd HH:mm", "2025-03-01T10:15:00.000Z"),
        ("1740787200", "epoch_second", "2025-03-01T00:00:00.000Z"),
        ("01/03/2025", "yyyy-MM-dd||dd/MM/yyyy", "2025-03-01T00:00:00.000Z"),  # the first that reads it
    ],
)
def test_a_date_is_read_in_the_format_the_query_names(value, format_, expected):
    assert format_date(date_bound(value, False, "q.range.added.gte", {"format": format_})) == expected


def test_a_pattern_without_its_time_rounded_up_is_the_days_last_millisecond():
    assert format_date(date_bound("01/03/2025", True, "p.gte", {"format": "dd/MM/yyyy"})) == "2025-03-01T23:59:59.999Z"


def test_a_date_in_another_format_than_the_one_named_is_a_400():
    with pytest.raises(InvalidQuery):
        date_bound("2025-03-01", False, "p.gte", {"format": "dd/MM/yyyy"})


def test_a_time_zone_places_a_date_written_without_an_offset_and_the_days_now_rounds_to():
    berlin = {"time_zone": "Europe/Berlin"}
    assert format_date(date_bound("2025-03-01", False, "p.gte", berlin)) == "2025-02-28T23:00:00.000Z"
    assert format_date(date_bound("2025-03-01T00:00:00Z", False, "p.gte", berlin)) == "2025-03-01T00:00:00.000Z"
    assert format_date(date_bound("now/d", False, "p.gte", berlin, now_ms=NOW)) == "2026-12-03T23:00:00.000Z"
    assert format_date(date_bound("2025-07-01", False, "p.gte", {"time_zone": "-05:00"})) == "2025-07-01T05:00:00.000Z"


def test_a_format_read_nowhere_here_is_a_501_and_a_time_zone_that_is_none_a_400():
    check_options({"format": "strict_date_optional_time||epoch_millis", "time_zone": "Europe/Berlin"}, "p")
    with pytest.raises(Unsupported):
        check_options({"format": "MMM dd, yyyy"}, "p")  # a month's name
    with pytest.raises(InvalidQuery):
        check_options({"time_zone": "Mars/Olympus"}, "p")


@pytest.mark.parametrize(
    "name", ["x" * 256, "Europe/" + "a" * 300, "../../etc/passwd", "/etc/localtime", "Europe/Berlin\x00", "\ud800"]
)
def test_a_time_zone_no_zone_is_named_by_is_a_400(name):
    with pytest.raises(InvalidQuery, match="Unknown time-zone ID"):
        check_options({"time_zone": name}, "p")


def test_intervals_are_read_in_milliseconds():
    assert fixed_interval("90m", "p") == 5_400_000
    assert calendar_interval("day", "p") == (86_400_000, 0)
    assert calendar_interval("1w", "p")[0] == 7 * 86_400_000
    with pytest.raises(InvalidQuery):
        fixed_interval("1M", "p")


def test_an_interval_of_thousands_of_digits_is_a_400():
    with pytest.raises(InvalidQuery):
        fixed_interval("1" * 5000 + "d", "p")


@pytest.mark.parametrize(
    ("value", "options"),
    [
        ("now+10000y", {}),
        ("now+999999999999d", {}),
        ("9999-12-31||+1d", {}),
        ("0001-01-01||-1d", {}),
        ("1" * 5000, {}),
        (1e308, {"format": "epoch_second"}),
    ],
    ids=["years", "days", "past-9999", "before-year-1", "digits", "epoch-seconds"],
)
def test_a_date_past_the_years_read_is_a_400_naming_the_bound(value, options):
    with pytest.raises(InvalidQuery) as raised:
        date_bound(value, False, "query.range.added.gte", options)
    assert raised.value.field == "query.range.added.gte"


def test_the_last_day_read_rounded_up_is_its_last_millisecond():
    assert bound("9999-12-31||/d", True) == "9999-12-31T23:59:59.999Z"


def test_a_time_zone_offset_past_18_hours_is_a_400():
    with pytest.raises(InvalidQuery) as raised:
        check_options({"time_zone": "+99:00"}, "p")
    assert raised.value.field == "p.time_zone"


def test_month_edges_stop_past_their_limit_however_far_apart_the_dates():
    # a date field of nanoseconds read as milliseconds spans 50 million years: counted to the limit, not listed
    assert len(month_edges(0, 1.7e18, 1, limit=100)) == 101
