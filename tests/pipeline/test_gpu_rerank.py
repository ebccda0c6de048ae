"""The GPU rerank path's shape buckets and micro-batcher, exercised on the CPU (fp32) as CI has no GPU."""

import threading
import time

import numpy as np
import pytest

from search_rerank.backends.gpu_rerank import BatcherFull, GpuReranker, MicroBatcher, bucket, pad_to
from search_rerank.core.candidate import Candidate
from search_rerank.core.rerank import CrossEncoderReranker
from search_rerank.core.settings import RerankSettings

TEXTS = {f"p{i:02d}": f"product {i} {'grey sofa with oak legs' * (i % 4)} lamp" for i in range(40)}


def fused(n: int) -> list[Candidate]:
    return [Candidate(product_id=f"p{i:02d}", score=float(n - i), legs=frozenset({"lexical"})) for i in range(n)]


@pytest.mark.parametrize("n, expected", [(1, 32), (32, 32), (33, 64), (256, 256), (257, 512)])
def test_a_size_rounds_up_to_the_next_bucket(n, expected):
    assert bucket(n, (32, 64, 128, 256)) == expected


def test_padding_gives_the_bucket_shape_and_keeps_the_rows():
    import torch

    ids = torch.tensor([[101, 7, 102], [101, 102, 0]])
    features = {"input_ids": ids, "attention_mask": (ids > 0).long(), "token_type_ids": torch.zeros_like(ids)}
    out = pad_to(features, 4, 8, pad_id=0)
    assert {tuple(t.shape) for t in out.values()} == {(4, 8)}
    assert out["input_ids"][:2, :3].tolist() == ids.tolist() and out["attention_mask"][:2, 3:].sum() == 0


def test_concurrent_requests_are_scored_in_fewer_calls():
    calls = []

    def fn(items):
        calls.append(len(items))
        return [x * 2 for x in items]

    batcher = MicroBatcher(fn, window_s=0.2, max_items=8)
    results = {}
    threads = [threading.Thread(target=lambda i=i: results.update({i: batcher.submit(i, 10)})) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {i: i * 2 for i in range(6)}
    assert len(calls) < 6 and sum(calls) == 6


def test_a_full_queue_refuses_at_once_instead_of_waiting():
    gate, entered = threading.Event(), threading.Event()

    def held(items):
        entered.set()
        gate.wait(120)
        return items

    batcher = MicroBatcher(held, window_s=0.0, max_queue=1, max_items=1)
    threading.Thread(target=batcher.submit, args=(1, 120), daemon=True).start()
    assert entered.wait(120)  # the first item is held in fn
    threading.Thread(target=batcher.submit, args=(2, 120), daemon=True).start()
    deadline = time.monotonic() + 120
    while not batcher.queue.full() and time.monotonic() < deadline:  # the second one waits in the queue
        time.sleep(0.01)
    try:
        # Refused, not queued: a queued submit would wait out its 120 s timeout and raise TimeoutError instead.
        with pytest.raises(BatcherFull):
            batcher.submit(3, 120)
        assert batcher.refused == 1
    finally:
        gate.set()


def test_a_failing_batch_reaches_every_waiter_and_the_batcher_keeps_serving():
    def fn(items):
        if -1 in items:
            raise RuntimeError("model failed")
        return items

    batcher = MicroBatcher(fn, window_s=0.0)
    with pytest.raises(RuntimeError, match="model failed"):
        batcher.submit(-1, 10)
    assert batcher.submit(5, 10) == 5


@pytest.fixture(scope="module")
def settings(tiny_cross_encoder_dir):
    return RerankSettings(model=str(tiny_cross_encoder_dir), device="cpu", window=20, max_length=64, batch_size=16)


def test_warm_up_runs_every_bucket_once(settings):
    reranker = GpuReranker(settings)
    reranker.warm_up()
    assert reranker.warmed == {(r, n) for r in (16,) for n in (32, 64)}


def test_bucketed_scores_equal_the_plain_rerankers(settings):
    plain = CrossEncoderReranker(settings.model_copy(update={"blend": 1.0}))
    fast = GpuReranker(settings.model_copy(update={"blend": 1.0}))
    want = {c.product_id: c.features["rerank"] for c in plain.run("grey sofa", fused(40), TEXTS)[:20]}
    got = {c.product_id: c.features["rerank"] for c in fast.run("grey sofa", fused(40), TEXTS)[:20]}
    assert got == pytest.approx(want, abs=1e-4)


def test_concurrent_queries_get_their_own_scores(settings):
    fast = GpuReranker(settings, window_s=0.1)
    fast.warm_up()
    queries = ["grey sofa", "oak lamp", "product 3"]
    alone = {q: fast.score_requests([(q, list(TEXTS.items())[:20])])[0] for q in queries}
    together = {}
    threads = [
        threading.Thread(
            target=lambda q=q: together.update({q: fast.batcher.submit((q, list(TEXTS.items())[:20]), 30)})
        )
        for q in queries
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for q in queries:
        assert np.allclose(together[q], alone[q], atol=1e-4)
