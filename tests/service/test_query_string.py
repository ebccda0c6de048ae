"""Lucene query syntax (query_string, simple_query_string) parsed into a tree."""

from __future__ import annotations

import time

import pytest

from search_rerank.serving import wildcards
from search_rerank.serving.body_checks import InvalidQuery
from search_rerank.serving.query_string import (
    MUST,
    MUST_NOT,
    SHOULD,
    Everything,
    Group,
    QuerySyntaxError,
    Span,
    SyntaxUnsupported,
    Wildcard,
    Word,
    flags_of,
    parse,
    positive_text,
)
from search_rerank.serving.wildcards import Wild


def test_minus_prohibits_a_word():
    assert parse("sofa -grey") == Group(((SHOULD, Word(None, "sofa")), (MUST_NOT, Word(None, "grey"))))


def test_and_not_requires_one_word_and_prohibits_the_other():
    assert parse("sofa AND NOT grey") == Group(((MUST, Word(None, "sofa")), (MUST_NOT, Word(None, "grey"))))


def test_field_group_puts_each_alternative_on_the_field():
    assert parse("brand:(Acme OR Bolt)") == Group(((SHOULD, Word("brand", "Acme")), (SHOULD, Word("brand", "Bolt"))))


def test_a_range_in_a_field_group_is_on_the_groups_field():
    # django-haystack writes its range filters so: price__gte=300 is price:([300 TO *]).
    assert parse("price:([300 TO *])") == Span("price", "300", None, True, True)
    assert parse('price:(["200" TO "700"])') == Span("price", "200", "700", True, True)


def test_a_wildcard_in_a_field_group_is_on_the_groups_field():
    # django-haystack's startswith filter: title:(sof*).
    assert parse("title:(sof*)") == Wildcard("title", wildcards.parse("sof*"))


def test_a_nested_group_keeps_its_fields_and_a_clause_naming_its_own_field_keeps_it():
    assert parse("title:((sofa OR lamp) AND brand:Acme)") == Group(
        (
            (MUST, Group(((SHOULD, Word("title", "sofa")), (SHOULD, Word("title", "lamp"))))),
            (MUST, Word("brand", "Acme")),
        )
    )


def test_exists_is_any_value_of_the_field_it_names():
    assert parse("_exists_:brand AND sofa") == Group(
        ((MUST, Wildcard("brand", (Wild.ANY,))), (MUST, Word(None, "sofa")))
    )


def test_exists_that_names_no_field_is_a_syntax_error():
    with pytest.raises(QuerySyntaxError):
        parse("_exists_:")


def test_a_query_of_prohibited_words_only_matches_everything_else():
    assert parse("-grey") == Group(((MUST, Everything()), (MUST_NOT, Word(None, "grey"))))


def test_default_operator_and_requires_every_word():
    assert parse("grey sofa", "AND") == Group(((MUST, Word(None, "grey")), (MUST, Word(None, "sofa"))))


def test_or_after_and_leaves_the_and_clauses_required_with_default_or():
    """Lucene's classic parser: OR makes the clause before it optional only under default_operator AND."""
    assert parse("tall AND modern OR decor") == Group(
        ((MUST, Word(None, "tall")), (MUST, Word(None, "modern")), (SHOULD, Word(None, "decor")))
    )


def test_or_makes_a_plus_clause_before_it_optional_with_default_and():
    """ "+a OR b" is "a OR b" under default_operator AND, as Lucene's classic parser reads it."""
    assert parse("+tall OR modern", "AND") == Group(((SHOULD, Word(None, "tall")), (SHOULD, Word(None, "modern"))))


def test_plus_after_or_is_optional_with_default_and():
    assert parse("tall OR +modern", "AND") == Group(((SHOULD, Word(None, "tall")), (SHOULD, Word(None, "modern"))))


def test_or_leaves_a_prohibited_clause_before_it_prohibited():
    assert parse("-tall OR modern", "AND") == Group(((MUST_NOT, Word(None, "tall")), (SHOULD, Word(None, "modern"))))


def test_inclusive_and_exclusive_range_bounds():
    assert parse("price:[10 TO 20}") == Span("price", "10", "20", True, False)


def test_comparison_is_an_open_range():
    assert parse("rating:>=4") == Span("rating", "4", None, True, True)


