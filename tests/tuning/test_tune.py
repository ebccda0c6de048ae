import logging
import tomllib

import optuna
import pytest

from search_rerank.core.errors import ConfigError
from search_rerank.core.settings import Settings, load_settings
from search_rerank.evaluation.tune import (
    LT_SHARE,
    NDCG,
    TAIL_SHARE,
    Goal,
    RankingCache,
    RerankScores,
    SearchSpace,
    sections,
    suggest,
    tune,
    write_settings,
)
from search_rerank.indexing.indexes import open_pipeline
from search_rerank.training.ranker import RankerTraining


@pytest.fixture
def lexical_pipeline(lexical_settings):
    pipeline = open_pipeline(lexical_settings)
    yield pipeline
    pipeline.close()


@pytest.fixture
def hybrid_pipeline(hybrid_settings):
    pipeline = open_pipeline(hybrid_settings)
    yield pipeline
    pipeline.close()


def fixed_trial(**params):
    return optuna.trial.FixedTrial(params)


def test_each_dev_query_is_retrieved_once_at_the_largest_candidate_count(lexical_pipeline, dataset, monkeypatch):
    lexical_pipeline.settings = lexical_pipeline.settings.override(lexical={"candidates": 40})
    calls = []
    original = lexical_pipeline.retrieve
    monkeypatch.setattr(
        lexical_pipeline,
        "retrieve",
        lambda text, filters, settings: calls.append(settings.lexical.candidates) or original(text, filters, settings),
    )
    queries, qrels = dataset.split("dev")
    tune(lexical_pipeline, queries, qrels, trials=5, space=SearchSpace(max_candidates=80))
    assert calls == [80] * len(qrels)


