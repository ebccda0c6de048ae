import numpy as np

from search_rerank.core.candidate import Candidate
from search_rerank.core.longtail import boost, is_long_tail, popularity_percentiles
from search_rerank.core.rerank import reranked
from search_rerank.core.settings import LongTailSettings


def test_popularity_percentile_orders_by_log_signals_with_ties_shared():
    pct = popularity_percentiles([0, 0, 10, 1000], [0, 0, 1, 50])
    assert pct[0] == pct[1] < pct[2] < pct[3] == 1.0


def test_head_fraction_defines_the_long_tail():
    assert is_long_tail(0.5, head_fraction=0.2)
    assert not is_long_tail(0.85, head_fraction=0.2)


def test_boost_lifts_relevant_long_tail_product_above_popular_one():
    cands = [Candidate("head", 1.0), Candidate("tail", 0.95), Candidate("other", 0.0)]
    out = boost(cands, {"head": 0.99, "tail": 0.01, "other": 0.5}, LongTailSettings(strength=0.2, gate=0.8))
    assert [c.product_id for c in out][:2] == ["tail", "head"]


def test_boost_never_lifts_product_below_the_relevance_gate():
    cands = [Candidate("head", 1.0), Candidate("mid", 0.5), Candidate("tail", 0.0)]
    out = boost(cands, {"head": 0.99, "mid": 0.99, "tail": 0.0}, LongTailSettings(strength=5.0, gate=0.8))
    assert [c.product_id for c in out][-1] == "tail"
    assert out[-1].features["boost"] == 0.0


def test_boost_disabled_returns_input_order():
    cands = [Candidate("head", 1.0), Candidate("tail", 0.99)]
    out = boost(cands, {"head": 0.99, "tail": 0.0}, LongTailSettings(enabled=False))
    assert [c.product_id for c in out] == ["head", "tail"]


def test_boost_leaves_unknown_popularity_unboosted():
    out = boost([Candidate("x", 1.0), Candidate("y", 0.9)], {}, LongTailSettings(strength=1.0, gate=0.0))
    assert all(c.features["boost"] == 0.0 for c in out)


def test_percentiles_of_empty_catalog_are_empty():
    assert popularity_percentiles([], []).size == 0


def test_boost_on_a_reranked_list_gates_by_the_reranked_scores_not_the_whole_list():
    """A product the reranker put last in its window is far from the best match, however long the list below."""
    fused = [Candidate(f"p{i:03d}", float(100 - i)) for i in range(100)]
    out = reranked(fused[:30], np.linspace(0.9, 0.6, 30), 1.0, fused[30:])
    popularity = {c.product_id: 0.99 for c in fused} | {"p029": 0.0}
    boosted = boost(out, popularity, LongTailSettings(strength=0.1, gate=0.8))
    assert [c.product_id for c in boosted][:30] == [c.product_id for c in out][:30]
    assert boosted[29].features["boost"] == 0.0
