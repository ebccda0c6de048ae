import pytest

from search_rerank.core.candidate import Candidate
from search_rerank.core.longtail import HEAD, TAIL, TORSO, long_tail_stage, tier, tiers, xquad
from search_rerank.core.settings import LongTailSettings, Settings
from search_rerank.data.clicks import Impression
from search_rerank.evaluation.exposure import click_popularity, tier_shares

XQUAD = LongTailSettings(method="xquad", xquad_lambda=0.5, xquad_depth=10)


def candidates(*ids_scores):
    return [Candidate(pid, score) for pid, score in ids_scores]


def test_tiers_split_the_catalog_into_head_torso_and_tail():
    settings = LongTailSettings(head_fraction=0.2, torso_fraction=0.5)  # torso: 0.4..0.8
    assert [tier(p, settings) for p in (0.95, 0.8, 0.6, 0.4, 0.1)] == [HEAD, HEAD, TORSO, TORSO, TAIL]


def test_tiers_maps_every_product():
    assert tiers({"a": 0.99, "b": 0.0}, LongTailSettings()) == {"a": HEAD, "b": TAIL}


def test_tier_shares_count_where_the_shown_products_sit():
    pop = {"h": 0.99, "t1": 0.6, "t2": 0.1}
    shares = tier_shares([["h", "t1"], ["t2", "unknown"]], pop, LongTailSettings(head_fraction=0.2, torso_fraction=0.5))
    assert shares == {HEAD: 1 / 3, TORSO: 1 / 3, TAIL: 1 / 3}


def test_click_popularity_ranks_the_most_clicked_product_highest():
    log = [Impression("sofa", ("a", "b", "c"), frozenset({"a"})), Impression("sofa", ("a", "b"), frozenset({"a", "b"}))]
    pop = click_popularity(log)
    assert pop["a"] > pop["b"] > pop["c"]


def test_click_popularity_puts_never_shown_catalog_products_at_the_bottom():
    pop = click_popularity([Impression("sofa", ("a",), frozenset({"a"}))], catalog=["a", "z"])
    assert pop["z"] < pop["a"]


def test_xquad_moves_a_relevant_tail_product_into_an_all_head_top():
    cands = candidates(("h1", 1.0), ("h2", 0.98), ("h3", 0.96), ("t1", 0.94), ("t2", 0.5))
    pop = {"h1": 0.99, "h2": 0.98, "h3": 0.97, "t1": 0.1, "t2": 0.05}
    out = [c.product_id for c in xquad(cands, pop, XQUAD)]
    assert out.index("t1") < 3


def test_xquad_with_lambda_zero_keeps_the_relevance_order():
    cands = candidates(("h1", 1.0), ("t1", 0.9), ("h2", 0.8), ("t2", 0.1))
    pop = {"h1": 0.99, "h2": 0.98, "t1": 0.1, "t2": 0.05}
    out = xquad(cands, pop, XQUAD.model_copy(update={"xquad_lambda": 0.0}))
    assert [c.product_id for c in out] == ["h1", "t1", "h2", "t2"]


def test_xquad_adds_no_tail_when_the_query_has_no_tail_candidates():
    cands = candidates(("h1", 1.0), ("h2", 0.5), ("h3", 0.2))
    pop = {"h1": 0.99, "h2": 0.95, "h3": 0.9}
    out = xquad(cands, pop, XQUAD.model_copy(update={"xquad_lambda": 1.0}))
    assert [c.product_id for c in out] == ["h1", "h2", "h3"]


def test_xquad_reranks_only_its_depth_and_keeps_the_rest_below_in_order():
    cands = candidates(*((f"p{i}", 1.0 - i / 20) for i in range(8)))
    pop = {f"p{i}": (0.99 if i < 4 else 0.01) for i in range(8)}
    out = xquad(cands, pop, XQUAD.model_copy(update={"xquad_depth": 3, "xquad_lambda": 1.0}))
    assert [c.product_id for c in out][3:] == ["p3", "p4", "p5", "p6", "p7"]


