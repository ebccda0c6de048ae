"""GET /ready's answer: a recent check, never a worker thread held on a dead dependency.

A readiness check counts every index, and with a cluster backend that is a
request to the cluster. Run on the request's own thread, each probe of a
frozen cluster held a worker thread for minutes, and a few abandoned probes
were enough to starve ``/search`` and ``/health``. So here one check at a
time runs, on a thread of its own; a probe waits for it at most
``service.ready_timeout_s`` and is answered "not ready" (``timeout``) past
that, and while a check is already late, at once. A check's answer is reused
for ``service.ready_cache_s``, as long as the same pipeline is served (a
reload is checked afresh).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

from ..core.pipeline import SearchPipeline
from .live_pipeline import LivePipeline

TIMEOUT = "timeout"
Answer = tuple[dict[str, Any], int]


@dataclass(frozen=True)
class _Checked:
    pipeline: SearchPipeline
    at: float
    answer: Answer


class Readiness:
    """Single-flight, cached readiness checks of the pipeline ``live`` serves.

    ``check`` gives the body and status for a pipeline and must not raise;
    ``clock`` (monotonic seconds) is injectable for tests.
    """

    def __init__(
        self,
        live: LivePipeline,
        check: Callable[[SearchPipeline], Answer],
        timeout_s: float,
        max_age_s: float,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.live = live
        self.check = check
        self.timeout_s = timeout_s
        self.max_age_s = max_age_s
        self._clock = clock
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ready")
        self._last: _Checked | None = None
        self._running: tuple[Future[Answer], float] | None = None

    def answer(self) -> Answer:
        with self._lock:
            now = self._clock()
            last = self._last
            if last is not None and last.pipeline is self.live.current and now - last.at < self.max_age_s:
                return last.answer
            if self._running is None:
                self._running = self._pool.submit(self._run), now
            future, started = self._running
        try:
            return future.result(timeout=max(self.timeout_s - (now - started), 0.0))
        except FutureTimeout:
            return {"status": "not ready", "reason": TIMEOUT}, 503

    def _run(self) -> Answer:
        lease = self.live.acquire()
        answer: Answer | None = None
        try:
            answer = self.check(lease.pipeline)
            return answer
        finally:
            self.live.release(lease)
            with self._lock:
                self._running = None
                if answer is not None:
                    self._last = _Checked(lease.pipeline, self._clock(), answer)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
