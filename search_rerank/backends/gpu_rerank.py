"""The GPU rerank path: half precision, fixed shape buckets, micro-batching of concurrent requests.

Measured on one H200 (issue 14): the raw cross-encoder in bf16/fp16 had a
*worse* p99 than fp32 (78 ms against 14.5 ms at window 100) because every
query brought a new padded shape and paid a first-time kernel choice. So here
every batch is padded to one of a few fixed shapes (rows rounded up to a
window bucket, tokens to a length bucket), and :meth:`GpuReranker.warm_up`
runs each shape once at worker start: no request meets a new shape.

Concurrent requests on one GPU are scored together by :class:`MicroBatcher`:
the first request waits a short collection window for others, and the lot go
through one forward pass. Its queue is bounded; when full, a request is
refused at once (:class:`BatcherFull`) and the caller serves it without the
reranker rather than queueing into a timeout (degrade, don't fail).

Nothing here needs a GPU: on CPU the same buckets and batcher run in fp32,
which is how the tests exercise them.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np

from ..core.candidate import Candidate
from ..core.pretokenised import PairEncoder, StoredText, tokenise_texts
from ..core.rerank import CrossEncoderReranker, reranked, sigmoid
from ..core.settings import RerankSettings

LENGTH_BUCKETS = (32, 64, 128, 256)
ROW_BUCKETS = (16, 32, 64, 128, 256)


def bucket(n: int, sizes: Sequence[int]) -> int:
    """The smallest size that holds ``n``; past the largest, the next multiple of it (still a fixed set of shapes)."""
    for size in sizes:
        if n <= size:
            return size
    top = sizes[-1]
    return -(-n // top) * top


def pad_to(features: Mapping[str, Any], rows: int, length: int, pad_id: int) -> dict[str, Any]:
    """Pad (or keep) a batch of input_ids / token_type_ids / attention_mask to exactly rows x length.

    Padded rows are all padding with a zero mask; their scores are dropped by the caller.
    """
    import torch

    out = {}
    for name, tensor in features.items():
        fill = pad_id if name == "input_ids" else 0
        padded = torch.full((rows, length), fill, dtype=tensor.dtype)
        padded[: tensor.shape[0], : tensor.shape[1]] = tensor[:, :length]
        out[name] = padded
    if "attention_mask" in out:
        out["attention_mask"][features["attention_mask"].shape[0] :, 0] = 1  # a fully masked row gives NaN softmax
    return out


def on_gpu(device: str) -> bool:
    """Whether a reranker set to ``device`` ("auto", "cpu", "cuda") runs on a GPU here."""
    if device == "cpu":
        return False
    import torch

    return torch.cuda.is_available()


class BatcherFull(Exception):
    """The micro-batcher's queue is full: serve this request without the stage."""


T = TypeVar("T")
R = TypeVar("R")


@dataclass
class _Pending(Generic[T, R]):
    item: T
    future: Future


class MicroBatcher(Generic[T, R]):
    """Collects concurrent requests for ``window_s`` (or until ``max_items``) and scores them in one call.

    ``fn`` gets the collected items and returns one result per item, in order.
    A worker thread owns the model, so calls into it never overlap.
    """

    def __init__(
        self,
        fn: Callable[[list[T]], list[R]],
        window_s: float = 0.002,
        max_queue: int = 64,
        max_items: int = 16,
        name: str = "micro-batcher",
    ):
        self.fn = fn
        self.window_s = window_s
        self.max_items = max_items
        self.queue: queue.Queue[_Pending[T, R]] = queue.Queue(maxsize=max_queue)
        self.batches = 0
        self.refused = 0
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, item: T, timeout_s: float | None = None) -> R:
        """The result for ``item``; BatcherFull at once when the queue is full, TimeoutError past ``timeout_s``."""
        pending: _Pending[T, R] = _Pending(item, Future())
        try:
            self.queue.put_nowait(pending)
        except queue.Full:
            self.refused += 1
            raise BatcherFull(f"{self.queue.maxsize} requests already waiting") from None
        return pending.future.result(timeout=timeout_s)

    def _loop(self) -> None:
        while True:
            batch = [self.queue.get()]
            deadline = time.monotonic() + self.window_s
            while len(batch) < self.max_items:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    batch.append(self.queue.get(timeout=left))
                except queue.Empty:
                    break
            self.batches += 1
            try:
                results = self.fn([p.item for p in batch])
            except Exception as exc:  # every waiter learns of the failure; the loop serves the next batch
                for p in batch:
                    p.future.set_exception(exc)
                continue
            for p, result in zip(batch, results):
                p.future.set_result(result)


