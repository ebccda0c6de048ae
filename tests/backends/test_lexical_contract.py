"""What every lexical leg must do, run against tantivy, OpenSearch and Elasticsearch alike.

The behaviours are those of ``tests/retrieval/test_tantivy_backend.py`` that
do not depend on tantivy's internals: the Retriever protocol, best_fields
scoring order, stemming, user text never read as syntax, empty queries, the
filters' reference semantics, upsert and delete.
"""

from __future__ import annotations

import random

import pytest

from search_rerank.core.filters import Filters
from search_rerank.core.product import Product
from search_rerank.core.retrieval import Retriever


def ids(candidates) -> list[str]:
    return [c.product_id for c in candidates]


def scores(candidates) -> dict[str, float]:
    return {c.product_id: c.score for c in candidates}


def test_retriever_implements_protocol_as_lexical_leg(make_leg):
    retriever = make_leg([Product(id="a", title="red sofa")])
    [hit] = retriever.search("sofa", 10)
    assert isinstance(retriever, Retriever)
    assert retriever.name == "lexical"
    assert hit.legs == {"lexical"}
    assert hit.features == {"lexical_score": hit.score, "lexical_rank": 1.0}
    assert retriever.count() == 1


# --- scoring ---------------------------------------------------------------------------------


def test_title_match_ranks_above_description_match_with_default_boosts(make_leg):
    retriever = make_leg(
        [
            Product(id="desc", title="living room set", description="walnut"),
            Product(id="title", title="walnut", description="living room set"),
        ]
    )
    assert ids(retriever.search("walnut", 10)) == ["title", "desc"]


def test_fields_combine_as_max_plus_tie_breaker_not_sum(make_leg, reopen):
    """best_fields: score = best field + tie_breaker * the other fields, not their sum."""
    combined = make_leg(
        [
            Product(id="both", title="walnut desk", description="walnut top"),
            Product(id="other", title="pine desk", description="pine top"),
        ],
        field_boosts={"title": 3.0, "description": 1.0},
        tie_breaker=0.3,
    )
    title_score = scores(reopen(combined, field_boosts={"title": 3.0}).search("walnut", 10))["both"]
    description_score = scores(reopen(combined, field_boosts={"description": 1.0}).search("walnut", 10))["both"]
    assert title_score > description_score > 0
    assert scores(combined.search("walnut", 10))["both"] == pytest.approx(
        title_score + 0.3 * description_score, rel=1e-5
    )


def test_second_matching_field_adds_nothing_when_tie_breaker_is_zero(make_leg):
    retriever = make_leg(
        [
            Product(id="title", title="walnut desk", description="pine top"),
            Product(id="title+desc", title="walnut desk", description="walnut top"),
            Product(id="neither", title="pine desk", description="pine top"),
        ],
        tie_breaker=0.0,
    )
    found = scores(retriever.search("walnut", 10))
    assert found["title"] == pytest.approx(found["title+desc"], rel=1e-6)
    assert "neither" not in found


def test_field_boost_multiplies_score(make_leg, reopen):
    plain = make_leg(
        [Product(id="a", title="red sofa"), Product(id="b", title="oak table")], field_boosts={"title": 1.0}
    )
    boosted = reopen(plain, field_boosts={"title": 2.5})
    assert scores(boosted.search("sofa", 10))["a"] == pytest.approx(
        2.5 * scores(plain.search("sofa", 10))["a"], rel=1e-6
    )


@pytest.mark.parametrize(
    ("indexed", "query"), [("leather sofa", "sofas"), ("leather sofas", "sofa"), ("running shoes", "run shoe")]
)
def test_stemmed_query_matches_other_inflection(make_leg, indexed, query):
    retriever = make_leg([Product(id="a", title=indexed), Product(id="b", title="oak table")])
    assert ids(retriever.search(query, 10)) == ["a"]


def test_score_ties_are_broken_by_product_id_across_writes(make_leg):
    pids = [f"p{i:02d}" for i in range(30)]
    random.Random(7).shuffle(pids)
    retriever = make_leg([Product(id=pid, title="sofa") for pid in pids[:15]])
    retriever.add(Product(id=pid, title="sofa") for pid in pids[15:])
    assert ids(retriever.search("sofa", 5)) == sorted(pids)[:5]
    assert ids(retriever.search("sofa", 30)) == sorted(pids)


# --- query text is never syntax --------------------------------------------------------------