def test_a_tuning_stopped_by_ctrl_c_in_a_trial_logs_no_traceback(lexical_pipeline, dataset, caplog):
    """optuna logged the stopped trial with its traceback before the interrupt reached the command, which then
    ends in one line (click's "Aborted!"). optuna's logger keeps its records to its own handler: one is added."""

    def interrupt(record):
        raise KeyboardInterrupt

    optuna_log = logging.getLogger("optuna")
    optuna_log.addHandler(caplog.handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            tune(lexical_pipeline, *dataset.split("dev"), trials=3, on_trial=interrupt)
    finally:
        optuna_log.removeHandler(caplog.handler)
    assert [record.getMessage() for record in caplog.records if record.exc_info] == []


def test_a_trial_ranks_only_its_own_candidates_per_leg_from_the_cache(hybrid_pipeline, dataset):
    cache = RankingCache(hybrid_pipeline, *dataset.split("dev"), depth=60)
    try:
        ranked = cache.rank(hybrid_pipeline.settings.override(lexical={"candidates": 10}, dense={"candidates": 10}))
        for qid, hits in ranked.items():
            allowed = {c.product_id for leg in cache.retrieved[qid].stages.values() for c in leg[:10]}
            assert {c.product_id for c in hits} <= allowed
    finally:
        cache.close()


def test_a_trial_ranks_each_query_as_the_service_searches_with_the_trial_settings(hybrid_pipeline, dataset):
    queries, qrels = dataset.split("dev")
    trial = hybrid_pipeline.settings.override(
        lexical={"candidates": 20},
        dense={"candidates": 30},
        fusion={"method": "linear"},
        longtail={"enabled": True, "strength": 0.5},
    )
    cache = RankingCache(hybrid_pipeline, queries, qrels, depth=60)
    try:
        ranked = cache.rank(trial)
    finally:
        cache.close()
    for qid, hits in ranked.items():
        served = hybrid_pipeline.run(queries[qid].text, size=100, settings=trial.offline()).ranking.candidates
        assert [(c.product_id, c.score) for c in hits] == [(c.product_id, c.score) for c in served]


def test_fusion_parameters_are_searched_only_with_two_legs():
    lexical_only = suggest(
        fixed_trial(candidates=20, longtail_method="off"), SearchSpace(), hybrid=False, reranker=False
    )
    assert "fusion_method" not in lexical_only
    hybrid = suggest(
        fixed_trial(candidates=20, fusion_method="rrf", lexical_weight=0.3, rank_constant=20.0, longtail_method="off"),
        SearchSpace(),
        hybrid=True,
        reranker=False,
    )
    assert hybrid["rank_constant"] == 20.0


def test_rerank_window_is_searched_only_with_a_reranker():
    params = dict(candidates=20, rerank_window=30, longtail_method="off")
    assert "rerank_window" in suggest(fixed_trial(**params), SearchSpace(), hybrid=False, reranker=True)
    assert "rerank_window" not in suggest(fixed_trial(**params), SearchSpace(), hybrid=False, reranker=False)


def test_trial_parameters_become_valid_settings_sections():
    tuned = sections(
        {
            "candidates": 40,
            "fusion_method": "linear",
            "lexical_weight": 0.25,
            "normalization": "zscore",
            "longtail_method": "xquad",
            "xquad_lambda": 0.4,
        }
    )
    settings = Settings().override(**tuned)
    assert settings.fusion.weights == {"lexical": 0.25, "dense": 0.75}
    assert (settings.longtail.method, settings.longtail.xquad_lambda) == ("xquad", 0.4)
    assert settings.lexical.candidates == settings.dense.candidates == 40


def test_longtail_off_disables_the_stage():
    assert Settings().override(**sections({"candidates": 10, "longtail_method": "off"})).longtail.enabled is False


def test_the_same_seed_gives_the_same_trials(hybrid_pipeline, dataset):
    runs = [tune(hybrid_pipeline, *dataset.split("dev"), trials=6, seed=5) for _ in range(2)]
    assert [t.params for t in runs[0].trials] == [t.params for t in runs[1].trials]


def test_pareto_front_holds_only_undominated_trials(hybrid_pipeline, dataset):
    result = tune(hybrid_pipeline, *dataset.split("dev"), trials=12, seed=2)
    front = [t for t in result.trials if t.number in result.pareto]
    for t in front:
        assert not any(
            o.metrics[NDCG] > t.metrics[NDCG] and o.metrics[LT_SHARE] > t.metrics[LT_SHARE] for o in result.trials
        )
    assert result.best["number"] == max(front, key=lambda t: t.metrics[NDCG]).number


def test_min_lt_share_constraint_is_met_by_the_chosen_trial(hybrid_pipeline, dataset):
    queries, qrels = dataset.split("dev")
    floor = tune(hybrid_pipeline, queries, qrels, trials=1).baseline["metrics"][LT_SHARE]
    result = tune(hybrid_pipeline, queries, qrels, trials=10, goal=Goal(min_lt_share=floor))
    assert result.mode == "max-ndcg"
    assert result.best["metrics"][LT_SHARE] >= floor


def test_max_ndcg_cost_keeps_ndcg_within_the_cost_of_the_baseline(hybrid_settings, dataset):
    # A fixed equal-weight RRF baseline: the constraint is under test here, not the shipped fusion defaults.
    rrf = {"method": "rrf", "weights": {"lexical": 1.0, "dense": 1.0}}
    pipeline = open_pipeline(hybrid_settings.override(fusion=rrf))
    try:
        result = tune(pipeline, *dataset.split("dev"), trials=10, goal=Goal(max_ndcg_cost=0.01))
    finally:
        pipeline.close()
    assert result.mode == "max-lt-share"
    assert result.best["metrics"][NDCG] >= result.baseline["metrics"][NDCG] - 0.01


def test_an_unreachable_constraint_is_reported_with_the_closest_trial(lexical_pipeline, dataset):
    with pytest.raises(ConfigError, match=r"no trial met lt_share@10 >= 1.0.*highest lt_share@10"):
        tune(lexical_pipeline, *dataset.split("dev"), trials=3, goal=Goal(min_lt_share=1.0))


def test_the_result_compares_the_best_with_the_baseline_per_query(lexical_pipeline, dataset):
    queries, qrels = dataset.split("dev")
    result = tune(lexical_pipeline, queries, qrels, trials=4)
    assert {row["qid"] for row in result.per_query} == set(qrels)
    assert result.significance["queries"] == len(qrels)
    assert set(result.best["by_kind"]) == {q.meta.get("kind", "all") for q in queries.values()}


def reranking_pipeline(settings, model_dir, scored, monkeypatch, **rerank):
    """A pipeline with the tiny cross-encoder whose every scored (query, text) pair is appended to ``scored``."""
    pipeline = open_pipeline(
        settings.override(
            rerank={"model": str(model_dir), "require_card": False, "device": "cpu", "window": 30, **rerank}
        )
    )
    original = pipeline.reranker.score
    monkeypatch.setattr(
        pipeline.reranker,
        "score",
        lambda query, texts, batch_size=None: (
            scored.extend((query, t) for t in texts) or original(query, texts, batch_size)
        ),
    )
    return pipeline


def test_reranker_scores_each_query_product_pair_once_across_trials(
    lexical_settings, dataset, tiny_cross_encoder_dir, monkeypatch
):
    scored = []
    pipeline = reranking_pipeline(lexical_settings, tiny_cross_encoder_dir, scored, monkeypatch, window=20)
    try:
        queries, qrels = dataset.split("dev")
        result = tune(
            pipeline,
            dict(list(queries.items())[:5]),
            qrels,
            trials=4,
            space=SearchSpace(max_candidates=30, max_window=30),
        )
    finally:
        pipeline.close()
    assert all("rerank_window" in t.params for t in result.trials)
    assert len(scored) <= 5 * 30


def test_a_tuning_given_an_earlier_steps_rerank_scores_scores_no_pair_again(
    lexical_settings, dataset, tiny_cross_encoder_dir, monkeypatch
):
    queries, qrels = dataset.split("dev")
    queries = dict(list(queries.items())[:5])
    store, scored = RerankScores(), []
    pipeline = reranking_pipeline(lexical_settings, tiny_cross_encoder_dir, scored, monkeypatch)
    try:
        earlier = RankingCache(pipeline, queries, qrels, depth=30, rerank_scores=store)
        earlier.rank(pipeline.settings.override(lexical={"candidates": 30}))  # every window a trial can reach
        earlier.close()
        assert scored
        scored.clear()
        tune(
            pipeline, queries, qrels, trials=4, space=SearchSpace(max_candidates=30, max_window=30), rerank_scores=store
        )
    finally:
        pipeline.close()
    assert scored == []


def test_shared_rerank_scores_are_not_read_for_a_reranker_at_another_token_length(
    lexical_settings, dataset, tiny_cross_encoder_dir, monkeypatch
):
    queries, qrels = dataset.split("dev")
    queries = dict(list(queries.items())[:3])
    store, scored = RerankScores(), []
    for max_length in (32, 24):
        pipeline = reranking_pipeline(
            lexical_settings, tiny_cross_encoder_dir, scored, monkeypatch, max_length=max_length
        )
        try:
            cache = RankingCache(pipeline, queries, qrels, depth=30, rerank_scores=store)
            cache.rank(pipeline.settings)
            cache.close()
        finally:
            pipeline.close()
    assert len(scored) == 2 * len(set(scored)) > 0


@pytest.fixture(scope="module")
def ranked_settings(lexical_settings, dataset, trained_ranker, tmp_path_factory):
    """The lexical settings with a learned ranker trained on the train split, promoted or not."""
    out = tmp_path_factory.mktemp("tune-ranker") / "ranker"
    quick = RankerTraining(max_rounds=20, early_stopping_rounds=5, min_data_in_leaf=5)
    trained_ranker(lexical_settings, dataset.split("train"), dataset.split("dev"), out, quick)
    return lexical_settings.override(ltr={"model": str(out)})


def test_the_rankers_field_scores_are_worked_out_once_per_query_and_product_across_trials(
    ranked_settings, dataset, monkeypatch
):
    pipeline = open_pipeline(ranked_settings)
    asked = []
    leg = pipeline.legs["lexical"]
    original = leg.field_scores
    monkeypatch.setattr(
        leg, "field_scores", lambda query, ids: asked.extend((query, i) for i in ids) or original(query, ids)
    )
    try:
        queries, qrels = dataset.split("dev")
        tune(pipeline, dict(list(queries.items())[:5]), qrels, trials=4, space=SearchSpace(max_candidates=40))
    finally:
        pipeline.close()
    assert asked and len(asked) == len(set(asked))


def test_a_trial_with_a_learned_ranker_ranks_each_query_as_the_service_searches(ranked_settings, dataset):
    pipeline = open_pipeline(ranked_settings)
    queries, qrels = dataset.split("dev")
    cache = RankingCache(pipeline, queries, qrels, depth=60)
    try:
        for candidates in (20, 40):  # the second trial reads field scores the first one worked out
            trial = ranked_settings.override(lexical={"candidates": candidates})
            ranked = cache.rank(trial)
            for qid, hits in ranked.items():
                served = pipeline.run(queries[qid].text, size=100, settings=trial.offline()).ranking
                assert "ltr" in served.stages
                assert [(c.product_id, c.score) for c in hits] == [(c.product_id, c.score) for c in served.candidates]
    finally:
        cache.close()
        pipeline.close()


def test_written_settings_load_back_with_the_tuned_values(tmp_path):
    tuned = sections({"candidates": 30, "longtail_method": "boost", "longtail_strength": 0.3, "longtail_gate": 0.6})
    path = write_settings(tmp_path / "best.toml", tuned, comment="tuned")
    loaded = load_settings(path)
    assert (loaded.lexical.candidates, loaded.longtail.strength, loaded.longtail.gate) == (30, 0.3, 0.6)


def test_written_settings_keep_the_base_file_values(tmp_path):
    base = tmp_path / "base.toml"
    base.write_text('index_dir = "/srv/idx"\n[longtail]\nhead_fraction = 0.1\n', encoding="utf-8")
    path = write_settings(tmp_path / "best.toml", {"longtail": {"strength": 0.2}}, base)
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    assert data["index_dir"] == "/srv/idx" and data["longtail"] == {"head_fraction": 0.1, "strength": 0.2}


def test_settings_are_written_only_as_toml(tmp_path):
    with pytest.raises(ConfigError, match="TOML"):
        write_settings(tmp_path / "best.yaml", {})


def test_click_popularity_changes_the_exposure_metric_but_not_the_ranking(lexical_pipeline, dataset):
    queries, qrels = dataset.split("dev")
    catalog = RankingCache(lexical_pipeline, queries, qrels, depth=50)
    inverted = {pid: 1.0 - pct for pid, pct in catalog.popularity.items()}
    traffic = RankingCache(lexical_pipeline, queries, qrels, depth=50, popularity=inverted)
    try:
        by_catalog, by_traffic = catalog.score(lexical_pipeline.settings), traffic.score(lexical_pipeline.settings)
    finally:
        catalog.close()
        traffic.close()
    assert by_catalog.runs == by_traffic.runs
    assert by_catalog.metrics[LT_SHARE] != by_traffic.metrics[LT_SHARE]


def test_the_tail_tier_can_be_the_exposure_objective(hybrid_pipeline, dataset):
    result = tune(hybrid_pipeline, *dataset.split("dev"), trials=8, seed=2, goal=Goal(exposure=TAIL_SHARE))
    assert result.exposure == TAIL_SHARE
    front = [t for t in result.trials if t.number in result.pareto]
    for t in front:
        assert not any(
            o.metrics[NDCG] > t.metrics[NDCG] and o.metrics[TAIL_SHARE] > t.metrics[TAIL_SHARE] for o in result.trials
        )
    assert TAIL_SHARE in result.best["by_kind"][next(iter(result.best["by_kind"]))]


def test_max_ndcg_cost_maximises_the_chosen_exposure_metric(hybrid_pipeline, dataset):
    result = tune(
        hybrid_pipeline, *dataset.split("dev"), trials=8, seed=3, goal=Goal(max_ndcg_cost=0.05, exposure=TAIL_SHARE)
    )
    feasible = [t for t in result.trials if t.feasible]
    assert result.best["metrics"][TAIL_SHARE] == max(t.metrics[TAIL_SHARE] for t in feasible)


def test_an_unknown_exposure_metric_is_refused_naming_the_valid_ones():
    with pytest.raises(ConfigError, match="tail@10"):
        Goal(exposure="tail@20")


def test_the_long_tail_target_is_searched_only_when_both_are_allowed():
    both = SearchSpace(longtail_targets=("long_tail", "tail"))
    params = suggest(
        fixed_trial(
            candidates=50, longtail_method="boost", longtail_strength=0.1, longtail_gate=0.5, longtail_target="tail"
        ),
        both,
        hybrid=False,
        reranker=False,
    )
    assert sections(params)["longtail"]["target"] == "tail"
    assert Settings().override(**sections(params)).longtail.target == "tail"
    one = suggest(
        fixed_trial(candidates=50, longtail_method="boost", longtail_strength=0.1, longtail_gate=0.5),
        SearchSpace(),
        hybrid=False,
        reranker=False,
    )
    assert "longtail_target" not in one


def test_an_unknown_long_tail_target_is_refused_naming_the_valid_ones():
    with pytest.raises(ConfigError, match="long_tail"):
        SearchSpace(longtail_targets=("niche",))


def test_the_search_never_tries_fewer_candidates_than_a_later_stage_needs():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    tried = [suggest(study.ask(), SearchSpace(), hybrid=True, reranker=False)["candidates"] for _ in range(30)]
    assert min(tried) >= 50


def test_a_max_below_the_candidate_floor_lowers_the_floor():
    assert SearchSpace(max_candidates=30).min_candidates == 30


def test_a_ranking_that_reranks_for_long_shows_its_progress_per_query(
    lexical_settings, dataset, tiny_cross_encoder_dir, monkeypatch, capsys
):
    """At the Home Depot download's size an onboarding step measured with a CPU reranker ranks 6,400 dev queries
    at about 6 a second: without a display the command said nothing for some 17 minutes."""
    monkeypatch.setattr("search_rerank.evaluation.tune.RANK_PROGRESS_DELAY_S", 0.0)
    queries, qrels = dataset.split("dev")
    pipeline = reranking_pipeline(lexical_settings, tiny_cross_encoder_dir, [], monkeypatch)
    try:
        cache = RankingCache(pipeline, dict(list(queries.items())[:5]), qrels, depth=30, progress=True)
        capsys.readouterr()
        cache.rank(pipeline.settings)
        cache.close()
    finally:
        pipeline.close()
    assert "rank:" in capsys.readouterr().err


def test_a_ranking_quicker_than_the_delay_shows_no_progress(lexical_pipeline, dataset, capsys, monkeypatch):
    # An hour's delay: five lexical rankings on a loaded machine must not race the shipped five seconds.
    monkeypatch.setattr("search_rerank.evaluation.tune.RANK_PROGRESS_DELAY_S", 3600.0)
    queries, qrels = dataset.split("dev")
    cache = RankingCache(lexical_pipeline, dict(list(queries.items())[:5]), qrels, depth=30, progress=True)
    capsys.readouterr()
    cache.rank(lexical_pipeline.settings)
    assert "rank:" not in capsys.readouterr().err
