"""The learned ranking stage: its features on a tiny example, reordering by the model, explaining, failing open."""

import math

import lightgbm
import numpy as np
import pytest

from search_rerank.core.candidate import Candidate
from search_rerank.core.errors import ConfigError
from search_rerank.core.learned_rank import BIAS, CONTRIBUTION_PREFIX, LearnedRanker
from search_rerank.core.pipeline import SearchPipeline
from search_rerank.core.product import Product
from search_rerank.core.ranker_features import FEATURES, features, query_head, words
from search_rerank.core.retrieval import LEXICAL, Stage
from search_rerank.core.settings import Settings
from search_rerank.evaluation.evaluate import config_settings, standard_configs
from search_rerank.indexing.indexes import build_index, open_pipeline


def column(rows: np.ndarray, name: str) -> list[float]:
    return [float(v) for v in rows[:, FEATURES.index(name)]]


DRILL = Product(
    id="d1",
    title="Makita DHP482 18V Cordless Drill",
    brand="Makita",
    category=("Tools", "Drills"),
    price=120.0,
)
SAW = Product(id="s1", title="Bosch circular saw 1400W", brand="Bosch", category=("Tools", "Saws"), price=80.0)


def tiny_candidates() -> list[Candidate]:
    both = Candidate(
        "d1",
        0.9,
        frozenset({"lexical", "dense"}),
        {"lexical_score": 7.5, "lexical_rank": 1.0, "dense_score": 0.6, "dense_rank": 2.0, "fused": 0.9},
    )
    dense_only = Candidate("s1", 0.2, frozenset({"dense"}), {"dense_score": 0.7, "dense_rank": 1.0, "fused": 0.2})
    return [both, dense_only]


def test_features_mark_a_leg_that_did_not_find_the_product_as_missing():
    rows = features("makita drill", tiny_candidates(), {"d1": DRILL, "s1": SAW}, {"d1": 0.9})
    assert column(rows, "lexical_missing") == [0.0, 1.0]
    assert column(rows, "lexical_score")[0] == 7.5 and math.isnan(column(rows, "lexical_score")[1])
    assert column(rows, "dense_missing") == [0.0, 0.0]
    assert column(rows, "fused_rank") == [1.0, 2.0]
    assert column(rows, "rerank_missing") == [1.0, 1.0]
    assert column(rows, "popularity")[0] == 0.9 and math.isnan(column(rows, "popularity")[1])


@pytest.mark.parametrize(
    ("query", "head"),
    [
        ("8 foot step ladder", "ladder"),
        ("ladder 8 ft", "ladder"),
        ("paint brush for trim", "brush"),
        ("36 in x 80 in door", "door"),
        ("3 light chandelier", "chandelier"),
        ("dw745", None),
    ],
)
def test_a_querys_head_is_its_last_word_before_a_preposition_units_left_out(query, head):
    assert query_head(words(query)) == head


def test_features_say_whether_the_title_holds_the_querys_head():
    rows = features("makita drills", tiny_candidates(), {"d1": DRILL, "s1": SAW}, {})
    assert column(rows, "head_in_title") == [1.0, 0.0]
    drill_saw = features("drill saw", tiny_candidates(), {"d1": DRILL, "s1": SAW}, {})
    assert column(drill_saw, "head_in_title") == [0.0, 1.0]
    assert all(math.isnan(v) for v in column(features("dhp482", tiny_candidates(), {"d1": DRILL}, {}), "head_in_title"))


def test_features_count_a_misspelt_or_run_together_word_as_near_by_its_letter_trigrams():
    paint = Product(id="p1", title="BEHR DeckOver Deluxe Wood Coating", brand="BEHR")
    stain = Product(id="p2", title="Olympic Maximum Deck Stain", brand="Olympic")
    candidates = [Candidate("p1", 0.5, frozenset({"lexical"}), {}), Candidate("p2", 0.4, frozenset({"lexical"}), {})]
    rows = features("delux deck over", candidates, {"p1": paint, "p2": stain}, {})
    assert column(rows, "title_coverage") == [0.0, 1 / 3]
    near = column(rows, "title_trigram_coverage")
    assert near[0] > 0.8 > 0.2 > near[1]