def test_xquad_scores_fall_with_position_so_a_sort_by_score_keeps_its_order():
    cands = candidates(("h1", 1.0), ("h2", 0.98), ("t1", 0.9), ("t2", 0.3), ("x", 0.1))
    out = xquad(cands, {"h1": 0.99, "h2": 0.98, "t1": 0.1, "t2": 0.05}, XQUAD)
    scores = [c.score for c in out]
    assert scores == sorted(scores, reverse=True) and len(set(scores)) == len(scores)


def test_long_tail_stage_runs_the_method_the_settings_select():
    cands = candidates(("h1", 1.0), ("h2", 0.99), ("t1", 0.95))
    pop = {"h1": 0.99, "h2": 0.98, "t1": 0.1}
    assert "xquad_gain" in long_tail_stage(cands, pop, XQUAD)[0].features
    assert "boost" in long_tail_stage(cands, pop, LongTailSettings(method="boost"))[0].features


def test_unknown_long_tail_method_is_refused_naming_the_field():
    with pytest.raises(ValueError, match="method"):
        Settings().override(longtail={"method": "mmr"})


def test_pipeline_applies_xquad_when_configured(lexical_settings, dataset):
    from search_rerank.indexing.indexes import open_pipeline

    pipeline = open_pipeline(lexical_settings)
    try:
        text = next(iter(dataset.split("dev")[0].values())).text
        result = pipeline.run(text, settings=lexical_settings.override(longtail={"method": "xquad"}))
        assert "xquad_gain" in result.hits[0].candidate.features
    finally:
        pipeline.close()


def test_evaluate_reports_long_tail_share_per_query_kind(lexical_settings, dataset):
    from search_rerank.evaluation.evaluate import Config, evaluate
    from search_rerank.indexing.indexes import open_pipeline

    pipeline = open_pipeline(lexical_settings)
    try:
        report = evaluate(pipeline, *dataset.split("dev"), configs=[Config("bm25", ("lexical",))], progress=False)
    finally:
        pipeline.close()
    assert all("lt_share@10" in metrics for metrics in report.rows[0].by_kind.values())


def test_boost_stays_the_default_long_tail_stage():
    cands = candidates(("h1", 1.0), ("t1", 0.95))
    out = long_tail_stage(cands, {"h1": 0.99, "t1": 0.01}, LongTailSettings())
    assert "boost" in out[0].features and "xquad_gain" not in out[0].features


def test_boost_targeting_the_tail_tier_lifts_every_tail_product_alike_and_no_torso_product():
    settings = LongTailSettings(strength=0.5, gate=0.0, head_fraction=0.2, torso_fraction=0.5, target="tail")
    pop = {"head": 0.95, "torso": 0.5, "tail_a": 0.35, "tail_b": 0.01}
    out = {
        c.product_id: c.features["boost"]
        for c in long_tail_stage(
            candidates(("head", 1.0), ("torso", 0.9), ("tail_a", 0.8), ("tail_b", 0.7)), pop, settings
        )
    }
    assert out == {"head": 0.0, "torso": 0.0, "tail_a": 0.5, "tail_b": 0.5}


def test_xquad_targeting_the_tail_tier_counts_torso_products_with_the_head():
    pop = {"h1": 0.95, "h2": 0.9, "torso": 0.6, "tail": 0.1}
    ranked = candidates(("h1", 1.0), ("h2", 0.99), ("torso", 0.98), ("tail", 0.5))
    long_tail = [c.product_id for c in xquad(ranked, pop, XQUAD.model_copy(update={"xquad_lambda": 0.9}))]
    tail = [c.product_id for c in xquad(ranked, pop, XQUAD.model_copy(update={"xquad_lambda": 0.9, "target": "tail"}))]
    assert long_tail.index("torso") < long_tail.index("tail")
    assert tail.index("tail") < tail.index("torso")