class GpuReranker(CrossEncoderReranker):
    """The cross-encoder in fp16/bf16 on CUDA (fp32 elsewhere), scoring bucket-shaped batches via a micro-batcher.

    Every request's pairs are assembled from pre-tokenised texts when the
    version has them (else tokenised), concatenated with the other requests
    collected in the same window, sorted by length and cut into batches whose
    rows and tokens are padded to buckets.
    """

    def __init__(
        self,
        settings: RerankSettings,
        default_blend: float = 0.5,
        pretokenised=None,
        dtype: str = "float16",
        window_s: float = 0.002,
        max_queue: int = 64,
    ):
        super().__init__(settings, default_blend, pretokenised)
        self.dtype = dtype
        self.lengths = tuple(b for b in LENGTH_BUCKETS if b < self.max_length) + (self.max_length,)
        self.rows = tuple(b for b in ROW_BUCKETS if b < settings.batch_size) + (settings.batch_size,)
        self.batcher: MicroBatcher[tuple[str, list[tuple[str, str]]], np.ndarray] = MicroBatcher(
            self.score_requests, window_s=window_s, max_queue=max_queue
        )
        self.warmed: set[tuple[int, int]] = set()

    def load_model(self) -> Any:
        import torch

        model = super().load_model()
        if str(model.device).startswith("cuda"):
            model.to(getattr(torch, self.dtype))
        return model

    def warm_up(self) -> None:
        """Load, then run every (rows, length) bucket once so no request pays a first-time kernel choice."""
        super().warm_up()
        import torch

        if self.warmed:
            return
        tokenizer = self._model.tokenizer
        for rows in self.rows:
            for length in self.lengths:
                ids = torch.full((rows, length), int(tokenizer.pad_token_id), dtype=torch.long)
                features = {"input_ids": ids, "token_type_ids": torch.zeros_like(ids), "attention_mask": ids * 0 + 1}
                self.forward(features)
                self.warmed.add((rows, length))

    def forward(self, features: Mapping[str, Any]) -> np.ndarray:
        import torch

        model = self._model
        with torch.inference_mode():
            moved = {k: v.to(model.device) for k, v in features.items()}
            scores = model({**moved, "modality": "text"})["scores"]
        return scores.float().reshape(-1).cpu().numpy()

    def encoded(self, query: str, items: Sequence[tuple[str, str]]) -> tuple[list[int], list[StoredText]]:
        tokenizer = self._model.tokenizer
        query_ids = tokenise_texts(tokenizer, [query])[0]
        if self.pairs is not None:
            return query_ids, self.pairs.stored(items)
        ids = tokenise_texts(tokenizer, [text for _, text in items])
        return query_ids, [StoredText(np.asarray(i, dtype=np.int64), len(i)) for i in ids]

    def score_requests(self, requests: list[tuple[str, list[tuple[str, str]]]]) -> list[np.ndarray]:
        """Logits for every request's (product id, text) items, scored together in bucket-shaped batches."""
        import torch

        assembler = self.pairs
        if assembler is None:
            tokenizer = self._model.tokenizer
            assembler = PairEncoder(tokenizer, self.max_length, None)  # type: ignore[arg-type]
        rows: list[tuple[int, list[int], StoredText]] = []
        for r, (query, items) in enumerate(requests):
            query_ids, texts = self.encoded(query, items)
            rows += [(r, query_ids, t) for t in texts]
        order = sorted(range(len(rows)), key=lambda i: -(len(rows[i][1]) + rows[i][2].length))
        flat = np.empty(len(rows))
        step = self.rows[-1]
        for start in range(0, len(order), step):
            chosen = order[start : start + step]
            parts = [assembler.features(rows[i][1], [rows[i][2]]) for i in chosen]
            length = bucket(max(p["input_ids"].shape[1] for p in parts), self.lengths)
            parts = [pad_to(p, 1, length, assembler.pad_id) for p in parts]
            batch = {name: torch.cat([p[name] for p in parts]) for name in parts[0]}
            flat[chosen] = self.forward(pad_to(batch, bucket(len(chosen), self.rows), length, assembler.pad_id))[
                : len(chosen)
            ]
        out, at = [], 0
        for _, items in requests:
            out.append(flat[at : at + len(items)])
            at += len(items)
        return out

    def run(
        self,
        query: str,
        candidates: Sequence[Candidate],
        texts: Mapping[str, str],
        settings: RerankSettings | None = None,
    ) -> list[Candidate]:
        """As the CPU reranker, but scored through the micro-batcher; a full queue raises BatcherFull (fail open)."""
        settings = settings if settings is not None else self.settings
        window = list(candidates[: settings.window])
        if not window:
            return []
        self.warm_up()
        logits = self.batcher.submit(
            (query, [(c.product_id, texts.get(c.product_id, "")) for c in window]), settings.timeout_s
        )
        weight = settings.blend if settings.blend is not None else self.default_blend
        return reranked(window, sigmoid(logits), weight, candidates[len(window) :])
