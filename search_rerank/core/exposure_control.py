"""The closed-loop long-tail exposure controller: one pure decision per interval, no I/O.

Each interval the serving side (serving.exposure_loop) or a simulation
(benchmarks/exposure_controller.py) observes what searches showed and what
shoppers clicked, and asks :func:`decide` for the next ``longtail.strength``.
The controller is proportional, towards the middle of the target band of the
tail share of the top 10, with

- a dead zone: inside the band nothing moves, and once it has been in the band
  the share must leave it by more than ``hysteresis`` before anything moves
  again, so that noise at a band edge does not make the strength (and shoppers'
  results) flap from one interval to the next;
- a maximum step, so one odd interval cannot swing the ranking far;
- bounds: at a bound it stops, and the decision says which bound, so that an
  impossible target (more tail than the relevant candidates hold) shows up as
  "at_max_bound" rather than as a strength that climbs for ever;
- a guardrail on tail click-through over head click-through. While it is
  breached the strength is held, even where the band asks for less boost:
  click-through over one interval is noisy, a drop may come from the catalogue
  or the traffic rather than the boost, and a controller that chased two
  objectives would oscillate between them. A breach is a decision of its own
  (counted and logged), for a person to look at; the issue's contract is that
  the controller never moves while the guardrail is breached;
- too little evidence (fewer than ``min_impressions`` products shown) holds too.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .settings import ExposureControlSettings

UP, DOWN, HOLD = "up", "down", "hold"
BELOW_BAND, ABOVE_BAND = "below_band", "above_band"
IN_BAND, DEAD_ZONE = "in_band", "dead_zone"
GUARDRAIL = "guardrail_breached"
AT_MAX, AT_MIN = "at_max_bound", "at_min_bound"
TOO_FEW = "too_few_impressions"
OFF = "off"
REASONS = (BELOW_BAND, ABOVE_BAND, IN_BAND, DEAD_ZONE, GUARDRAIL, AT_MAX, AT_MIN, TOO_FEW, OFF)
EPSILON = 1e-12


@dataclass(frozen=True)
class Observation:
    """What one interval showed: products shown, the mean tail share of first pages' top 10, click-through by tier.

    A click-through is None where its tier was not shown in the interval.
    """

    impressions: int
    tail_share: float | None
    tail_ctr: float | None = None
    head_ctr: float | None = None

    @property
    def ctr_ratio(self) -> float | None:
        """Tail over head click-through; None when either is unknown or no head product was clicked (no baseline)."""
        if self.tail_ctr is None or self.head_ctr is None or self.head_ctr <= 0:
            return None
        return self.tail_ctr / self.head_ctr


@dataclass(frozen=True)
class Decision:
    """One interval's outcome: ``action`` up/down/hold, ``reason`` (one of REASONS), the strength before and after.

    ``settled`` carries the hysteresis to the next interval (the share was in the band, or has not left it by
    more than ``hysteresis`` since); ``at_bound`` is true when the new strength sits on a bound.
    """

    action: str
    reason: str
    strength_before: float
    strength: float
    tail_share: float | None
    ctr_ratio: float | None
    impressions: int
    settled: bool
    at_bound: bool

    def record(self) -> dict[str, Any]:
        """The decision as a JSON-able dict (logs, the shared state file, the admin endpoint)."""
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Decision:
        return cls(**{name: record[name] for name in cls.__dataclass_fields__})


def decide(
    strength: float, observation: Observation, settings: ExposureControlSettings, previous: Decision | None = None
) -> Decision:
    """The next strength for ``observation``, given the strength now and the previous decision (for hysteresis).

    The strength returned is always within ``[min_strength, max_strength]``.
    """
    low, high = settings.min_strength, settings.max_strength
    current = min(max(strength, low), high)
    settled = previous is not None and previous.settled
    share, ratio = observation.tail_share, observation.ctr_ratio

    def hold(reason: str, settled: bool) -> Decision:
        at_bound = current <= low + EPSILON or current >= high - EPSILON
        return Decision(HOLD, reason, strength, current, share, ratio, observation.impressions, settled, at_bound)

    if not settings.enabled:
        return hold(OFF, False)
    if share is None or observation.impressions < settings.min_impressions:
        return hold(TOO_FEW, settled)
    if ratio is not None and ratio < settings.min_ctr_ratio:
        return hold(GUARDRAIL, settled)
    if settings.target_low <= share <= settings.target_high:
        return hold(IN_BAND, True)
    if settled and settings.target_low - settings.hysteresis <= share <= settings.target_high + settings.hysteresis:
        return hold(DEAD_ZONE, True)
    error = (settings.target_low + settings.target_high) / 2 - share
    step = max(-settings.max_step, min(settings.max_step, settings.gain * error))
    if step > 0:
        if current >= high - EPSILON:
            return hold(AT_MAX, False)
        new, action, reason = min(current + step, high), UP, BELOW_BAND
    else:
        if current <= low + EPSILON:
            return hold(AT_MIN, False)
        new, action, reason = max(current + step, low), DOWN, ABOVE_BAND
    at_bound = new <= low + EPSILON or new >= high - EPSILON
    if at_bound:  # rounding (0.1 + 9 x 0.1) must not leave the strength a hair short of its bound
        new = low if new <= low + EPSILON else high
    return Decision(action, reason, strength, new, share, ratio, observation.impressions, False, at_bound)
