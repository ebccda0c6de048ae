"""Training pairs from judged queries, with hard negatives mined from the pipeline's own candidates.

Why from the pipeline: a reranker only ever sees what the first stage hands
it, so the negatives that teach it most are the near misses the first stage
ranks high (accessories, wrong attributes), not random products.

Why unjudged is not a negative by default: real judgment lists are sparse and
pooled, so most relevant products are unjudged; calling the unjudged top of a
lexical run irrelevant teaches a model to contradict the first stage where it
was right (measured on real data: nDCG@10 0.374 -> 0.277). Unjudged
candidates become negatives only when the labels are known to be complete
(the generated benchmark); otherwise negatives are the judged misses plus
random catalogue products, which are irrelevant with high probability.

Only the split handed in is read: callers pass the train split, so dev and
test judgments never leak into training.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from tqdm import tqdm

from ..core.candidate import Candidate
from ..data.dataset import Query
from ..data.qrels import Qrels

T = TypeVar("T")


@dataclass(frozen=True)
class Pair:
    query_id: str
    query: str
    product_id: str
    label: float  # grade / max grade, in [0, 1]


@dataclass(frozen=True)
class MiningConfig:
    positives_per_query: int = 8
    hard_negatives_per_query: int = 8
    random_negatives_per_query: int = 2
    hard_depth: int = 50
    judgments_complete: bool = False
    seed: int = 13


def first_stage_lists(
    pipeline, queries: Mapping[str, Query], depth: int = 100, progress: bool = True
) -> dict[str, list[Candidate]]:
    """Each query's fused list as the reranker will receive it: no rerank, no boost."""
    settings = pipeline.settings.offline().override(
        rerank={"model": None},
        longtail={"enabled": False},
        lexical={"candidates": max(pipeline.settings.lexical.candidates, depth)},
        dense={"candidates": max(pipeline.settings.dense.candidates, depth)},
    )
    lists = {}
    for qid, query in tqdm(queries.items(), desc="first stage", unit="query", disable=not progress):
        ranking = pipeline.rank_from(pipeline.retrieve(query.text, None, settings), settings)
        lists[qid] = ranking.candidates[:depth]
    return lists


def mine_pairs(
    queries: Mapping[str, Query],
    qrels: Qrels,
    candidates: Mapping[str, Sequence[Candidate]],
    catalog_ids: Sequence[str],
    config: MiningConfig = MiningConfig(),
) -> list[Pair]:
    """Per judged query: graded positives (those the first stage found first), hard and random negatives."""
    rng = np.random.default_rng(config.seed)
    max_grade = max((g for judged in qrels.values() for g in judged.values()), default=1) or 1
    pairs: list[Pair] = []
    for qid in sorted(qrels):
        if qid not in queries:
            continue
        judged = qrels[qid]
        text = queries[qid].text
        top = [c.product_id for c in candidates.get(qid, [])[: config.hard_depth]]
        positives = sample_positives(judged, top, config.positives_per_query, rng)
        if not positives:
            continue
        hard = [pid for pid in top if judged.get(pid, None) == 0 or (config.judgments_complete and pid not in judged)]
        hard = hard[: config.hard_negatives_per_query]
        randoms = sample_random_negatives(catalog_ids, judged, set(hard), config.random_negatives_per_query, rng)
        pairs += [Pair(qid, text, pid, judged[pid] / max_grade) for pid in positives]
        pairs += [Pair(qid, text, pid, 0.0) for pid in [*hard, *randoms]]
    return pairs