def test_phrase_keeps_its_words_together():
    assert parse('"leather sofa"') == Word(None, "leather sofa", phrase=True)


def test_simple_query_string_minus_is_everything_but_the_word_beside_the_others():
    """Lucene's simple parser: a negated clause is "everything but it", joined by the operator like any other
    (with the default OR, "sofa | lamp -grey" also matches whatever is not grey, as Elasticsearch documents)."""
    assert parse("sofa | lamp -grey", simple=True) == Group(
        (
            (SHOULD, Word(None, "sofa")),
            (SHOULD, Word(None, "lamp")),
            (SHOULD, Group(((MUST, Everything()), (MUST_NOT, Word(None, "grey"))))),
        )
    )


def test_simple_query_string_operators_apply_left_to_right():
    """No precedence: "grey + sofa lamp" is (grey AND sofa) OR lamp."""
    assert parse("grey + sofa lamp", simple=True) == Group(
        (
            (SHOULD, Group(((MUST, Word(None, "grey")), (MUST, Word(None, "sofa"))))),
            (SHOULD, Word(None, "lamp")),
        )
    )


def test_simple_query_string_minus_before_a_space_negates_nothing():
    assert parse("lamp - white", simple=True) == Group(((SHOULD, Word(None, "lamp")), (SHOULD, Word(None, "white"))))


def test_simple_query_string_unpaired_parenthesis_after_minus_negates_nothing():
    assert parse("-(green", simple=True) == Word(None, "green")


def test_positive_text_leaves_out_prohibited_words():
    assert positive_text(parse('"leather sofa" +red -grey')) == "leather sofa red"


@pytest.mark.parametrize("text", ["(sofa", "sofa)", '"open', "price:[1 TO"])
def test_malformed_syntax_is_a_syntax_error(text):
    with pytest.raises(QuerySyntaxError):
        parse(text)


@pytest.mark.parametrize(
    "text", ["sofa AND", "sofa OR", "OR", "AND sofa", "sofa AND OR lamp", "()", "(sofa AND)", "~", "^2"]
)
def test_an_operator_that_joins_or_modifies_no_clause_is_a_syntax_error_as_in_lucene(text):
    # Lucene's classic parser raises a ParseException, Elasticsearch's 400 (so does a cluster sent it as it came).
    with pytest.raises(QuerySyntaxError):
        parse(text)


def test_a_slash_inside_a_word_is_part_of_the_word_not_a_regular_expression():
    # Lucene reads "/2 in 3/" as a regular expression here (docs/COMPATIBILITY.md, difference 11).
    assert parse("1/2 in 3/4") == Group(
        ((SHOULD, Word(None, "1/2")), (SHOULD, Word(None, "in")), (SHOULD, Word(None, "3/4")))
    )


def test_a_word_between_slashes_is_a_regular_expression():
    with pytest.raises(SyntaxUnsupported):
        parse("sofa /so.a/")


def test_a_word_with_a_star_or_a_question_mark_is_a_wildcard():
    assert parse("sof* s?fa") == Group(
        (
            (SHOULD, Wildcard(None, ("sof", Wild.ANY))),
            (SHOULD, Wildcard(None, ("s", Wild.ONE, "fa"))),
        )
    )


def test_an_escaped_star_is_text_of_the_wildcard_or_the_word():
    assert parse(r"a\*b*") == Wildcard(None, ("a*b", Wild.ANY))
    assert parse(r"a\*b") == Word(None, "a*b")


def test_a_wildcard_on_a_field_is_on_that_field():
    assert parse("brand:Ac*") == Wildcard("brand", ("Ac", Wild.ANY))


def test_regular_expressions_are_refused_as_unsupported():
    with pytest.raises(SyntaxUnsupported):
        parse("/sof.*/")


def test_simple_query_string_trailing_star_is_a_prefix_and_an_inner_one_text():
    assert parse("sof* s*fa", simple=True) == Group(
        ((SHOULD, Wildcard(None, ("sof", Wild.ANY))), (SHOULD, Word(None, "s*fa")))
    )


