"""Personalised evaluation and tuning on a tiny generated catalogue with simulated shoppers (lexical leg only)."""

from __future__ import annotations

import json
import tomllib

import pytest
from click.testing import CliRunner

from search_rerank.cli import main as cli
from search_rerank.core.settings import Settings, load_settings
from search_rerank.data.generate import GeneratorConfig, generate
from search_rerank.data.loaders import iter_catalog, load_beir
from search_rerank.data.shoppers import ShopperConfig
from search_rerank.evaluation.personalised import (
    PersonalisedEvaluation,
    read_searches,
    shared_profiles,
    shopper_profiles,
    without_personalisation,
)
from search_rerank.evaluation.tune import (
    GUARD_COST,
    GUARD_LOSS,
    GUARD_NDCG,
    NDCG,
    Goal,
    Guard,
    RankingCache,
    SearchSpace,
    tune,
    write_settings,
)
from search_rerank.indexing.indexes import build_index, open_pipeline

# Weights strong enough that a returning shopper's list moves: the point is to see what moves, not to rank well.
STRONG = {"facet_weights": {"brand": 1.0, "color": 1.0, "category": 1.0}, "cap": 2.0, "max_rise": 50}


@pytest.fixture(scope="module")
def shopped(tmp_path_factory):
    data = tmp_path_factory.mktemp("shopped")
    generate(data, GeneratorConfig(products=600, queries=60, seed=11, workers=1), False, ShopperConfig(shoppers=60))
    settings = Settings(index_dir=data / "idx", dense={"enabled": False})
    build_index(iter_catalog(data / "corpus.jsonl"), settings, progress=False)
    return data, settings


@pytest.fixture(scope="module")
def evaluation(shopped):
    data, settings = shopped
    pipeline = open_pipeline(settings)
    evaluation = PersonalisedEvaluation(pipeline, data / "shoppers", "test", shared=load_beir(data).split("test"))
    yield evaluation, settings
    evaluation.close()
    pipeline.close()


def test_anonymous_searches_get_no_profile_and_returning_ones_do(evaluation):
    ev, _ = evaluation
    for qid, query in ev.queries.items():
        if query.meta["segment"] == "anonymous":
            assert ev.search_profiles[qid] is None
        elif query.meta["segment"] == "returning":
            assert ev.search_profiles[qid] is not None and ev.search_profiles[qid].events > 2


def test_anonymous_and_cold_searches_rank_exactly_as_without_the_stage(evaluation):
    ev, settings = evaluation
    report = ev.evaluate(settings.override(personalisation=STRONG))
    for segment in ("anonymous", "cold"):
        if segment in report.segments:
            assert report.segments[segment].delta == 0.0
            assert report.segments[segment].significance["ties"] == report.segments[segment].searches


def test_returning_shoppers_rankings_change_with_their_profiles(evaluation):
    ev, settings = evaluation
    strong = settings.override(personalisation=STRONG)
    base = ev.cache.rank(settings.override(personalisation={"enabled": False}))
    personal = ev.cache.rank(strong)
    returning = [q for q, query in ev.queries.items() if query.meta["segment"] == "returning"]
    moved = [q for q in returning if [c.product_id for c in base[q][:10]] != [c.product_id for c in personal[q][:10]]]
    assert moved
    assert ev.evaluate(strong).segments["returning"].significance["ties"] < len(returning)


def test_shared_judgments_are_scored_for_every_shared_query(evaluation, shopped):
    ev, settings = evaluation
    data, _ = shopped
    report = ev.evaluate(settings)
    assert report.shared is not None
    assert report.shared.searches == len(load_beir(data).split("test")[1])


def test_interleaving_credits_every_simulated_search_that_showed_results(evaluation):
    ev, settings = evaluation
    result = ev.evaluate(settings.override(personalisation=STRONG), interleave_searches=200).interleaving
    assert result is not None
    empty = {q for q, ranked in ev.cache.rank(settings).items() if not ranked}
    assert (result["impressions"] == 200) == (not empty)
    assert 0 < result["impressions"] <= 200
    assert result["a_wins"] + result["b_wins"] + result["ties"] == result["impressions"]


def test_tuning_searches_only_the_personalisation_weights_and_writes_them_loadable(shopped, tmp_path):
    data, settings = shopped
    pipeline = open_pipeline(settings)
    try:
        queries, qrels = read_searches(data / "shoppers", "dev")
        result = tune(
            pipeline,
            queries,
            qrels,
            trials=3,
            goal=Goal(min_lt_share=0.0),
            space=SearchSpace(ranking=False, personalisation=True),
            profiles=shopper_profiles(pipeline, data / "shoppers", queries),
        )
    finally:
        pipeline.close()
    assert set(result.best["sections"]) == {"personalisation"}
    tuned = result.best["sections"]["personalisation"]
    loaded = load_settings(write_settings(tmp_path / "best.toml", result.best["sections"]))
    assert loaded.personalisation.facet_weights == tuned["facet_weights"]
    assert (loaded.personalisation.cap, loaded.personalisation.max_rise) == (tuned["cap"], tuned["max_rise"])


