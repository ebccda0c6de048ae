"""`tune` chooses the lexical share of the queries naming a product code on those queries alone, and moves it
only on a significant lead (docs/TUNING.md, "Queries that name a product by its code")."""

from __future__ import annotations

import pytest

from search_rerank.core.errors import ConfigError
from search_rerank.core.identifiers import names_a_code
from search_rerank.evaluation.tune import (
    CODE_SHARES,
    NDCG,
    RankingCache,
    SearchSpace,
    choose_share,
    share_weights,
    tune,
)
from search_rerank.indexing.indexes import open_pipeline

LEAD = [0.1] * 28 + [-0.1] * 12
"""Per-query gains of a share over the current one: ahead on 28 of 40 queries, paired p 0.019."""


def shares_with(best: float, gains: list[float]) -> dict[float, list[float]]:
    """Every share scoring 0 on each query but ``best``, which scores ``gains``."""
    return {share: (gains if share == best else [0.0] * len(gains)) for share in CODE_SHARES}


def test_a_share_far_ahead_on_many_queries_is_adopted():
    choice = choose_share(0.5, [0.0] * 200, shares_with(0.9, [0.2] * 150 + [-0.1] * 50), alpha=0.05)
    assert choice.adopted and choice.share == 0.9


def test_a_share_ahead_on_a_few_queries_is_not_adopted():
    choice = choose_share(0.5, [0.0] * 3, shares_with(0.9, [0.3] * 3), alpha=0.05)
    assert choice.best == 0.9 and not choice.adopted and choice.share == 0.5


def test_the_bar_a_lead_must_clear_is_shared_among_the_shares_tried():
    alone = choose_share(0.5, [0.0] * 40, {0.9: LEAD}, alpha=0.05)
    among_eleven = choose_share(0.5, [0.0] * 40, shares_with(0.9, LEAD), alpha=0.05)
    assert alone.p_value == among_eleven.p_value and among_eleven.p_value < 0.05
    assert alone.adopted and not among_eleven.adopted


def test_when_no_share_scores_higher_the_current_one_stays():
    choice = choose_share(0.5, [0.4] * 50, shares_with(0.9, [0.3] * 50), alpha=0.05)
    assert not choice.adopted and choice.p_value is None and choice.share == 0.5


def test_a_split_without_code_queries_keeps_the_current_share():
    choice = choose_share(1.0, [], {}, alpha=0.05)
    assert choice.queries == 0 and not choice.adopted and choice.share == 1.0


def test_a_code_alpha_outside_zero_to_one_is_refused_naming_it():
    with pytest.raises(ConfigError, match="code_alpha"):
        SearchSpace(code_alpha=1.5)


def test_a_lexical_only_tuning_chooses_no_code_share(lexical_settings, dataset):
    queries, qrels = dataset.split("dev")
    result = tune(open_pipeline(lexical_settings), queries, qrels, trials=2)
    assert result.code_weights == {}


def test_each_kind_of_code_query_is_scored_at_every_share_on_its_own_dev_queries(hybrid_settings, dataset):
    queries, qrels = dataset.split("dev")
    result = tune(open_pipeline(hybrid_settings), queries, qrels, trials=2)
    cache = RankingCache(open_pipeline(hybrid_settings), queries, qrels, depth=100)
    cache.close()
    anchored = [q for q, r in cache.retrieved.items() if names_a_code(r.query) and r.anchor is not None]
    assert anchored, "the fixture's dev split should hold code queries whose product the lexical leg found"
    chosen = result.code_weights["anchored_weights"]
    assert chosen["queries"] == len(anchored)
    assert sorted(chosen["ndcg"]) == [f"{share:.1f}" for share in CODE_SHARES]


@pytest.fixture(scope="module")
def lexical_order_judged(hybrid_settings, dataset):
    """Settings fusing anchored code queries by the dense leg alone, and judgments of those queries that reward
    the lexical leg's order (its top 10 relevant, nothing else): the lexical share should move to it."""
    settings = hybrid_settings.override(fusion={"anchored_weights": share_weights(0.0)})
    queries = dataset.queries
    every = {qid: judged for split in dataset.qrels.values() for qid, judged in split.items()}
    cache = RankingCache(open_pipeline(settings), queries, every, depth=100)
    lexical = cache.rank(settings.override(fusion={"anchored_weights": share_weights(1.0)}))
    cache.close()
    qrels = {
        qid: {c.product_id: 1 for c in hits[:10]}
        for qid, hits in lexical.items()
        if names_a_code(cache.retrieved[qid].query) and cache.retrieved[qid].anchor is not None
    }
    return settings, {qid: queries[qid] for qid in qrels}, qrels


def test_a_significantly_better_code_share_is_written_into_the_chosen_settings(lexical_order_judged, tmp_path):
    settings, queries, qrels = lexical_order_judged
    # A bar of 0.2 / 11: ten queries all ahead reach p 0.002, and a bar at that edge would test the seed.
    result = tune(open_pipeline(settings), queries, qrels, trials=2, space=SearchSpace(code_alpha=0.2))
    chosen = result.code_weights["anchored_weights"]
    assert chosen["adopted"], chosen
    written = result.best["sections"]["fusion"]["anchored_weights"]
    assert written == share_weights(chosen["best"]) and chosen["best"] > chosen["current"]


def test_the_chosen_settings_metrics_are_those_of_the_written_code_share(lexical_order_judged):
    settings, queries, qrels = lexical_order_judged
    result = tune(open_pipeline(settings), queries, qrels, trials=2, space=SearchSpace(code_alpha=0.2))
    cache = RankingCache(open_pipeline(settings), queries, qrels, depth=100)
    try:
        rescored = cache.score(settings.override(**result.best["sections"]))
    finally:
        cache.close()
    assert result.best["metrics"][NDCG] == pytest.approx(rescored.metrics[NDCG])