def test_positive_text_of_a_wildcard_is_its_text():
    assert positive_text(parse("sof* -grey")) == "sof"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('3" sofa', ["3", "sofa"]),
        ("sofa (grey", ["sofa", "grey"]),
        ("sofa [grey", ["sofa", "[grey"]),
        ("sofa) grey", ["sofa", "grey"]),
    ],
)
def test_simple_query_string_unpaired_quote_or_bracket_is_plain_text(text, words):
    """simple_query_string never reports a syntax error (Elasticsearch ignores what is not valid): a quote or a
    parenthesis without its pair is left out, a bracket (no operator there) is part of the word it is typed in."""
    assert parse(text, simple=True) == Group(tuple((SHOULD, Word(None, w)) for w in words))


def test_simple_query_string_dangling_operators_are_ignored():
    """``c++`` is a shopper's word, not a syntax error: ``+`` with nothing after it joins nothing."""
    assert parse("c++", simple=True) == Word(None, "c")


def test_simple_query_string_and_or_not_are_plain_words():
    """simple_query_string's operators are ``+ | - " * ( ) ~``: "black and white" asks for three words."""
    assert parse("black AND white NOT grey", simple=True) == Group(
        tuple((SHOULD, Word(None, w)) for w in ("black", "AND", "white", "NOT", "grey"))
    )


def test_simple_query_string_question_mark_and_colon_are_plain_text():
    """``?`` and ``:`` are no operators in simple_query_string: "sofa?" is no wildcard, "size:3" no field."""
    assert parse("size:3 sofa?", simple=True) == Group(((SHOULD, Word(None, "size:3")), (SHOULD, Word(None, "sofa?"))))


def test_simple_query_string_plus_requires_both_sides():
    """``+`` is simple_query_string's AND: both words are required even with the default OR."""
    assert parse("grey + sofa", simple=True) == Group(((MUST, Word(None, "grey")), (MUST, Word(None, "sofa"))))


def test_simple_query_string_paired_parentheses_and_quotes_still_group():
    """Unpaired characters becoming text leaves the paired ones their meaning."""
    assert parse('-(grey | "red sofa")', simple=True) == Group(
        (
            (MUST, Everything()),
            (MUST_NOT, Group(((SHOULD, Word(None, "grey")), (SHOULD, Word(None, "red sofa", phrase=True))))),
        )
    )


def test_tilde_after_a_word_is_kept_as_its_fuzziness():
    assert parse("sofw~1^2") == Word(None, "sofw", tilde="1")


def test_bare_tilde_is_kept_empty_for_the_queries_default():
    assert parse("title:sofw~") == Word("title", "sofw", tilde="")


def test_tilde_after_a_phrase_is_kept_as_its_slop():
    assert parse('"leather sofa"~2') == Word(None, "leather sofa", phrase=True, tilde="2")


def test_field_group_keeps_each_words_tilde():
    assert parse("title:(sofw~1)") == Word("title", "sofw", tilde="1")


def test_simple_query_string_bare_tilde_is_two():
    assert parse("sofw~", simple=True) == Word(None, "sofw", tilde="2")


@pytest.mark.parametrize("simple", [False, True])
def test_a_wordless_word_is_dropped_as_if_it_were_not_there(simple):
    tree = parse("grey & sofa", "AND", simple=simple, wordless=lambda word: word.text == "&")
    assert tree == Group(((MUST, Word(None, "grey")), (MUST, Word(None, "sofa"))))


@pytest.mark.parametrize("simple", [False, True])
def test_parentheses_nested_past_elasticsearchs_bool_depth_are_a_syntax_error(simple):
    # Each group is a nested bool: thousands of them recursed past Python's limit (a 500).
    with pytest.raises(QuerySyntaxError, match="nested deeper than 30"):
        parse("(" * 5000 + "sofa" + ")" * 5000, simple=simple)


@pytest.mark.parametrize("simple", [False, True])
def test_parentheses_nested_to_elasticsearchs_bool_depth_are_parsed(simple):
    assert parse("(" * 30 + "sofa" + ")" * 30, simple=simple) == Word(None, "sofa")


def test_simple_query_string_of_many_unpaired_parentheses_is_parsed_in_linear_time():
    # Each unpaired ( was looked for its pair to the end of the text: 20,000 of them took 30 s of a CPU.
    text = "(" * 20_000 + "sofa"
    started = time.perf_counter()
    assert parse(text, simple=True) == Word(None, "sofa")
    assert time.perf_counter() - started < 1.0