SYNTAX_CATALOG = [
    Product(id="leather", title="red leather sofa"),
    Product(id="chair", title="chair"),
    Product(id="lamp", title="lamp"),
    Product(id="oak", title="oak shelf", description="sturdy"),
]


@pytest.mark.parametrize(
    ("query", "must_find"),
    [
        ("sofa -leather", "leather"),
        ("NOT chair", "chair"),
        ("chair AND lamp", "lamp"),
        ("chair AND lamp", "chair"),
        ('"sofa red"', "leather"),
        ("oak^0", "oak"),
    ],
)
def test_query_operators_act_as_plain_words(make_leg, query, must_find):
    assert must_find in ids(make_leg(SYNTAX_CATALOG).search(query, 10))


@pytest.mark.parametrize("query", ["title:sturdy", "description:sturdy"])
def test_field_syntax_is_a_word_not_a_field_restriction(make_leg, engine, query):
    """Read as syntax, one of these would find the oak shelf (``sturdy`` is in its description) and one not.

    tantivy's tokenizer splits at ``:``, so both words are searched in every
    field; the servers' standard tokenizer (Unicode word breaks) keeps
    ``field:word`` as one word, which no product contains.
    """
    found = ids(make_leg(SYNTAX_CATALOG).search(query, 10))
    assert found == (["oak"] if engine == "tantivy" else [])


SYNTAX_QUERIES = [
    '"',
    "(",
    ")",
    "title:",
    "*",
    "[1 TO 2]",
    "~2",
    "^",
    "\\",
    "{",
    "a:b:c",
    "+-",
    "&& || !",
    'sofa" OR (',
    "/regex.*/",
    "\x00",
    "🛋️ sofa",
    "sofa~ AND (oak OR",
    "_id:chair",
    "*:*",
]


def test_query_syntax_characters_do_not_raise(make_leg):
    retriever = make_leg(SYNTAX_CATALOG)
    for query in SYNTAX_QUERIES:
        assert isinstance(retriever.search(query, 10), list), query
        assert isinstance(retriever.search(query, 10, Filters(brand="x")), list), query


def test_match_all_syntax_is_not_everything(make_leg):
    assert make_leg(SYNTAX_CATALOG).search("*:*", 10) == []


# --- empty queries and k ---------------------------------------------------------------------


@pytest.mark.parametrize("query", ["", "   ", "*", "?!"])
def test_empty_query_without_filters_returns_nothing(make_leg, query):
    retriever = make_leg(SYNTAX_CATALOG)
    assert retriever.search(query, 10) == []
    assert retriever.search(query, 10, Filters()) == []


def test_empty_query_with_filters_returns_filtered_products_by_id(make_leg):
    catalog = [Product(id=f"p{i}", title="thing", brand="Acme" if i % 2 else "Bolt") for i in range(9, -1, -1)]
    found = make_leg(catalog).search("", 3, Filters(brand="acme"))
    assert ids(found) == ["p1", "p3", "p5"]
    assert {c.score for c in found} == {0.0}


# --- decomposed accents (NFD: macOS and PIM exports) ------------------------------------------------

COMPOSED, DECOMPOSED = "Müller Kühlschrank", "Mu\u0308ller Ku\u0308hlschrank"


@pytest.mark.parametrize(("written", "typed"), [(DECOMPOSED, "kühlschrank"), (COMPOSED, "ku\u0308hlschrank")])
def test_a_title_with_decomposed_accents_and_one_with_composed_ones_find_each_other(make_leg, written, typed):
    catalog = [Product(id="fridge", title=written), Product(id="other", title="Kuhl Ku Hlschrank Shelf")]
    assert ids(make_leg(catalog, correct_typos=False).search(typed, 10))[0] == "fridge"


def test_a_query_with_decomposed_accents_is_read_by_the_typo_corrector_as_the_same_words(make_leg):
    """Typo correction (on by default) reads the words again as typed: a text it cut apart at the accent ("mu",
    "ller") was not the list of words the analyser gave it, and the search failed."""
    catalog = [Product(id="fridge", title=COMPOSED), Product(id="other", title="Kuhl Ku Hlschrank Shelf")]
    assert ids(make_leg(catalog).search(DECOMPOSED, 10))[0] == "fridge"


def test_a_brand_filter_with_decomposed_accents_matches_the_brand_written_composed(make_leg):
    catalog = [Product(id="a", title="fridge", brand="Müller"), Product(id="b", title="fridge", brand="Muller")]
    assert ids(make_leg(catalog).search("fridge", 10, Filters(brand="Mu\u0308ller"))) == ["a"]


