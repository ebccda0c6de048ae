"""Index suggestions made from a suggestion query's hits, as the ReactiveSearch API server makes them: the cases
are its own (appbaseio/reactivesearch-api, plugins/querytranslate/suggestions_test.go), with its expected outputs."""

from __future__ import annotations

from typing import Any

from search_rerank.serving.rs_suggestions import (
    SuggestionsConfig,
    comparable_label,
    highlighted_source,
    index_suggestions,
    predicted,
    source_fields,
)


def config(value: str, **options: Any) -> SuggestionsConfig:
    return SuggestionsConfig(value, **{"data_fields": [], "value_fields": [], "highlight_fields": [], **options})


def predictions(label: str, typed: str, **options: Any) -> list[tuple[str, str]]:
    made = predicted(config(typed, predictive=True, **options), [{"label": label, "value": label}], typed)
    return [(s["label"], s["value"]) for s in made]


def test_a_highlighted_field_reads_as_its_first_fragment():
    hit = {
        "_source": {"title": "Harry Potter Collection", "description": "desc1"},
        "highlight": {"title": ["<b>Harry</b> Potter Collection (<b>Harry</b> Potter, #1-6)"]},
    }
    assert highlighted_source(hit) == {
        "title": "<b>Harry</b> Potter Collection (<b>Harry</b> Potter, #1-6)",
        "description": "desc1",
    }


def test_a_suggestion_is_labelled_with_the_highlight_and_valued_with_its_text():
    hit = {
        "_id": "1",
        "_index": "test",
        "_score": 0,
        "_source": {"title": "Rabindranath Tagore Hall"},
        "highlight": {"title": ["<b>Rabindranath Tagore Hall</b>"]},
    }
    (made,) = index_suggestions(config("tagore", data_fields=["title"]), [hit])
    assert made == {
        "value": "rabindranath tagore hall",
        "label": "<b>Rabindranath Tagore Hall</b>",
        "url": None,
        "sectionLabel": None,
        "sectionId": "index",
        "description": None,
        "action": None,
        "subAction": None,
        "icon": None,
        "iconURL": None,
        "_suggestion_type": "index",
        "_category": None,
        "_count": None,
        "_rs_score": 1,
        "_matched_tokens": ["tagore"],
        "_id": "1",
        "_index": "test",
        "_score": 0,
        "_source": {"title": "Rabindranath Tagore Hall"},
    }


def test_suggestions_rank_by_the_typed_words_matched_then_by_score():
    hits = [
        {"_id": "1", "_score": 9.0, "_source": {"title": "oak bench"}},
        {"_id": "2", "_score": 1.0, "_source": {"title": "grey sofa"}},
        {"_id": "3", "_score": 2.0, "_source": {"title": "grey sofas"}},  # the same label, stemmed: left out
        {"_id": "4", "_score": 5.0, "_source": {"title": "grey sofa bed"}},
    ]
    made = index_suggestions(config("grey sofa", data_fields=["title"]), hits)
    assert [(s["_id"], s["_rs_score"]) for s in made] == [("4", 2.1), ("2", 2.1), ("1", 0)]


def test_a_word_one_letter_short_of_a_value_word_counts_half():
    made = index_suggestions(config("lam", data_fields=["title"]), [{"_id": "1", "_source": {"title": "desk lamp"}}])
    assert made[0]["_rs_score"] == 0.5 and made[0]["_matched_tokens"] == ["lamp"]


def test_distinct_suggestions_keep_one_per_document():
    hits = [{"_id": "1", "_source": {"title": "grey sofa", "description": "a grey sofa bed"}}]
    fields = ["title", "description"]
    assert len(index_suggestions(config("sofa", data_fields=fields), hits)) == 2
    assert len(index_suggestions(config("sofa", data_fields=fields, distinct=True), hits)) == 1


def test_a_prediction_highlights_the_words_around_the_typed_one():
    assert predictions("Rabindranath Tagore Hall", "tagore", max_predicted_words=2) == [
        ('<b class="highlight">rabindranath</b> tagore <b class="highlight">hall</b>', "rabindranath tagore hall")
    ]


def test_a_prediction_takes_the_words_before_where_none_follow():
    assert predictions("Rabindranath Tagore", "tagore", max_predicted_words=2) == [
        ('<b class="highlight">rabindranath</b> tagore', "rabindranath tagore")
    ]


def test_with_stopwords_applied_a_prediction_of_only_stop_words_is_dropped():
    assert predictions("here and there", "there", max_predicted_words=1, apply_stopwords=True) == []
    assert predictions("here and there", "there", max_predicted_words=2, apply_stopwords=True) == []


def test_without_stopwords_applied_a_prediction_keeps_them():
    assert predictions("here and there", "there", max_predicted_words=2) == [
        ('<b class="highlight">here and</b> there', "here and there")
    ]


def test_with_stopwords_applied_a_prediction_skips_them_and_punctuation():
    expected = [('bat <b class="highlight">sons</b>', "bat sons")]
    assert predictions("batman and sons", "bat", max_predicted_words=1, apply_stopwords=True) == expected
    assert predictions("[batman and sons]", "bat", max_predicted_words=1, apply_stopwords=True) == expected


def test_without_data_fields_every_field_of_the_first_hit_is_read():
    source = {
        "title": "ded",
        "person": {
            "name": "John",
            "work": "Painter",
            "education": [{"degree": "graduation", "university": "harvard"}, {"degree": "post graduation"}],
        },
    }
    assert sorted(source_fields(source)) == [
        "person.education.degree",
        "person.education.university",
        "person.name",
        "person.work",
        "title",
    ]


def test_labels_compare_lower_case_trimmed_and_stemmed():
    assert comparable_label(" pizzas ") == "pizza"
