import pytest

from search_rerank.core.identifiers import is_code, names_a_code


@pytest.mark.parametrize(
    "token",
    ["KK3-6587J", "le3-0717w", "2526i", "4499Y", "VE-0531V", "WH-1000XM4", "DCD771C2", "012345678905", "(KE2-7127Q)"],
)
def test_model_numbers_skus_and_long_digit_runs_are_codes(token):
    assert is_code(token)


@pytest.mark.parametrize(
    "token",
    ["5000K", "40V", "1080p", "36x80in", "3/4hp", "2.5mm", "18650", "400-1000", "M8", "4K", "sofa", "36", "in."],
)
def test_quantities_short_tokens_and_words_are_not_codes(token):
    assert not is_code(token)


def test_a_query_names_a_code_when_any_of_its_tokens_is_one():
    assert names_a_code("grydale 2526i")
    assert not names_a_code("Solvale 1/4 in. x 100 ft. patio umbrella")
    assert not names_a_code("")