def test_k_zero_returns_nothing_and_negative_k_raises(make_leg):
    retriever = make_leg(SYNTAX_CATALOG)
    assert retriever.search("sofa", 0) == []
    with pytest.raises(ValueError, match="k=-1"):
        retriever.search("sofa", -1)


# --- filters against the reference -----------------------------------------------------------

PATHS = [
    (),
    ("Furniture",),
    ("furniture", "Sofas"),
    ("FURNITURE", "sofas", "Corner"),
    ("Furniture", "Tables"),
    ("Furn",),
    ("Furniture Sofas",),
    ("Lighting", "Lamps"),
    (" lighting ",),
]
BRANDS = ["", "Acme", "ACME", "acme", "Bolt", "Ikea", "Straße"]
PRICES = [None, 0.0, 10.0, 25.5, 100.0]
ATTRIBUTES = {"color": ["Red", "red", "Blue", "dark red", "Weiß"], "size": ["L", "XL", "l"]}


def random_catalog(rng: random.Random, n: int = 80) -> list[Product]:
    catalog = []
    for i in range(n):
        attrs = {key: rng.sample(values, rng.randint(1, 2)) for key, values in ATTRIBUTES.items() if rng.random() < 0.6}
        catalog.append(
            Product(
                id=f"p{i:03d}",
                title=f"item {rng.choice(['sofa', 'lamp', 'table'])}",
                brand=rng.choice(BRANDS),
                category=rng.choice(PATHS),
                price=rng.choice(PRICES),
                attributes=attrs,
            )
        )
    return catalog


def random_filters(rng: random.Random, kind: str) -> Filters:
    fields: dict = {}
    if kind in ("category", "all"):
        path = rng.choice([p for p in PATHS if p] + [("sofas",), ("furniture", "SOFAS", "corner", "deep")])
        fields["category"] = tuple(
            part.upper() if rng.random() < 0.3 else part for part in path[: rng.randint(1, len(path))]
        )
    if kind in ("brand", "all"):
        fields["brand"] = tuple(rng.sample(["acme", "BOLT", "Ikea ", "", "nobody", "STRASSE"], rng.randint(1, 2)))
    if kind in ("price", "all"):
        low, high = sorted(rng.sample([0.0, 10.0, 25.5, 100.0, 5.0], 2))
        fields.update(rng.choice([{"price_min": low}, {"price_max": high}, {"price_min": low, "price_max": high}]))
    if kind in ("attributes", "all"):
        keys = rng.sample(["color", "Size", "material"], rng.randint(1, 2))
        fields["attributes"] = {
            key: tuple(rng.sample(["red", "RED", "blue", "l", "xl", "dark", "WEISS"], rng.randint(0, 2)))
            for key in keys
        }
    return Filters(**fields)


@pytest.mark.parametrize("kind", ["category", "brand", "price", "attributes", "all"])
def test_filters_match_reference_semantics_on_random_catalog(make_leg, kind):
    rng = random.Random(f"filters-{kind}")
    catalog = random_catalog(rng)
    retriever = make_leg(catalog)
    for _ in range(25):
        filters = random_filters(rng, kind)
        expected = {p.id for p in catalog if filters.matches(p)}
        assert set(ids(retriever.search("", 1000, filters))) == expected, filters
        assert set(ids(retriever.search("item", 1000, filters))) == expected, filters


def test_filter_does_not_change_scores(make_leg):
    retriever = make_leg(random_catalog(random.Random(3)))
    unfiltered = scores(retriever.search("sofa", 1000))
    filtered = scores(retriever.search("sofa", 1000, Filters(brand=("acme", "bolt"))))
    assert filtered
    assert all(unfiltered[pid] == score for pid, score in filtered.items())


# --- misspelt words (``lexical.correct_typos``: the tantivy term dictionary, the cluster's term suggester) -------

TYPO_CATALOG = [
    Product(id="vanity", title="Rustic bathroom vanity"),
    Product(id="toilet", title="Elongated toilet seat"),
    Product(id="rug", title="Faux fur rug"),
    Product(id="sofa", title="Grey sofa"),
    Product(id="soft", title="Soft throw blanket"),
    Product(id="m4500", title="Drill XR4500"),
    Product(id="tv", title="Oak TV stand"),
    Product(id="kobalt", title="Kobalt wrench"),
    Product(id="kobald", title="Kobald hammer"),
]


