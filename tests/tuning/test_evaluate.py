"""Evaluation ranks every configuration the way the service would search with that configuration's settings."""

import pytest

from search_rerank.core.retrieval import DENSE, LEXICAL
from search_rerank.evaluation.evaluate import (
    DEPTH,
    MEASURES,
    Config,
    Report,
    Row,
    below_bm25,
    config_settings,
    evaluate,
    long_tail_share,
    relevance_metrics,
)
from search_rerank.indexing.indexes import open_pipeline


def test_an_evaluated_configuration_scores_as_the_service_searches_with_its_settings(hybrid_settings, dataset):
    queries, qrels = dataset.split("dev")
    judged = {qid: grades for qid, grades in qrels.items() if qid in queries}
    config = Config("hybrid-linear+longtail", (LEXICAL, DENSE), "linear", longtail=True)
    pipeline = open_pipeline(hybrid_settings.override(lexical={"candidates": DEPTH}, dense={"candidates": DEPTH}))
    try:
        row = evaluate(pipeline, queries, qrels, configs=[config], progress=False).row(config.name)
        served = config_settings(pipeline.settings.offline(), config)
        run = {
            qid: [
                (h.product.id, h.candidate.score)
                for h in pipeline.run(queries[qid].text, size=DEPTH, settings=served).hits
            ]
            for qid in judged
        }
        popularity = pipeline.store.popularity()
    finally:
        pipeline.close()
    per_query = relevance_metrics(judged, run)
    for measure in map(str, MEASURES):
        mean = sum(scores[measure] for scores in per_query.values()) / len(judged)
        assert row.metrics[measure] == pytest.approx(mean, abs=1e-12)
    ids = {qid: [pid for pid, _ in hits] for qid, hits in run.items()}
    assert row.metrics["lt_share@10"] == long_tail_share(ids, popularity, served.longtail.head_fraction)


def _rows(**ndcg: float) -> tuple[list[Config], list[Row]]:
    legs = {"bm25": (LEXICAL,), "dense": (DENSE,)}
    configs = [Config(name, legs.get(name, (LEXICAL, DENSE))) for name in ndcg]
    return configs, [Row(name, {"nDCG@10": value}) for name, value in ndcg.items()]


def test_below_bm25_flags_fused_configurations_scoring_under_the_bm25_leg():
    configs, rows = _rows(**{"bm25": 0.375, "dense": 0.274, "hybrid-rrf": 0.354, "hybrid-linear": 0.38})
    warnings = below_bm25(configs, rows)
    assert [w.config for w in warnings] == ["hybrid-rrf"]
    assert warnings[0].gap == pytest.approx(0.021)
    assert "search-rerank tune" in warnings[0].message()


def test_below_bm25_ignores_a_weaker_single_leg():
    configs, rows = _rows(bm25=0.5, dense=0.2)
    assert below_bm25(configs, rows) == []


def test_below_bm25_is_empty_without_a_bm25_row():
    configs, rows = _rows(**{"hybrid-rrf": 0.1})
    assert below_bm25(configs, rows) == []


def test_report_json_carries_the_below_bm25_gap_and_hint():
    configs, rows = _rows(**{"bm25": 0.4, "hybrid-rrf": 0.3})
    report = Report("d", "test", 1, 1, rows, below_bm25(configs, rows))
    (warning,) = report.to_json()["below_bm25"]
    assert warning["config"] == "hybrid-rrf"
    assert warning["gap"] == pytest.approx(0.1)
    assert "tune" in warning["hint"]


def test_evaluation_reports_the_judged_share_and_ndcg_on_judged_products_alone():
    qrels = {"q": {"a": 2, "b": 0}}
    scores = relevance_metrics(qrels, {"q": [("new", 3.0), ("a", 2.0), ("b", 1.0)]})["q"]
    assert scores["Judged@10"] == pytest.approx(2 / 3)
    assert scores["nDCG(judged_only=True)@10"] == pytest.approx(1.0)
    assert scores["nDCG@10"] < 1.0


def _judged_rows(config_judged: float, config_condensed: float) -> tuple[list[Config], list[Row]]:
    configs = [Config("bm25", (LEXICAL,)), Config("hybrid-linear", (LEXICAL, DENSE))]
    rows = [
        Row("bm25", {"nDCG@10": 0.42, "Judged@10": 0.29, "nDCG(judged_only=True)@10": 0.85}),
        Row(
            "hybrid-linear",
            {"nDCG@10": 0.41, "Judged@10": config_judged, "nDCG(judged_only=True)@10": config_condensed},
        ),
    ]
    return configs, rows


def test_below_bm25_says_when_the_loss_comes_with_a_less_judged_top_10_that_leads_on_judged_products():
    (warning,) = below_bm25(*_judged_rows(config_judged=0.21, config_condensed=0.86))
    assert warning.unjudged_loss
    assert "judge 21% of its top 10 against 29%" in warning.message()
    assert "judgments pool" in warning.message()


def test_below_bm25_does_not_blame_the_labels_when_the_configuration_also_loses_on_judged_products():
    (warning,) = below_bm25(*_judged_rows(config_judged=0.21, config_condensed=0.80))
    assert not warning.unjudged_loss
    assert "judgments pool" not in warning.message()


def test_below_bm25_does_not_blame_the_labels_when_its_top_10_is_judged_as_much():
    (warning,) = below_bm25(*_judged_rows(config_judged=0.29, config_condensed=0.86))
    assert not warning.unjudged_loss


def _condensed_per_query(bm25: list[float], fused: list[float]) -> dict[str, dict[str, float]]:
    return {
        "bm25": {f"q{i}": v for i, v in enumerate(bm25)},
        "hybrid-linear": {f"q{i}": v for i, v in enumerate(fused)},
    }


def test_below_bm25_blames_the_labels_when_it_is_not_significantly_behind_bm25_on_judged_products():
    # Behind on the judged products alone (0.80 against 0.85 on average), but one query's loss, not a pattern.
    per_query = _condensed_per_query([0.85] * 20, [0.85] * 19 + [-0.15])
    (warning,) = below_bm25(*_judged_rows(config_judged=0.21, config_condensed=0.80), per_query)
    assert warning.condensed_p is not None and warning.condensed_p >= 0.05
    assert warning.unjudged_loss
    assert "is not significantly behind (0.8000 vs 0.8500, paired p" in warning.message()


def test_below_bm25_does_not_blame_the_labels_when_it_trails_on_judged_products_query_after_query():
    per_query = _condensed_per_query([0.85] * 20, [0.80] * 20)
    (warning,) = below_bm25(*_judged_rows(config_judged=0.21, config_condensed=0.80), per_query)
    assert warning.condensed_p is not None and warning.condensed_p < 0.05
    assert not warning.unjudged_loss


def test_evaluation_reports_the_paired_p_on_judged_products_of_a_configuration_below_bm25(hybrid_settings, dataset):
    queries, qrels = dataset.split("dev")
    # The test index's dense leg is a tiny untrained BERT: all but its weight makes a fusion worse than BM25.
    dense_heavy = {"fusion": {"weights": {LEXICAL: 0.01, DENSE: 0.99}}}
    configs = [Config("bm25", (LEXICAL,)), Config("dense-heavy", (LEXICAL, DENSE), "linear", overrides=dense_heavy)]
    pipeline = open_pipeline(hybrid_settings)
    try:
        report = evaluate(pipeline, queries, qrels, configs=configs, progress=False)
    finally:
        pipeline.close()
    (warning,) = report.below_bm25
    assert warning.condensed_p is not None
    assert report.to_json()["below_bm25"][0]["condensed_p"] == warning.condensed_p
