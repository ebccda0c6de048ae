"""Values read from an Elasticsearch request: refused with the field's path, never a 500 further in."""

import pytest

from search_rerank.serving.body_checks import MAX_KEEP_ALIVE_S, InvalidQuery, a_count, a_keep_alive


@pytest.mark.parametrize("value", ["30s", "1m", "5m", "300000ms", "0.5m"])
def test_a_keep_alive_within_the_limit_is_kept_as_sent(value):
    assert a_keep_alive(value, "scroll") == value


@pytest.mark.parametrize("value", ["6m", "24h", "1d", f"{int(MAX_KEEP_ALIVE_S) + 1}s"])
def test_a_keep_alive_over_the_limit_is_refused_naming_the_field(value):
    with pytest.raises(InvalidQuery) as refused:
        a_keep_alive(value, "scroll")
    assert refused.value.field == "scroll"


@pytest.mark.parametrize("value", ["forever", "1 m", "-1m", "", 60, None])
def test_a_keep_alive_that_is_not_a_time_value_is_refused(value):
    with pytest.raises(InvalidQuery):
        a_keep_alive(value, "scroll")


@pytest.mark.parametrize(("value", "number"), [(10, 10), (10.0, 10), ("10", 10), (0, 0), (2**31 - 1, 2**31 - 1)])
def test_a_count_reads_a_whole_number_as_elasticsearch_does(value, number):
    assert a_count(value, "size") == number


@pytest.mark.parametrize("value", [True, 1.5, "1.5", -1, 2**31, "9" * 5000, float("inf"), None, [1]])
def test_a_count_that_is_not_a_whole_number_within_an_int_is_refused_naming_the_field(value):
    with pytest.raises(InvalidQuery) as refused:
        a_count(value, "size")
    assert refused.value.field == "size"