@pytest.mark.parametrize(("query", "found"), [("baathroom vanity", "vanity"), ("toliet", "toilet")])
def test_a_word_neither_the_catalogue_nor_english_has_is_searched_as_its_nearest_catalogue_word(make_leg, query, found):
    assert ids(make_leg(TYPO_CATALOG).search(query, 10)) == [found]


def test_a_corrected_word_scores_below_the_word_spelt_right(make_leg):
    retriever = make_leg(TYPO_CATALOG)
    assert scores(retriever.search("toliet", 10))["toilet"] < scores(retriever.search("toilet", 10))["toilet"]


def test_an_english_word_the_catalogue_lacks_is_not_corrected(make_leg):
    # "for" is one edit from the catalogue's "fur", but a word spelt right.
    assert make_leg(TYPO_CATALOG).search("for", 10) == []


@pytest.mark.parametrize(("query", "found"), [("sofa", "sofa"), ("kobalt", "kobalt")])
def test_a_word_the_catalogue_has_is_searched_as_typed(make_leg, query, found):
    # Each is one edit from another catalogue word ("soft", "kobald"): Elasticsearch's fuzziness would find both.
    assert ids(make_leg(TYPO_CATALOG).search(query, 10)) == [found]


@pytest.mark.parametrize("query", ["xr4501", "vathroom", "tc"])
def test_codes_first_letters_and_words_of_two_letters_are_not_corrected(make_leg, query):
    # Each is one edit from a catalogue word: a model code is not corrected into another, a mistyped first letter
    # is left (Lucene's spell checker's prefix), and Elasticsearch's AUTO allows no edit below three letters.
    assert make_leg(TYPO_CATALOG).search(query, 10) == []


def test_correct_typos_off_searches_words_as_typed(make_leg):
    assert make_leg(TYPO_CATALOG, correct_typos=False).search("toliet", 10) == []


# --- model codes (``lexical.model_codes``: the tantivy index's code field, the cluster's since mapping v4) -------

# Each code's words are elsewhere too ("10", "2", "745"), so what is found first is found by the code.
CODE_CATALOG = [
    Product(id="ecc", title="Makita ECC-10-2 Cordless Cutter"),
    Product(id="xr", title="DEWALT XR-4501 Brushless Drill"),
    Product(id="dw", title="DEWALT DW745-B Table Saw"),
    Product(id="reel", title="Everbilt R-40-1.5 Hose Reel"),
    Product(id="blade", title="Saw Blade 10 in. 2-Pack, 745 teeth"),
]


@pytest.mark.parametrize(
    ("query", "found"), [("ecc102", "ecc"), ("ECC102", "ecc"), ("xr4501", "xr"), ("dw745b", "dw"), ("r4015", "reel")]
)
def test_a_model_number_typed_without_its_separators_finds_it_first(make_leg, query, found):
    assert ids(make_leg(CODE_CATALOG).search(query, 10))[0] == found


@pytest.mark.parametrize(
    ("query", "found"), [("ecc10-2", "ecc"), ("ecc 10 2", "ecc"), ("dw 745b", "dw"), ("r40/1.5", "reel")]
)
def test_a_model_number_typed_with_other_separators_finds_it_first(make_leg, query, found):
    assert ids(make_leg(CODE_CATALOG).search(query, 10))[0] == found


def test_each_model_number_a_product_lists_with_a_slash_finds_it(make_leg):
    # An accessory names every model it fits in one run: "DW745-B/DW746-B" is read as the whole and as each.
    retriever = make_leg([*CODE_CATALOG, Product(id="guard", title="Blade guard", description="Fits DW745-B/DW746-B")])
    assert ids(retriever.search("dw746b", 10)) == ["guard"]
    assert ids(retriever.search("dw745b", 10))[:2] == ["dw", "guard"]


def test_a_fraction_is_not_read_as_a_list_of_model_numbers(make_leg):
    # "1/2-NPT" is a size: its "2-NPT" is no model number that would put the half-inch plug above the two-inch one.
    catalog = [Product(id="half", title="Brass plug 1/2-NPT"), Product(id="two", title="Brass plug 2 NPT")]
    assert ids(make_leg(catalog).search("2-npt", 10))[0] == "two"


