import numpy as np
import pytest

from search_rerank.evaluation.significance import (
    bootstrap_ci,
    bootstrap_p,
    paired_by_query,
    paired_test,
    randomisation_p,
)


def test_randomisation_test_finds_a_consistent_improvement_significant():
    rng = np.random.default_rng(1)
    a = rng.uniform(0.2, 0.8, 200)
    b = a + 0.05 + rng.normal(0, 0.05, 200)
    result = paired_test(a, b, resamples=2000, seed=3)
    assert result.p_value < 0.01
    assert result.significant()


def test_randomisation_test_finds_pure_noise_not_significant():
    rng = np.random.default_rng(2)
    deltas = rng.normal(0, 0.1, 200)
    deltas -= deltas.mean()  # exactly no effect
    assert randomisation_p(deltas, resamples=2000, seed=3) > 0.5


def test_bootstrap_interval_covers_the_true_effect_and_excludes_zero():
    rng = np.random.default_rng(4)
    deltas = 0.03 + rng.normal(0, 0.05, 400)
    low, high = bootstrap_ci(deltas, resamples=2000, seed=5)
    assert low < 0.03 < high
    assert low > 0


def test_bootstrap_interval_of_no_effect_contains_zero():
    rng = np.random.default_rng(6)
    deltas = rng.normal(0, 0.05, 300)
    deltas -= deltas.mean()
    low, high = bootstrap_ci(deltas, resamples=2000, seed=7)
    assert low < 0 < high


def test_same_seed_gives_the_same_result():
    deltas = np.random.default_rng(8).normal(0.01, 0.05, 100)
    assert paired_test(np.zeros(100), deltas, resamples=1500, seed=9) == paired_test(
        np.zeros(100), deltas, resamples=1500, seed=9
    )


def test_resamples_beyond_one_block_are_all_used():
    deltas = np.random.default_rng(10).normal(0, 0.05, 50)
    p = randomisation_p(deltas, resamples=2500, seed=1)
    assert (p * 2501) == pytest.approx(round(p * 2501))  # a count out of 2500 + 1


def test_identical_systems_have_p_value_one_and_only_ties():
    scores = [0.1, 0.5, 0.9]
    result = paired_test(scores, scores, resamples=500)
    assert result.p_value == 1.0
    assert (result.wins, result.losses, result.ties) == (0, 0, 3)


def test_unpaired_score_lists_are_refused():
    with pytest.raises(ValueError, match="one value per query"):
        paired_test([0.1, 0.2], [0.3])


def test_no_queries_is_refused_with_a_reason():
    with pytest.raises(ValueError, match="no per-query deltas"):
        randomisation_p([])


def test_bootstrap_p_value_is_small_for_a_real_effect_and_large_for_none():
    rng = np.random.default_rng(11)
    effect = 0.05 + rng.normal(0, 0.05, 200)
    noise = rng.normal(0, 0.05, 200)
    noise -= noise.mean()
    assert bootstrap_p(effect, resamples=2000, seed=1) < 0.01
    assert bootstrap_p(noise, resamples=2000, seed=1) > 0.5


def test_scores_by_query_are_paired_by_id_whatever_order_the_runs_were_built_in():
    a = {"q1": 0.1, "q2": 0.5, "q3": 0.9}
    b = {"q3": 0.9, "q1": 0.1, "q2": 0.5}  # the same scores, built in another order
    assert paired_by_query(a, b).ties == 3


def test_scores_by_query_are_paired_over_the_queries_both_runs_score_unless_named():
    a = {"q1": 0.2, "q2": 0.4, "only-a": 1.0}
    b = {"q1": 0.3, "q2": 0.4, "only-b": 0.0}
    assert paired_by_query(a, b).queries == 2
    assert paired_by_query(a, b, ["q1"]).wins == 1
    with pytest.raises(KeyError):
        paired_by_query(a, b, ["only-a"])
