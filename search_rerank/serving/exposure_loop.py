"""Runs the exposure controller inside the service and carries its strength to every gunicorn worker.

Design: every worker runs an :class:`ExposureLoop`; at each interval each one
tries a non-blocking ``flock`` on ``<state file>.lock``, and the one that holds
it (the leader, for as long as it lives) decides. It reads the exposure
counters summed over all workers, from the same prometheus multiprocess files
``/metrics`` sums (metrics.exposure_totals), so it sees the whole server's
traffic whichever worker it is, with no HTTP scrape, no extra process to deploy
and no URL to configure. If the leader dies the kernel drops its lock and
another worker takes over at its next interval; the baseline counters and the
last decision are in the state file, so the new leader carries on where the old
one stopped (dead workers' counters stay in the multiprocess files).

The leader writes the new strength, its decision and the counters it saw into
the state file (atomically); every worker watches that file with the reload
broadcast's watcher (reload_broadcast.ReloadBroadcast, once a second) and
serves the new strength from its next request, so a decision reaches every
worker within about a second. A worker that starts (or restarts) reads the file
first, so it never serves a stale strength.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..core.exposure_control import Decision, Observation, decide
from ..core.longtail import HEAD, TAIL, TIERS
from ..core.settings import Settings
from ..indexing.versions import write_atomically
from . import metrics
from .reload_broadcast import ReloadBroadcast

log = logging.getLogger(__name__)
WATCH_INTERVAL_S = 1.0


def observation_between(before: dict[str, float], after: dict[str, float]) -> Observation | None:
    """What the interval between two exposure totals showed; None when a counter went down (the server restarted
    under a persistent state file), where the interval means nothing."""
    delta = {key: after.get(key, 0.0) - before.get(key, 0.0) for key in after}
    if any(value < 0 for value in delta.values()):
        return None
    shown = {name: delta.get(f"impressions.{name}", 0.0) for name in TIERS}
    count = delta.get("tail_share_count", 0.0)

    def ctr(name: str) -> float | None:
        return delta.get(f"clicks.{name}", 0.0) / shown[name] if shown[name] else None

    return Observation(
        impressions=int(sum(shown.values())),
        tail_share=delta.get("tail_share_sum", 0.0) / count if count else None,
        tail_ctr=ctr(TAIL),
        head_ctr=ctr(HEAD),
    )


class ExposureLoop:
    """One worker's part in the loop: serve the shared strength, and decide while holding the lock."""

    def __init__(
        self,
        settings: Settings,
        state_path: Path,
        apply: Callable[[float], None],
        totals: Callable[[], dict[str, float]],
    ):
        self.control = settings.exposure_control
        self.start_strength = min(max(settings.longtail.strength, self.control.min_strength), self.control.max_strength)
        self.path = Path(state_path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.apply = apply
        self.totals = totals
        self.strength: float | None = None
        self._lock_file: Any = None
        self._adopt_lock = threading.Lock()
        self._watch = ReloadBroadcast(self.path, self.adopt, interval_s=WATCH_INTERVAL_S)
        self.adopt()

    def start(self) -> None:
        self._watch.start()
        threading.Thread(target=self._run, name="exposure-control", daemon=True).start()

    def _run(self) -> None:
        while True:
            time.sleep(self.control.interval_s)
            try:
                self.tick()
            except Exception:  # the strength served stays as it is; the next interval tries again
                log.exception("exposure control: the interval failed; the strength is unchanged")

    def read_state(self) -> dict[str, Any]:
        try:
            state = json.loads(self.path.read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            return {}
        return state if isinstance(state, dict) else {}

    def adopt(self) -> None:
        """Serve the shared strength (the starting one until a leader has decided).

        A value that is not a strength within the bounds (a hand-edited file) is logged and ignored: the worker
        serves on what it served.
        """
        shared = self.read_state().get("strength", self.start_strength)
        if (
            isinstance(shared, bool)
            or not isinstance(shared, int | float)
            or not self.control.min_strength <= shared <= self.control.max_strength
        ):
            log.error(
                "exposure control: %s holds strength %r, not a number within the bounds; ignored", self.path, shared
            )
            return
        strength = float(shared)
        with self._adopt_lock:
            if strength != self.strength:
                self.apply(strength)
                self.strength = strength
                metrics.LONGTAIL_STRENGTH.set(strength)

    def leads(self) -> bool:
        """Whether this worker holds the lock (taking it if it is free)."""
        if self._lock_file is not None:
            return True
        handle = open(f"{self.path}.lock", "a")  # noqa: SIM115 (held open for the worker's life: it is the lock)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._lock_file = handle
        log.info("exposure control: this worker (pid %d) now decides", os.getpid())
        return True

    def tick(self) -> Decision | None:
        """One interval, if this worker leads: observe, decide, share. None when it does not lead or has no
        baseline yet (its first interval, or the counters restarted)."""
        if not self.leads():
            return None
        state = self.read_state()
        now = self.totals()
        strength = float(state.get("strength", self.start_strength))
        previous = Decision.from_record(state["decision"]) if state.get("decision") else None
        observation = None if "totals" not in state else observation_between(state["totals"], now)
        decision = None if observation is None else decide(strength, observation, self.control, previous)
        shared = {
            "strength": strength if decision is None else decision.strength,
            "decision": state.get("decision") if decision is None else decision.record(),
            "decided_at": state.get("decided_at") if decision is None else time.time(),
            "leader_pid": os.getpid(),
            "totals": now,
        }
        write_atomically(self.path, json.dumps(shared))
        if decision is not None:
            metrics.CONTROL_DECISIONS.labels(decision.action, decision.reason).inc()
            log.info(
                "exposure control: %s (%s), strength %.4f -> %.4f",
                decision.action,
                decision.reason,
                decision.strength_before,
                decision.strength,
                extra={"fields": {"exposure_control": decision.record()}},
            )
        self.adopt()
        return decision

    def status(self) -> dict[str, Any]:
        """What the admin endpoint answers: this worker's strength, the shared state, the settings that steer it."""
        shared = {key: value for key, value in self.read_state().items() if key != "totals"}
        return {
            "enabled": True,
            "strength": self.strength,
            "pid": os.getpid(),
            "leader": self._lock_file is not None,
            "shared": shared,
            "settings": self.control.model_dump(mode="json"),
        }