def test_features_measure_the_query_words_found_in_the_title_and_brand():
    rows = features("makita drills 18v", tiny_candidates(), {"d1": DRILL, "s1": SAW}, {})
    assert column(rows, "query_terms") == [3.0, 3.0]
    assert column(rows, "title_coverage") == [1.0, 0.0]  # "drills" folds to "drill"
    assert column(rows, "brand_match") == [1.0, 0.0]
    assert column(rows, "category_match") == [1.0, 0.0]
    assert column(rows, "number_match") == [1.0, 0.0]
    assert column(rows, "price") == [120.0, 80.0]
    assert column(rows, "price_vs_median") == [1.2, 0.8]


def test_an_edited_product_gets_the_text_features_of_its_new_text():
    before = features("makita drill", tiny_candidates(), {"d1": DRILL, "s1": SAW}, {})
    renamed = DRILL.model_copy(update={"title": "Makita DHP482 18V Cordless Screwdriver"})
    after = features("makita drill", tiny_candidates(), {"d1": renamed, "s1": SAW}, {})
    assert column(before, "title_coverage")[0] == 1.0
    assert column(after, "title_coverage")[0] == 0.5


def test_features_match_whole_and_partial_model_numbers():
    whole = features("dhp482", tiny_candidates(), {"d1": DRILL, "s1": SAW}, {})
    partial = features("dhp48", tiny_candidates(), {"d1": DRILL, "s1": SAW}, {})
    assert column(whole, "model_number_match") == [1.0, 0.0]
    assert column(partial, "model_number_match") == [0.0, 0.0]
    assert column(partial, "model_number_prefix") == [1.0, 0.0]
    assert column(whole, "phrase_in_title") == [1.0, 0.0]


def test_features_match_a_code_typed_without_its_brand_prefix():
    grill = Product(id="g1", title="Jesfield Bbq in Charcoal JD-7466H", brand="Jesfield")
    rows = features("7466h", [Candidate("g1", 1.0, frozenset({"lexical"}), {})], {"g1": grill}, {})
    assert column(rows, "model_number_match") == [1.0]


MAKITA_SANDER = Product(
    id="m2", title="Makita BO5031 random orbit sander", brand="Makita", category=("Tools", "Sanders")
)


def code_query_candidates() -> list[Candidate]:
    return [*tiny_candidates(), Candidate("m2", 0.1, frozenset({"lexical"}), {"lexical_score": 1.0, "fused": 0.1})]


def test_code_anchors_give_every_candidate_its_brand_and_cosine_with_the_product_the_code_names():
    vectors = {"d1": np.array([1.0, 0.0]), "s1": np.array([0.6, 0.8]), "m2": np.array([0.0, 1.0])}
    products = {"d1": DRILL, "s1": SAW, "m2": MAKITA_SANDER}
    rows = features("makita dhp482", code_query_candidates(), products, {}, vectors=vectors)
    assert column(rows, "code_anchor_brand") == [1.0, 0.0, 1.0]
    assert column(rows, "code_anchor_cosine") == pytest.approx([1.0, 0.6, 0.0])


def test_code_anchor_features_are_missing_when_no_candidate_carries_the_code():
    products = {"d1": DRILL, "s1": SAW, "m2": MAKITA_SANDER}
    for query in ("cordless drill", "dhp999"):
        rows = features(query, code_query_candidates(), products, {}, vectors={"d1": np.array([1.0])})
        assert all(math.isnan(v) for v in column(rows, "code_anchor_brand") + column(rows, "code_anchor_cosine"))


