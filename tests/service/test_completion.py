"""The completion suggester's title list on its own: which titles a prefix completes, in what order."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from search_rerank.core.fuzziness import Fuzziness
from search_rerank.serving.completion import (
    MAX_FUZZY_SCANNED,
    Completion,
    TitleIndex,
    completion_key,
    prefix_distance,
    split_suggest,
)
from search_rerank.serving.es_compat import Unsupported

TITLES = TitleIndex(
    [
        ("a", "3 Seater Sofa", 5),
        ("b", "3 seater sofa", 50),
        ("c", "3-Seater Sofa Bed", 20),
        ("d", "Sofa table", 1),
        ("e", "DW-4500 dishwasher", 3),
        ("f", "Dishwasher tablets", 9),
    ]
)


def completion(prefix: str, size: int = 5, skip_duplicates: bool = False, fuzzy: Fuzziness | None = None) -> Completion:
    return Completion("s", prefix, size, skip_duplicates, fuzzy, prefix_length=1, min_length=3)


def titles(prefix: str, **options) -> list[str]:
    return [title for _, title in TITLES.complete(completion(prefix, **options))]


def test_titles_that_begin_with_the_prefix_come_best_sellers_first():
    assert titles("3 seater") == ["3 seater sofa", "3-Seater Sofa Bed", "3 Seater Sofa"]


def test_digits_and_model_numbers_are_matched_as_typed():
    assert titles("dw 45") == ["DW-4500 dishwasher"]


def test_skip_duplicates_keeps_one_option_per_title_text():
    assert titles("3 seater sofa", skip_duplicates=True) == ["3 seater sofa", "3-Seater Sofa Bed", "3 Seater Sofa"]
    twice = TitleIndex([("x", "Lamp", 2), ("y", "Lamp", 1)])
    assert twice.complete(completion("la", skip_duplicates=True)) == [("x", "Lamp")]


def test_fuzzy_options_come_after_the_exact_ones_fewest_edits_first():
    assert titles("dishw", fuzzy=Fuzziness.edits(1)) == ["Dishwasher tablets"]
    assert titles("dishwasher tablrts", fuzzy=Fuzziness.edits(1)) == ["Dishwasher tablets"]
    assert titles("sofa", size=3, fuzzy=Fuzziness.edits(1)) == ["Sofa table"]


def test_fuzzy_leaves_a_prefix_shorter_than_min_length_exact():
    assert titles("sz", fuzzy=Fuzziness.edits(1)) == []


def test_fuzzy_needs_the_first_letter_typed_right():
    assert titles("aofa", fuzzy=Fuzziness.edits(1)) == []


def test_a_fuzzy_completion_keeps_as_many_first_letters_as_bound_its_scan_to_max_fuzzy_scanned_titles():
    # prefix_length 0 scanned every title for one request (29 s of CPU at a million titles, from any browser):
    # among more titles than MAX_FUZZY_SCANNED, the typo in the first letter is left uncorrected.
    many = TitleIndex([*((f"p{i}", f"product {i}", 0) for i in range(MAX_FUZZY_SCANNED)), ("s", "Sofa table", 1)])
    wide = Completion("s", "xofa", 5, False, Fuzziness.edits(1), prefix_length=0, min_length=3)
    assert many.complete(wide) == []
    assert many.complete(dataclasses.replace(wide, prefix="spfa")) == [("s", "Sofa table")]
    assert TITLES.complete(wide) == [("d", "Sofa table")]  # within the bound, as Elasticsearch


@pytest.mark.parametrize(
    ("prefix", "text", "transpositions", "expected"),
    [("sofa", "sofa bed", True, 0), ("sfoa", "sofa", True, 1), ("sfoa", "sofa", False, 2), ("sofq", "sofa", True, 1)],
)
def test_prefix_distance_counts_edits_to_the_closest_beginning(prefix, text, transpositions, expected):
    assert prefix_distance(prefix, text, transpositions, limit=2) == expected


def test_prefix_distance_agrees_with_the_whole_table_on_every_short_pair():
    """The band the distance is computed in (its diagonal, ``limit`` either side) loses no beginning: each pair of
    texts of up to 5 and 7 letters of "ab" against the textbook dynamic programme over the whole table."""
    pairs = [
        ("".join(a), "".join(b))
        for m in range(6)
        for a in itertools.product("ab", repeat=m)
        for n in range(m, m + 3)
        for b in itertools.product("ab", repeat=n)
    ]
    for limit in (0, 1, 2):
        for transpositions in (True, False):
            for a, b in pairs:
                expected = min(whole_table_prefix_distance(a, b, transpositions), limit + 1)
                assert prefix_distance(a, b, transpositions, limit) == expected, (a, b, transpositions, limit)


def whole_table_prefix_distance(prefix: str, text: str, transpositions: bool) -> int:
    """Optimal string alignment distance from ``prefix`` to the nearest beginning of ``text``, the whole table."""
    rows = [[i] + [0] * len(text) for i in range(len(prefix) + 1)]
    rows[0] = list(range(len(text) + 1))
    for i in range(1, len(prefix) + 1):
        for j in range(1, len(text) + 1):
            cell = min(rows[i - 1][j] + 1, rows[i][j - 1] + 1, rows[i - 1][j - 1] + (prefix[i - 1] != text[j - 1]))
            if transpositions and i > 1 and j > 1 and prefix[i - 1] == text[j - 2] and prefix[i - 2] == text[j - 1]:
                cell = min(cell, rows[i - 2][j - 2] + 1)
            rows[i][j] = cell
    return min(rows[-1])


@pytest.mark.timeout(10)
def test_a_fuzzy_completion_of_a_long_titles_whole_text_is_answered_at_once():
    """A shopper may paste a whole title into the box: 8,000 characters took 37 s with the whole table, which is
    what the timeout would catch; the band takes milliseconds."""
    title = "a" * 8_000
    index = TitleIndex([("long", title, 0)])
    asked = Completion("s", title + "b", 5, False, Fuzziness.edits(1), prefix_length=1, min_length=3)
    assert index.complete(asked) == [("long", title)]


def test_completion_key_keeps_letters_and_digits_in_words():
    assert completion_key("3-Seater  SOFA, 200cm!") == "3 seater sofa 200cm"


def test_a_field_aliased_onto_the_title_is_completed():
    spec = {"s": {"prefix": "so", "completion": {"field": "title_completion"}}}
    (parsed,), _ = split_suggest(spec, {"title_completion": "title"})
    assert (parsed.prefix, parsed.size) == ("so", 5)
    with pytest.raises(Unsupported):
        split_suggest(spec, {})


@pytest.mark.parametrize("prefix", ["", "3", "3 seater", "dishwasher", "x"])
@pytest.mark.parametrize("skip_duplicates", [False, True])
def test_a_prefix_that_begins_more_titles_than_max_sorted_walks_the_best_sellers_to_the_same_options(
    monkeypatch, prefix, skip_duplicates
):
    # A short prefix begins many titles: past MAX_SORTED they are not sorted, the best-seller order is walked.
    asked = completion(prefix, size=3, skip_duplicates=skip_duplicates)
    sorted_options = TITLES.complete(asked)
    monkeypatch.setattr("search_rerank.serving.completion.MAX_SORTED", 0)
    assert TITLES.complete(asked) == sorted_options
