"""Counting a training's work before it runs (``training.mining``, ``training.encoder``) and timing it
(``training.cost``): the counts bound what the trainers' own mining makes, and an estimate is work over rates."""

from __future__ import annotations

import numpy as np
import pytest

from search_rerank.core.candidate import Candidate
from search_rerank.data.dataset import Query
from search_rerank.training.cost import Rates, Work
from search_rerank.training.encoder import mine_triplets, triplets_at_most
from search_rerank.training.mining import (
    MiningConfig,
    capped_counts,
    mine_capped,
    mine_pairs,
    per_query_at_most,
    reranker_pairs_at_most,
)

CATALOG = [f"p{i}" for i in range(300)]


def judged_queries(seed: int, n: int = 60) -> tuple[dict[str, Query], dict[str, dict[str, int]]]:
    """Queries with a few graded products each (0 to 3), some with none relevant."""
    rng = np.random.default_rng(seed)
    queries, qrels = {}, {}
    for i in range(n):
        qid = f"q{i}"
        queries[qid] = Query(qid, f"query {i}")
        chosen = rng.choice(len(CATALOG), size=int(rng.integers(1, 15)), replace=False)
        qrels[qid] = {CATALOG[j]: int(rng.integers(0, 4)) for j in chosen}
    return queries, qrels


def shuffled_lists(queries, qrels, seed: int) -> dict[str, list[Candidate]]:
    """A first stage that ranks each query's judged products among unjudged ones, in a random order."""
    rng = np.random.default_rng(seed)
    lists = {}
    for qid in queries:
        ids = list(qrels[qid]) + [CATALOG[j] for j in rng.choice(len(CATALOG), size=40, replace=False)]
        order = rng.permutation(len(dict.fromkeys(ids)))
        unique = list(dict.fromkeys(ids))
        lists[qid] = [Candidate(unique[k], float(-n)) for n, k in enumerate(order)]
    return lists


def counts_per_query(items, query_of) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[query_of(item)] = counts.get(query_of(item), 0) + 1
    return counts


@pytest.mark.parametrize("complete", [False, True])
def test_no_query_yields_more_reranker_pairs_than_its_judgments_allow(complete):
    config = MiningConfig(judgments_complete=complete)
    for seed in range(5):
        queries, qrels = judged_queries(seed)
        made = counts_per_query(
            mine_pairs(queries, qrels, shuffled_lists(queries, qrels, seed), CATALOG, config), lambda p: p.query_id
        )
        for qid, count in made.items():
            assert count <= reranker_pairs_at_most(qrels[qid], config)


def test_a_query_whose_list_ranks_its_judged_misses_first_yields_exactly_its_most_pairs():
    queries, qrels = judged_queries(1)
    config = MiningConfig()
    ranked = {
        qid: [Candidate(pid, -float(grade)) for pid, grade in sorted(qrels[qid].items(), key=lambda kv: kv[1])]
        for qid in queries
    }
    made = counts_per_query(mine_pairs(queries, qrels, ranked, CATALOG, config), lambda p: p.query_id)
    assert made == {qid: n for qid in queries if (n := reranker_pairs_at_most(qrels[qid], config))}


def test_every_query_yields_the_triplets_its_best_grades_allow():
    queries, qrels = judged_queries(2)
    config = MiningConfig(positives_per_query=4)
    made = counts_per_query(
        mine_triplets(queries, qrels, shuffled_lists(queries, qrels, 2), CATALOG, config), lambda t: t.query_id
    )
    assert made == {qid: n for qid in queries if (n := triplets_at_most(qrels[qid], config))}


def test_without_a_cap_every_train_query_is_mined_and_every_item_kept():
    assert capped_counts([3, 5, 2], 7, None) == (10, 7)


def capped_draw(queries: int, per_query: int, cap: int, seed: int) -> tuple[int, int, int, int]:
    """``mine_capped`` over ``queries`` judged queries of ``per_query`` items each, and ``capped_counts`` of the
    same: (items kept, items counted, queries mined, queries counted)."""
    asked = {f"q{i}": Query(f"q{i}", "x") for i in range(queries)}
    qrels = {qid: {"p1": 1} for qid in asked}
    mined: list[str] = []

    def mine(chosen):
        mined.extend(chosen)
        return [(qid, n) for qid in chosen for n in range(per_query)]

    kept = mine_capped(asked, qrels, cap, seed, mine, lambda item: item[0])
    items, counted = capped_counts(per_query_at_most(qrels, lambda judged: per_query), queries, cap)
    return len(kept), items, len(mined), counted


def test_with_a_cap_the_queries_counted_as_mined_are_about_those_the_draw_mines():
    kept, items, mined, counted = capped_draw(2000, 10, 1000, 7)
    assert items == kept == 1000
    assert counted == pytest.approx(mined, rel=0.05)


def test_a_cap_near_all_the_items_mines_more_queries_than_counted_never_fewer():
    """Draws that find their query out of items are drawn again: the count is of the first round alone."""
    kept, items, mined, counted = capped_draw(400, 2, 700, 3)
    assert items == kept == 700
    assert mined >= counted


def test_queries_without_a_relevant_product_have_no_count():
    assert per_query_at_most({"a": {"p": 0}, "b": {"p": 2}, "c": {}}, lambda judged: 7) == [7]


def test_an_estimate_is_each_kind_of_work_over_its_rate():
    rates = Rates(
        retrieve=10, rank=100, score=50, train_pairs=5, train_triplets=20, encode=200, boost=1000, device="cpu"
    )
    work = Work(retrieve=100, score=500) + Work(train_pairs=50, encode=400, boost=3000)
    assert work.seconds(rates) == pytest.approx(10 + 10 + 10 + 2 + 3)


def test_a_rate_left_unmeasured_adds_no_time_for_work_of_other_kinds_and_reads_as_none():
    inf = float("inf")
    rates = Rates(
        retrieve=10, rank=100, score=50, train_pairs=5, train_triplets=inf, encode=inf, boost=inf, device="cpu"
    )
    assert Work(retrieve=10).seconds(rates) == pytest.approx(1)
    assert rates.to_json()["encode"] is None and rates.to_json()["retrieve"] == 10


def test_the_work_is_described_by_what_each_count_counts():
    assert Work(retrieve=1200, train_pairs=3000.4).describe() == "1,200 queries retrieved, 3,000 reranker pairs trained"
    assert Work().describe() == "nothing"