@pytest.mark.parametrize("query", ["290420", "2904 20"])
def test_a_model_number_of_six_digits_or_more_is_found_typed_without_its_separator(make_leg, query):
    catalog = [*CODE_CATALOG, Product(id="m18", title="Milwaukee M18 2904-20 Hammer Drill")]
    assert ids(make_leg(catalog).search(query, 10))[0] == "m18"


@pytest.mark.parametrize(("query", "written"), [("2436", "24-36 in. Shelf"), ("12", "1/2 in. Pipe")])
def test_numbers_of_fewer_digits_are_not_joined_into_a_model_number(make_leg, query, written):
    # Sizes, not codes: a shopper's "12" is not half an inch.
    assert make_leg([Product(id="p", title=written)]).search(query, 10) == []


def test_a_plain_number_does_not_match_a_model_number(make_leg):
    # "102" is ECC-10-2 without its letters: no code, and no word of any title.
    assert make_leg(CODE_CATALOG).search("102", 10) == []


def test_numbers_typed_apart_score_as_words_whether_or_not_codes_are_searched(make_leg, reopen):
    on = make_leg(CODE_CATALOG)
    off = reopen(on, model_codes=False)
    assert scores(on.search("10 2", 10)) == scores(off.search("10 2", 10))


def test_a_size_written_with_a_hyphen_is_no_model_number(make_leg):
    # "1/2-in." is half an inch, not the code "12in" a query "12in" would find.
    assert make_leg([Product(id="pipe", title="1/2-in. PVC Pipe")]).search("12in", 10) == []


def test_a_model_number_ranks_the_product_titled_with_it_above_one_whose_description_names_it(make_leg):
    # An accessory's "fits DW745-B" is not its own code: a code counts at the boost of the field it is written in.
    catalog = [
        Product(id="saw", title="DEWALT DW745-B Table Saw", description="Fits the DW7440RS stand and DW7462 guard"),
        Product(id="blade", title="10 in. Saw Blade", description="Fits DW745-B"),
    ]
    assert ids(make_leg(catalog).search("dw745b", 10)) == ["saw", "blade"]


def test_a_model_number_only_in_a_field_not_searched_is_not_found(make_leg):
    catalog = [Product(id="saw", title="DEWALT Table Saw", description="Takes the DW7462 guard")]
    assert make_leg(catalog, field_boosts={"title": 1.0}).search("dw7462", 10) == []


def test_model_codes_off_searches_words_as_typed(make_leg):
    assert make_leg(CODE_CATALOG, model_codes=False).search("ecc102", 10) == []


def test_a_product_updated_with_a_model_number_is_found_by_it(make_leg):
    retriever = make_leg([Product(id="kb", title="Kobalt Wrench Set")])
    retriever.add([Product(id="kb", title="Kobalt KB-0123A Wrench Set")])
    assert ids(retriever.search("kb0123a", 10)) == ["kb"]


# --- index lifecycle -------------------------------------------------------------------------


def test_upsert_replaces_existing_product(make_leg):
    retriever = make_leg([Product(id="a", title="red sofa", brand="Acme"), Product(id="b", title="lamp")])
    assert retriever.add([Product(id="a", title="blue chair", brand="Bolt")]) == 1
    assert retriever.count() == 2
    assert retriever.search("sofa", 10) == []
    assert ids(retriever.search("chair", 10)) == ["a"]
    assert retriever.search("", 10, Filters(brand="acme")) == []


def test_upsert_keeps_last_duplicate_within_one_call(make_leg):
    retriever = make_leg()
    written = retriever.add([Product(id="a", title="red sofa"), Product(id="a", title="blue chair")])
    assert (written, retriever.count()) == (1, 1)
    assert ids(retriever.search("chair sofa", 10)) == ["a"]
    assert retriever.search("sofa", 10) == []


def test_delete_removes_products_and_counts_only_indexed_ids(make_leg):
    retriever = make_leg([Product(id="a", title="red sofa"), Product(id="b", title="blue sofa")])
    assert retriever.delete(["a", "missing", "a"]) == 1
    assert retriever.count() == 1
    assert ids(retriever.search("sofa", 10)) == ["b"]
    assert retriever.delete(["a"]) == 0
    assert retriever.delete([]) == 0


def test_add_rejects_non_product_records_without_writing_their_batch(make_leg):
    retriever = make_leg([Product(id="a", title="sofa")])
    with pytest.raises(TypeError, match="dict"):
        retriever.add([Product(id="b", title="sofa"), {"id": "c", "title": "sofa"}])
    assert retriever.count() == 1
