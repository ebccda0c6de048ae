"""What to judge next: the unjudged products in the top of the configurations being compared.

A shop's judgments are pooled from whatever system it ran when it collected
them, usually a lexical one. A new stage that brings up other products (the
dense leg, a reranker) is scored down for every one of them the pool never
saw, relevant or not, so on those labels it can only lose to the system the
pool came from. The cure is the one TREC uses: pool the top of every system
compared and judge what is new, then compare again. Only the top ``depth``
counts because that is what nDCG@10 reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from ..data.qrels import Qrels

Unjudged = dict[str, dict[str, int]]
"""query id -> unjudged product -> its rank (0 = first) in the run it came from."""


def unjudged(ranked: Mapping[str, Sequence[str]], qrels: Qrels, depth: int = 10) -> Unjudged:
    """Per judged query of ``ranked`` (query id -> product ids, best first), the products in its top ``depth``
    that ``qrels`` does not judge, with their ranks; a query with none maps to an empty dict."""
    out: Unjudged = {}
    for qid, pids in ranked.items():
        judged = qrels.get(qid)
        if judged is not None:
            out[qid] = {pid: rank for rank, pid in enumerate(pids[:depth]) if pid not in judged}
    return out


def merged(pools: Iterable[Mapping[str, Mapping[str, int]]]) -> dict[str, list[str]]:
    """The union of several runs' :func:`unjudged` products, per query, ordered by the best rank any run gives
    them, so that an annotator who stops early has judged what moves nDCG@10 most; queries with nothing new
    are left out."""
    best: dict[str, dict[str, int]] = {}
    for pool in pools:
        for qid, ranks in pool.items():
            kept = best.setdefault(qid, {})
            for pid, rank in ranks.items():
                kept[pid] = min(rank, kept.get(pid, rank))
    return {qid: sorted(ranks, key=lambda pid: (ranks[pid], pid)) for qid, ranks in sorted(best.items()) if ranks}


def unjudged_pool(
    runs: Mapping[str, Mapping[str, Sequence[tuple[str, float]]]], qrels: Qrels, depth: int = 10
) -> dict[str, list[str]]:
    """Per judged query, the products in the top ``depth`` of any run that ``qrels`` does not judge."""
    return merged(unjudged(ids(run), qrels, depth) for run in runs.values())


def ids(run: Mapping[str, Sequence[tuple[str, float]]]) -> dict[str, list[str]]:
    """A run's product ids per query, in its order."""
    return {qid: [pid for pid, _ in hits] for qid, hits in run.items()}