def simple(text: str, flags: str | int) -> object:
    return parse(text, simple=True, flags=flags_of("simple_query_string", {"flags": flags}, "q"))


def test_simple_query_string_flags_none_read_every_operator_as_text_of_one_word():
    assert simple('"grey sofa" -lamp | (red)', "NONE") == Word(None, '"grey sofa" -lamp | (red)')


def test_simple_query_string_flags_without_not_read_a_minus_as_part_of_a_word():
    assert simple("sofa -grey", "OR|AND|WHITESPACE") == Group(
        ((SHOULD, Word(None, "sofa")), (SHOULD, Word(None, "-grey")))
    )


def test_simple_query_string_flags_without_phrase_read_quotes_as_part_of_the_words():
    assert simple('"grey sofa"', "WHITESPACE") == Group(((SHOULD, Word(None, '"grey')), (SHOULD, Word(None, 'sofa"'))))


def test_simple_query_string_flags_without_prefix_read_a_trailing_star_as_text():
    assert simple("sof*", "WHITESPACE|FUZZY") == Word(None, "sof*")
    assert simple("sof*", "PREFIX") == Wildcard(None, ("sof", Wild.ANY))


def test_simple_query_string_flags_without_fuzzy_read_a_tilde_as_text():
    assert simple("sofa~1", "prefix|whitespace") == Word(None, "sofa~1")
    assert simple("sofa~1", "fuzzy") == Word(None, "sofa", tilde="1")


def test_simple_query_string_flags_without_near_read_a_phrases_slop_as_a_word_after_it():
    phrase = Word(None, "grey sofa", phrase=True)
    assert simple('"grey sofa"~2', "PHRASE") == Group(((SHOULD, phrase), (SHOULD, Word(None, "~2"))))
    assert simple('"grey sofa"~2', "PHRASE|SLOP") == Word(None, "grey sofa", phrase=True, tilde="2")


def test_simple_query_string_flags_without_precedence_read_parentheses_as_text():
    assert simple("(sofa)", "WHITESPACE") == Word(None, "(sofa)")


def test_simple_query_string_flags_without_escape_keep_the_backslash_in_the_word():
    assert simple("a\\+b", "AND") == Group(((MUST, Word(None, "a\\")), (MUST, Word(None, "b"))))
    assert simple("a\\+b", "AND|ESCAPE") == Word(None, "a+b")


@pytest.mark.parametrize("flags", ["ALL", "or|ALL", "ALL|NONE", "", -1, -5])
def test_simple_query_string_flags_all_read_every_operator(flags):
    """The first ALL or NONE met decides alone, and a negative number is every operator, as Elasticsearch reads them."""
    assert simple("sofa -grey", flags) == simple("sofa -grey", 2**10 - 1)


@pytest.mark.parametrize("flags", ["NONE", "NONE|NOT|WHITESPACE", "|none", 0])
def test_simple_query_string_flags_none_first_read_no_operator(flags):
    assert simple("sofa -grey", flags) == Word(None, "sofa -grey")


@pytest.mark.parametrize("flags", [2 | 128, 130.0, "NOT|WHITESPACE", "|NOT||WHITESPACE|"])
def test_simple_query_string_flags_as_a_number_are_the_sum_of_their_bits_and_empty_names_are_skipped(flags):
    assert simple("sofa -grey", flags) == simple("sofa -grey", "NOT|WHITESPACE")


def test_a_tilde_number_past_javas_int_is_no_fuzziness_and_no_slop_as_lucene_reads_it():
    assert simple("sofa~99999999999", "ALL") == Word(None, "sofa")
    assert simple('"grey sofa"~99999999999', "ALL") == Word(None, "grey sofa", phrase=True)


@pytest.mark.parametrize("flags", ["OR|NEARBY", " OR", True, ["OR"], 2**70, float("nan")])
def test_simple_query_string_flags_elasticsearch_refuses_are_a_400_naming_them(flags):
    with pytest.raises(InvalidQuery) as refused:
        flags_of("simple_query_string", {"flags": flags}, "query.simple_query_string")
    assert refused.value.field == "query.simple_query_string.flags"