def test_code_anchor_cosine_is_missing_without_product_vectors():
    rows = features("dhp482", code_query_candidates(), {"d1": DRILL, "s1": SAW, "m2": MAKITA_SANDER}, {})
    assert column(rows, "code_anchor_brand") == [1.0, 0.0, 1.0]
    assert all(math.isnan(v) for v in column(rows, "code_anchor_cosine"))


def test_features_leave_per_field_bm25_missing_when_the_leg_cannot_give_it():
    rows = features("drill", tiny_candidates(), {"d1": DRILL, "s1": SAW}, {})
    assert all(math.isnan(v) for v in column(rows, "bm25_title"))
    given = features("drill", tiny_candidates(), {"d1": DRILL, "s1": SAW}, {}, {"title": {"d1": 2.5}})
    assert column(given, "bm25_title") == [2.5, 0.0]


# --------------------------------------------------------------------- the stage in a pipeline

PRODUCTS = [
    Product(id=f"p{i}", title=f"oak table {'large ' * (i % 3)}model t{i}", category=("Home", "Tables"), price=p)
    for i, p in enumerate((90.0, 10.0, 50.0, 30.0, 70.0, 20.0))
]


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    settings = Settings(
        index_dir=tmp_path_factory.mktemp("ltr-shop") / "idx",
        dense={"enabled": False},
        longtail={"enabled": False},
        ltr={"model": "cheapest-first"},
    )
    build_index(PRODUCTS, settings.override(ltr={"model": None}), progress=False)
    return settings


def cheapest_first() -> LearnedRanker:
    """A model whose score falls with the price: an order BM25 has no reason to produce."""
    rng = np.random.default_rng(0)
    rows = rng.uniform(0, 100, size=(400, len(FEATURES)))
    booster = lightgbm.train(
        {"objective": "regression", "verbose": -1, "min_data_in_leaf": 5, "seed": 1},
        lightgbm.Dataset(rows, -rows[:, FEATURES.index("price")]),
        num_boost_round=40,
    )
    return LearnedRanker(booster, FEATURES, "cheapest-first")


def pipeline_with(settings: Settings, ranker: LearnedRanker) -> SearchPipeline:
    served = open_pipeline(settings.override(ltr={"model": None}))
    return SearchPipeline(settings, served.legs, served.store, None, ranker)


def test_the_learned_stage_orders_the_results_by_the_model(shop):
    pipeline = pipeline_with(shop, cheapest_first())
    result = pipeline.run("oak table", size=6)
    assert Stage.LTR not in result.degraded and Stage.LTR in result.ranking.stages
    prices = [hit.product.price for hit in result.hits]
    assert prices == sorted(prices)
    assert [c.product_id for c in result.ranking.stages[Stage.FUSION]] != [h.product.id for h in result.hits]


def test_explain_gives_each_features_contribution_summing_to_the_score(shop):
    hit = pipeline_with(shop, cheapest_first()).run("oak table", size=1).hits[0]
    explained = hit.explanation()
    contributions = {k: v for k, v in explained.items() if k.startswith(CONTRIBUTION_PREFIX)}
    assert f"{CONTRIBUTION_PREFIX}price" in contributions and f"{CONTRIBUTION_PREFIX}{BIAS}" in contributions
    assert sum(contributions.values()) == pytest.approx(explained["final"])


def test_the_learned_stage_reads_per_field_bm25_from_the_tantivy_leg(shop):
    pipeline = pipeline_with(shop, cheapest_first())
    candidates = pipeline.rank_from(pipeline.retrieve("large", None)).stages[LEXICAL]
    rows = pipeline.ranker_features("large", candidates)
    assert all(v > 0 for v in column(rows, "bm25_title"))
    assert column(rows, "bm25_description") == [0.0] * len(candidates)


