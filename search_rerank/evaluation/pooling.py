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

from collections.abc import Mapping, Sequence

from ..data.qrels import Qrels


def unjudged_pool(
    runs: Mapping[str, Mapping[str, Sequence[tuple[str, float]]]], qrels: Qrels, depth: int = 10
) -> dict[str, list[str]]:
    """Per judged query, the products in the top ``depth`` of any run that ``qrels`` does not judge.

    Ordered by the best rank any run gives them, so that an annotator who
    stops early has judged what moves nDCG@10 most; queries with nothing new
    are left out.
    """
    best: dict[str, dict[str, int]] = {}
    for run in runs.values():
        for qid, hits in run.items():
            judged = qrels.get(qid)
            if judged is None:
                continue
            ranks = best.setdefault(qid, {})
            for rank, (pid, _) in enumerate(hits[:depth]):
                if pid not in judged and rank < ranks.get(pid, depth):
                    ranks[pid] = rank
    return {qid: sorted(ranks, key=lambda pid: (ranks[pid], pid)) for qid, ranks in sorted(best.items()) if ranks}
