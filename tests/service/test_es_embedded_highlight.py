"""Highlights on the embedded (tantivy) backend, as Elasticsearch's default (unified) highlighter answers them.

Each expectation is Elasticsearch's documented behaviour for the request: the words every clause but ``must_not``
matches, in the fields the clause searched (``require_field_match`` defaults to true), fuzzy and prefix matches
included, a phrase as one span (8.x's weight-matches mode), the whole value for ``number_of_fragments: 0``, and
Lucene's HTML encoder for ``"encoder": "html"``.
"""

from __future__ import annotations

import pytest
from front_end_catalog import product

from search_rerank.core.product import Product
from search_rerank.core.settings import Settings
from search_rerank.indexing.indexes import build_index, open_pipeline
from search_rerank.serving import create_app

CATALOG = [
    product(
        "h1",
        "Corner sofa (grey)",
        "Acme",
        "Furniture > Sofas",
        499.0,
        "grey",
        4.1,
        120,
        "A roomy corner sofa. It seats three, and the grey sofa folds out into a bed. Its legs are solid oak.",
    ),
    product(
        "h2",
        "<script>alert('x')</script> Leather sofa",
        "Bolt",
        "Furniture > Sofas",
        899.0,
        "brown",
        4.7,
        40,
        'Tom & Jerry "sofa" / 2-seat',
    ),
    product("h3", "Oak table", "Bolt", "Furniture > Tables", 249.5, "brown", 4.8, 60, "solid oak dining table"),
    product("h4", "Floor lamp", "Dune", "Lighting", 89.0, "white", None, 5, "a tall floor lamp for reading"),
]
WHOLE = {"number_of_fragments": 0}


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    settings = Settings(index_dir=tmp_path_factory.mktemp("highlight") / "idx", dense={"enabled": False})
    build_index(CATALOG, settings, progress=False)
    pipeline = open_pipeline(settings)
    yield create_app(settings, pipeline).test_client()
    pipeline.close()


def highlighted(client, body) -> dict[str, dict[str, list[str]]]:
    response = client.post("/products/_search", json=body)
    assert response.status_code == 200, response.get_json()
    return {hit["_id"]: hit.get("highlight", {}) for hit in response.get_json()["hits"]["hits"]}


def test_highlight_marks_the_words_a_fuzzy_match_finds(client):
    # Searchkit's search box: fuzziness AUTO:4,8 on every search, so a typo finds and highlights the sofas.
    query = {"multi_match": {"query": "sofw", "fields": ["title^3", "description"], "fuzziness": "AUTO:4,8"}}
    found = highlighted(client, {"query": query, "highlight": {"fields": {"title": WHOLE}}})
    assert found["h1"] == {"title": ["Corner <em>sofa</em> (grey)"]}


def test_whole_field_highlight_keeps_the_text_after_the_last_match(client):
    found = highlighted(client, {"query": {"match": {"title": "grey"}}, "highlight": {"fields": {"title": WHOLE}}})
    assert found["h1"] == {"title": ["Corner sofa (<em>grey</em>)"]}


def test_highlight_leaves_a_field_the_query_did_not_search_unmarked(client):
    body = {"query": {"match": {"title": "sofa"}}, "highlight": {"fields": {"title": WHOLE, "description": WHOLE}}}
    assert highlighted(client, body)["h1"] == {"title": ["Corner <em>sofa</em> (grey)"]}


def test_highlight_marks_the_words_of_filter_clauses(client):
    query = {"bool": {"must": {"match": {"title": "table"}}, "filter": {"match": {"description": "oak"}}}}
    found = highlighted(client, {"query": query, "highlight": {"fields": {"description": WHOLE}}})
    assert found["h3"] == {"description": ["solid <em>oak</em> dining table"]}


def test_highlight_marks_a_phrase_as_one_span_where_its_words_stand_together(client):
    body = {"query": {"match_phrase": {"description": "grey sofa"}}, "highlight": {"fields": {"description": WHOLE}}}
    assert highlighted(client, body)["h1"] == {
        "description": [
            "A roomy corner sofa. It seats three, and the <em>grey sofa</em> folds out into a bed. Its legs are solid oak."
        ]
    }


def test_html_encoder_escapes_what_lucenes_html_encoder_escapes(client):
    body = {"query": {"match": {"title": "leather"}}, "highlight": {"encoder": "html", "fields": {"title": WHOLE}}}
    assert highlighted(client, body)["h2"] == {
        "title": ["&lt;script&gt;alert(&#x27;x&#x27;)&lt;&#x2F;script&gt; <em>Leather</em> sofa"]
    }