def test_the_learned_stage_reads_the_code_anchors_vectors_from_the_dense_leg(tmp_path, tiny_settings):
    settings = Settings(index_dir=tmp_path / "idx", dense=tiny_settings.model_dump(), longtail={"enabled": False})
    build_index(PRODUCTS, settings, progress=False)
    pipeline = open_pipeline(settings)
    candidates = pipeline.rank_from(pipeline.retrieve("t2", None)).stages[Stage.FUSION]
    rows = pipeline.ranker_features("t2", candidates)
    anchor = [c.product_id for c in candidates].index("p2")
    assert column(rows, "code_anchor_cosine")[anchor] == pytest.approx(1.0, abs=1e-5)
    assert not any(math.isnan(v) for v in column(rows, "code_anchor_cosine"))


def test_a_failing_ranker_leaves_the_order_before_it_and_is_flagged(shop):
    rows = np.random.default_rng(0).uniform(size=(50, 3))
    wrong_width = lightgbm.train({"objective": "regression", "verbose": -1}, lightgbm.Dataset(rows, rows[:, 0]), 5)
    pipeline = pipeline_with(shop, LearnedRanker(wrong_width, FEATURES, "broken"))
    result = pipeline.run("oak table", size=6)
    assert result.degraded[Stage.LTR] == "error"
    assert [h.product.id for h in result.hits] == [c.product_id for c in result.ranking.stages[Stage.FUSION]]


def test_the_learned_stage_is_skipped_when_disabled_in_settings(shop):
    pipeline = pipeline_with(shop, cheapest_first())
    result = pipeline.run("oak table", settings=shop.override(ltr={"enabled": False}))
    assert Stage.LTR in result.ranking.skipped and Stage.LTR not in result.ranking.stages


def test_a_ranker_trained_on_a_feature_this_version_does_not_compute_is_refused():
    with pytest.raises(ConfigError, match="does not compute.*retired_feature"):
        LearnedRanker(cheapest_first().booster, [*FEATURES[:-1], "retired_feature"], "old")


def test_a_ranker_trained_on_fewer_features_is_fed_its_own_columns_in_its_order():
    """An upgrade that adds a feature leaves a shop's trained ranker serving: it is fed the columns it knows."""
    older = ["price", "title_coverage", "lexical_score"]
    rng = np.random.default_rng(0)
    rows = rng.uniform(0, 100, size=(400, len(older)))
    booster = lightgbm.train(
        {"objective": "regression", "verbose": -1, "min_data_in_leaf": 5, "seed": 1},
        lightgbm.Dataset(rows, -rows[:, 0]),
        num_boost_round=40,
    )
    ranker = LearnedRanker(booster, older, "older")
    full = rng.uniform(0, 100, size=(30, len(FEATURES)))
    expected = booster.predict(full[:, [FEATURES.index(name) for name in older]])
    assert ranker.scores(full).tolist() == pytest.approx(expected.tolist())


def test_explaining_a_ranker_trained_on_fewer_features_names_only_its_own(shop):
    older = ["price", "lexical_score"]
    rows = np.random.default_rng(0).uniform(0, 100, size=(400, len(older)))
    booster = lightgbm.train(
        {"objective": "regression", "verbose": -1, "min_data_in_leaf": 5, "seed": 1},
        lightgbm.Dataset(rows, -rows[:, 0]),
        num_boost_round=40,
    )
    hit = pipeline_with(shop, LearnedRanker(booster, older, "older")).run("oak table", size=1).hits[0]
    explained = hit.explanation()
    contributions = {k: v for k, v in explained.items() if k.startswith(CONTRIBUTION_PREFIX)}
    assert set(contributions) <= {f"{CONTRIBUTION_PREFIX}{name}" for name in [*older, BIAS]}
    assert sum(contributions.values()) == pytest.approx(explained["final"])


def test_evaluate_ranks_only_its_ltr_row_with_the_learned_stage():
    configs = standard_configs(has_reranker=False, fusion="linear", has_ranker=True)
    base = Settings(ltr={"model": "some-ranker"})
    assert [c.name for c in configs if config_settings(base, c).ltr.enabled] == ["hybrid+ltr"]
