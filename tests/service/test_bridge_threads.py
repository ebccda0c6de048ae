"""The worker bridge's threads (asgi_bridge): the liveness and readiness probes never wait behind scrapes of
/metrics, which anyone may send, nor the scrapes behind searches."""

from __future__ import annotations

import asyncio
import threading

from search_rerank.serving.asgi_bridge import BufferedWsgiBridge


def get(bridge: BufferedWsgiBridge, path: str) -> int:
    """The status of ``GET path`` through the bridge, or a TimeoutError after a minute without an answer."""
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": path, "headers": []}
    asyncio.run(asyncio.wait_for(bridge(scope, receive, send), timeout=60))
    return sent[0]["status"]


def test_health_answers_while_every_thread_metrics_runs_on_is_held(app):
    """A flood of pipelined /metrics requests held /health past a liveness timeout when they shared its threads."""
    bridge = BufferedWsgiBridge(app, threads=1, max_body_bytes=64 * 1024, queue_timeout_s=5)
    release = threading.Event()
    held = [bridge.metrics_pool.submit(release.wait) for _ in range(3)]  # scrapes that do not end
    try:
        assert get(bridge, "/health") == 200
        assert get(bridge, "/ready") == 200
    finally:
        release.set()
    assert all(future.result(timeout=60) for future in held)
    assert get(bridge, "/metrics") == 200