def test_fragments_are_the_sentences_that_hold_a_match(client):
    fields = {"description": {"fragment_size": 40, "number_of_fragments": 3}}
    body = {"query": {"match": {"description": "sofa oak"}}, "highlight": {"fields": fields}}
    first, second, third = highlighted(client, body)["h1"]["description"]
    assert first == "A roomy corner <em>sofa</em>."
    # A sentence longer than fragment_size is cut at a word after its match.
    assert second.startswith("It seats three, and the grey <em>sofa</em>") and "bed" not in second
    assert third == "Its legs are solid <em>oak</em>."


def test_no_match_size_ends_at_a_word_boundary(client):
    fields = {"title": {"no_match_size": 3}, "description": {}}
    found = highlighted(client, {"query": {"match": {"description": "reading"}}, "highlight": {"fields": fields}})
    assert found["h4"]["title"] == ["Floor"]


def test_highlight_query_decides_what_is_marked(client):
    highlight = {"fields": {"title": WHOLE}, "highlight_query": {"match": {"title": "corner"}}}
    found = highlighted(client, {"query": {"match": {"title": "sofa"}}, "highlight": highlight})
    assert found["h1"] == {"title": ["<em>Corner</em> sofa (grey)"]}


def test_a_second_passage_in_a_cut_sentence_goes_on_from_where_the_first_ended(client):
    # Elasticsearch's BoundedBreakIteratorScanner: a match in the sentence window of the passage before starts its
    # passage where that one ended (the grey sofa's sentence is longer than fragment_size): "the grey sofa" is not
    # written twice.
    fields = {"description": {"fragment_size": 30, "number_of_fragments": 5}}
    body = {"query": {"match": {"description": "three bed"}}, "highlight": {"fields": fields}}
    assert highlighted(client, body)["h1"] == {
        "description": ["It seats <em>three</em>, and the grey sofa", "folds out into a <em>bed</em>."]
    }


def test_a_cut_sentence_keeps_fragment_size_before_the_character_after_the_matchs_start(client):
    # Lucene's FieldHighlighter asks the scanner for the passage at a match's start + 1, so "table" (at 17) with
    # fragment_size 8 begins at the last word boundary before 10: "dining", not "oak".
    body = {
        "query": {"match": {"description": "table"}},
        "highlight": {"fields": {"description": {"fragment_size": 8}}},
    }
    assert highlighted(client, body)["h3"] == {"description": ["dining <em>table</em>"]}


def test_the_fragment_kept_is_the_one_with_the_words_rarer_in_the_value(client):
    # Lucene's PassageScorer weighs each term by how often the value holds it: "oak" (once) outweighs "sofa"
    # (twice, both in the first passage), so Search UI's one snippet is the oak sentence.
    fields = {"description": {"fragment_size": 80, "number_of_fragments": 1}}
    body = {"query": {"match": {"description": "sofa oak"}}, "highlight": {"fields": fields}}
    assert highlighted(client, body)["h1"] == {"description": ["Its legs are solid <em>oak</em>."]}


def test_require_field_match_false_as_a_string_marks_every_field(client):
    # Elasticsearch reads "false" as false; it was read as true, leaving the description unmarked.
    highlight = {"require_field_match": "false", "fields": {"title": WHOLE, "description": WHOLE}}
    body = {"query": {"match": {"title": "oak"}}, "highlight": highlight}
    assert highlighted(client, body)["h3"]["description"] == ["solid <em>oak</em> dining table"]


def test_require_field_match_of_another_word_is_a_400_naming_it(client):
    body = {"query": {"match": {"title": "oak"}}, "highlight": {"require_field_match": "no", "fields": {"title": {}}}}
    response = client.post("/products/_search", json=body)
    assert response.status_code == 400
    assert response.get_json()["error"]["field"] == "highlight.require_field_match"  # where the body sets it


def test_order_score_in_any_case_puts_the_best_fragment_first(client):
    fields = {"description": {"fragment_size": 40, "number_of_fragments": 3, "order": "Score"}}
    body = {"query": {"match": {"description": "sofa oak"}}, "highlight": {"fields": fields}}
    assert highlighted(client, body)["h1"]["description"][0] == "Its legs are solid <em>oak</em>."


def test_a_fraction_typed_with_a_slash_is_highlighted_on_the_character_written(catalog_client):
    fractions = catalog_client([Product(id="tee", title="½ in. PVC Tee"), Product(id="pipe", title="PVC Pipe 1½ in.")])
    word = {"query": {"match": {"title": "1/2"}}, "highlight": {"fields": {"title": WHOLE}}}
    phrase = {"query": {"match_phrase": {"title": "1-1/2 in"}}, "highlight": {"fields": {"title": WHOLE}}}
    assert highlighted(fractions, word)["tee"] == {"title": ["<em>½</em> in. PVC Tee"]}
    assert highlighted(fractions, phrase)["pipe"] == {"title": ["PVC Pipe <em>1½ in</em>."]}