def sample_positives(judged: Mapping[str, int], top: Sequence[str], k: int, rng: np.random.Generator) -> list[str]:
    """Judged positives the first stage ranks, best ranked first, topped up at random with the ones it missed.

    Both matter: ranked ones teach the order at the top, missed ones (e.g. terse
    long-tail listings) teach what the first stage cannot see.
    """
    relevant = [pid for pid, g in judged.items() if g > 0]
    ranked = [pid for pid in top if judged.get(pid, 0) > 0][: (k + 1) // 2]
    rest = sorted(set(relevant) - set(ranked))
    extra = list(rng.choice(rest, size=min(k - len(ranked), len(rest)), replace=False)) if rest else []
    return ranked + [str(pid) for pid in extra]


def sample_random_negatives(
    catalog_ids: Sequence[str], judged: Mapping[str, int], taken: set[str], k: int, rng: np.random.Generator
) -> list[str]:
    """Up to ``k`` catalog products drawn at random that are not judged relevant and not already taken.

    Easy negatives keep the model calibrated on obvious misses, which hard negatives alone never show it.
    """
    out: list[str] = []
    if not catalog_ids:
        return out
    for i in rng.integers(0, len(catalog_ids), size=4 * k):
        pid = catalog_ids[int(i)]
        if judged.get(pid, 0) == 0 and pid not in taken and pid not in out:
            out.append(pid)
        if len(out) == k:
            break
    return out


def mine_capped(
    queries: Mapping[str, Query],
    qrels: Qrels | None,
    cap: int | None,
    seed: int,
    mine: Callable[[Mapping[str, Query]], Sequence[T]],
    query_of: Callable[[T], str],
) -> list[T]:
    """At most ``cap`` training items ``mine`` makes of ``queries`` (every item without a cap), mining only the
    queries a seeded draw picks.

    The cap's items are drawn a query at a time: uniformly with replacement over the queries with a relevant
    product (all of them when ``qrels`` is None), each draw keeping one of its query's items not kept yet.
    The kept items spread over as many queries as a sample of every query's items did (about 2,800 for 3,000
    items of 19,024 queries, either way), while ``mine`` (the first stage, the cost) runs only for the queries
    drawn: the Home Depot layout's onboarding retrieved all 19,024 train queries' lists, 9.7 minutes on two
    cores, to keep 3,000 pairs. Draws that find their query out of items are drawn again among the others, in
    rounds, until the cap is met or every item is kept."""
    if cap is None:
        return list(mine(queries))
    rng = np.random.default_rng(seed)
    pool = [q for q in sorted(queries) if qrels is None or any(g > 0 for g in qrels.get(q, {}).values())]
    mined: dict[str, list[T]] = {}
    left: dict[str, list[int]] = {}  # per mined query, the positions of its items not kept yet
    wanted = cap
    while wanted > 0:
        open_ = [q for q in pool if q not in left or left[q]]
        if not open_:
            break
        draws: dict[str, int] = {}
        for i in rng.integers(len(open_), size=wanted):
            draws[open_[i]] = draws.get(open_[i], 0) + 1
        fresh = {q: queries[q] for q in sorted(draws) if q not in left}
        mined |= {q: [] for q in fresh}
        for item in mine(fresh) if fresh else ():
            mined[query_of(item)].append(item)
        left |= {q: list(range(len(mined[q]))) for q in fresh}
        for q, count in draws.items():
            for j in sorted(rng.choice(len(left[q]), size=min(count, len(left[q])), replace=False), reverse=True):
                left[q].pop(j)
                wanted -= 1
    kept: list[T] = []
    for q in sorted(mined):
        unkept = set(left[q])
        kept.extend(item for n, item in enumerate(mined[q]) if n not in unkept)
    return kept


def per_query_at_most(qrels: Qrels, items: Callable[[Mapping[str, int]], int]) -> list[int]:
    """Per query with a relevant product (the ones ``mine_capped`` draws), the most items ``items`` says mining
    can make of its judgments: what a trainer's work is counted from before its first stage runs."""
    return [items(judged) for _, judged in sorted(qrels.items()) if any(g > 0 for g in judged.values())]


def capped_counts(at_most: Sequence[int], queries: int, cap: int | None) -> tuple[int, int]:
    """(items kept at most, queries mined about) by ``mine_capped`` over ``queries`` train queries whose relevant
    ones can make ``at_most`` items each. Without a cap every query is mined and every item kept; with one, each
    of the ``cap`` draws picks one of the N queries with a relevant product, so about N(1 - (1 - 1/N)^cap)
    distinct queries are mined. The rounds that redraw a query found out of items are left out: where the cap
    nears all the items there are, or mining finds fewer than ``at_most``, more queries are mined."""
    total = sum(at_most)
    if cap is None:
        return total, queries
    drawn = len(at_most) * (1 - (1 - 1 / len(at_most)) ** cap) if at_most else 0
    return min(cap, total), round(drawn)


def reranker_pairs_at_most(judged: Mapping[str, int], config: MiningConfig) -> int:
    """The most pairs ``mine_pairs`` makes of one query's judgments: its positives, its judged misses (any
    first-stage hit when the labels are complete) and the random negatives; none without a relevant product."""
    relevant = sum(g > 0 for g in judged.values())
    if not relevant:
        return 0
    misses = config.hard_negatives_per_query if config.judgments_complete else sum(g == 0 for g in judged.values())
    return (
        min(config.positives_per_query, relevant)
        + min(config.hard_negatives_per_query, misses)
        + config.random_negatives_per_query
    )


def judged_subset(queries: Mapping[str, Query], qrels: Qrels, n: int, seed: int) -> dict[str, Query]:
    """At most ``n`` judged queries, sampled with ``seed`` so every trainer and benchmark evaluates the same dev set."""
    judged = sorted(q for q in qrels if q in queries)
    if len(judged) > n:
        judged = sorted(np.random.default_rng(seed).choice(judged, size=n, replace=False).tolist())
    return {q: queries[q] for q in judged}