def tuned_under_guard(shopped, standard_errors: float):
    """Six personalisation trials on the dev shoppers, guarded on the dev shared judgments (each ranked for a
    returning shopper) at a cost of 0.001: the result, and the guarded queries' nDCG@10 without the stage."""
    data, settings = shopped
    pipeline = open_pipeline(settings)
    try:
        queries, qrels = read_searches(data / "shoppers", "dev")
        profiles = shopper_profiles(pipeline, data / "shoppers", queries)
        shared_queries, shared_qrels = load_beir(data).split("dev")
        guard_profiles = shared_profiles(shared_qrels, queries, profiles)
        floor = without_personalisation(settings)
        cache = RankingCache(pipeline, shared_queries, shared_qrels, depth=100, profiles=guard_profiles)
        floor_ndcg = cache.score(floor).metrics[NDCG]
        cache.close()
        guard = Guard(
            shared_queries, shared_qrels, guard_profiles, max_cost=0.001, floor=floor, standard_errors=standard_errors
        )
        result = tune(
            pipeline,
            queries,
            qrels,
            trials=6,
            goal=Goal(min_lt_share=0.0),
            space=SearchSpace(ranking=False, personalisation=True),
            profiles=profiles,
            guard=guard,
        )
    finally:
        pipeline.close()
    return result, floor_ndcg


def test_a_trial_is_feasible_only_when_the_guarded_queries_lose_at_most_the_cost(shopped):
    result, floor_ndcg = tuned_under_guard(shopped, standard_errors=0.0)
    for record in result.trials:
        assert record.feasible == (record.metrics[GUARD_NDCG] >= floor_ndcg - 0.001 - 1e-12), record.number
    assert result.best["metrics"][GUARD_NDCG] >= floor_ndcg - 0.001 - 1e-12


def test_a_trial_is_feasible_only_when_its_guard_cost_with_standard_errors_is_within_the_bound(shopped):
    result, _ = tuned_under_guard(shopped, standard_errors=1.0)
    for record in result.trials:
        assert record.feasible == (record.metrics[GUARD_COST] <= 0.001), record.number
        assert record.metrics[GUARD_COST] >= record.metrics[GUARD_LOSS] - 1e-12, record.number


def test_guard_cost_is_the_mean_per_query_loss_without_standard_errors():
    guard = Guard({}, {}, standard_errors=0.0)
    assert guard.cost({"a": 0.5, "b": 0.8}, {"a": 0.4, "b": 0.8}) == pytest.approx(0.05)


def test_guard_cost_adds_the_standard_error_of_the_mean_loss():
    floor, trial = {"a": 0.5, "b": 0.8, "c": 0.6}, {"a": 0.4, "b": 0.8, "c": 0.7}
    losses = [0.1, 0.0, -0.1]  # mean 0, sample standard deviation 0.1
    assert Guard({}, {}, standard_errors=2.0).cost(floor, trial) == pytest.approx(sum(losses) / 3 + 2.0 * 0.1 / 3**0.5)


def test_cached_rankings_equal_rank_from_when_only_the_personalisation_settings_change(evaluation):
    ev, settings = evaluation
    for trial in (settings, settings.override(personalisation=STRONG), settings.override(personalisation={"cap": 0.1})):
        got = ev.cache.rank(trial)
        for qid, retrieved in ev.cache.retrieved.items():
            want = ev.cache.pipeline.rank_from(retrieved, trial.offline(), ev.cache.profiles.get(qid)).candidates
            assert [(c.product_id, c.score) for c in got[qid]] == [(c.product_id, c.score) for c in want], qid


def test_evaluate_cli_personalised_writes_segments_and_shared_judgments(shopped, tmp_path):
    data, settings = shopped
    out = tmp_path / "personal.json"
    result = CliRunner().invoke(
        cli,
        [
            "--index-dir",
            str(settings.index_dir),
            "evaluate",
            "--dataset",
            str(data),
            "--personalised",
            str(data / "shoppers"),
            "--interleave",
            "50",
            "--json",
            str(out),
        ],
        env={"SEARCH_RERANK_DENSE__ENABLED": "false"},
    )
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert set(report["segments"]) <= {"returning", "cold", "anonymous"} and "returning" in report["segments"]
    assert report["shared"]["searches"] > 0


def test_tune_cli_personalised_writes_only_the_personalisation_section(shopped, tmp_path):
    data, settings = shopped
    result = CliRunner().invoke(
        cli,
        [
            "--index-dir",
            str(settings.index_dir),
            "tune",
            "--dataset",
            str(data),
            "--personalised",
            str(data / "shoppers"),
            "--trials",
            "3",
            "--out",
            str(tmp_path / "run"),
        ],
        env={"SEARCH_RERANK_DENSE__ENABLED": "false"},
    )
    assert result.exit_code == 0, result.output
    written = tomllib.loads((tmp_path / "run" / "best.toml").read_text())
    assert set(written) == {"personalisation"}
    assert set(written["personalisation"]) == {
        "facet_weights",
        "vector_weight",
        "cap",
        "max_rise",
        "depth",
        "relevance_power",
    }
