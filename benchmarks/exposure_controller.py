"""The exposure controller in simulation: simulated shoppers search, click, and the controller steers the strength.

What it shows (issue 17, items 4-5):

- each query of the generated catalogue is ranked once up to the stage before
  the long-tail stage (``rank_from`` with the stage off: fusion, no reranker);
- a stream of searches follows, queries drawn by the generator's frequency
  (power law); each search applies the long-tail stage at the controller's
  current strength to its query's list and shows the top 10; shoppers click by
  a position-based model on the true grades (``clicks.simulate_clicks``, the
  same examination curve as benchmarks/reco_exposure.py);
- every ``--every`` searches the controller (``core.exposure_control.decide``,
  the function the service runs) sees that interval's tail share of the top 10
  and tail/head click-through, and sets the strength for the next interval;
- ``controller_searches_to_band``: searches until the interval tail share enters
  the band and stays in it to the end of the run; ``controller_ctr_ratio``: tail
  over head click-through over the last quarter of the run (the guardrail);
- a second run with an impossible target (more tail than the candidates hold):
  the controller climbs to its maximum strength and stops there, saying
  ``at_max_bound``;
- the tail share each strength gives (the frequency-weighted mean over queries),
  which says which bands are reachable at all.

    python benchmarks/exposure_controller.py --products 2000 --queries 200

Small on purpose (the shared machine is loaded): the encoder runs once per query, the stream itself is numpy.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from generated import cached_index, dataset_parser, prepared  # noqa: E402
from report import ROOT, save_figure, table, write_section  # noqa: E402

from search_rerank.core.candidate import Candidate  # noqa: E402
from search_rerank.core.exposure_control import Decision, Observation, decide  # noqa: E402
from search_rerank.core.longtail import HEAD, TAIL, long_tail_stage, tier  # noqa: E402
from search_rerank.core.settings import ExposureControlSettings, LongTailSettings  # noqa: E402
from search_rerank.data.clicks import simulate_clicks  # noqa: E402
from search_rerank.data.loaders import load_beir  # noqa: E402
from search_rerank.indexing.indexes import open_pipeline  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "reco_exposure.json"
# Examination probability by rank (position bias), as in benchmarks/reco_exposure.py.
THETA = [1.0, 0.85, 0.7, 0.6, 0.5, 0.43, 0.37, 0.32, 0.28, 0.25]
TOP = 10


class Shop:
    """The queries' pre-long-tail lists and popularity, shoppers' grades, and the top 10 at a given strength."""

    def __init__(
        self,
        lists: Mapping[str, Sequence[Candidate]],
        popularity: Mapping[str, Mapping[str, float]],
        grades: Mapping[str, Mapping[str, int]],
        frequency: Mapping[str, int],
        longtail: LongTailSettings,
    ):
        self.lists, self.popularity, self.grades, self.longtail = lists, popularity, grades, longtail
        self.frequency = frequency
        self.qids = sorted(lists)
        weights = np.array([frequency[q] for q in self.qids], dtype=np.float64)
        self.by_frequency = weights / weights.sum()
        self.uniform = np.full(len(self.qids), 1.0 / len(self.qids))
        self._shown: dict[tuple[str, float], tuple[list[str], list[str | None]]] = {}

    def shown(self, qid: str, strength: float) -> tuple[list[str], list[str | None]]:
        """The top 10 and each product's tier (None: unknown popularity) at ``strength``."""
        key = (qid, strength)
        if key not in self._shown:
            settings = self.longtail.model_copy(update={"strength": strength})
            pop = self.popularity[qid]
            ids = [c.product_id for c in long_tail_stage(self.lists[qid], pop, settings)[:TOP]]
            self._shown[key] = ids, [tier(pop[i], self.longtail) if i in pop else None for i in ids]
        return self._shown[key]

    def tail_share(self, qid: str, strength: float) -> float | None:
        known = [t for t in self.shown(qid, strength)[1] if t is not None]
        return known.count(TAIL) / len(known) if known else None

    def expected_tail_share(self, strength: float, mix: np.ndarray) -> float:
        """The mean tail share of the top 10 at ``strength`` over the query mix ``mix`` (each query's probability):
        what the interval samples scatter around."""
        shares = [(self.tail_share(q, strength), p) for q, p in zip(self.qids, mix)]
        known = [(s, p) for s, p in shares if s is not None]
        return float(sum(s * p for s, p in known) / sum(p for _, p in known))


def run(
    shop: Shop,
    control: ExposureControlSettings,
    start: float,
    searches: int,
    every: int,
    seed: int,
    shift_at: int | None = None,
) -> list[dict[str, Any]]:
    """The stream: one record per interval of ``every`` searches, with the controller's decision at its end.

    From search ``shift_at`` on, the traffic changes under the controller: every query becomes as frequent as any
    (the rare, more specific queries gain), which raises the tail share at any strength.
    """
    rng = np.random.default_rng(seed)
    strength, previous = start, None
    trajectory: list[dict[str, Any]] = []
    for first in range(0, searches, every):
        mix = shop.by_frequency if shift_at is None or first < shift_at else shop.uniform
        shares: list[float] = []
        shown = {HEAD: 0, TAIL: 0}
        clicked = {HEAD: 0, TAIL: 0}
        impressions = 0
        for qid in rng.choice(shop.qids, size=min(every, searches - first), p=mix):
            ids, tiers = shop.shown(str(qid), strength)
            share = shop.tail_share(str(qid), strength)
            if share is not None:
                shares.append(share)
            clicks = simulate_clicks(shop.grades, [(str(qid), ids)], THETA[: len(ids)], rng)[0].clicked
            for pid, name in zip(ids, tiers):
                if name is None:
                    continue
                impressions += 1
                if name in shown:
                    shown[name] += 1
                    clicked[name] += pid in clicks
        observation = Observation(
            impressions=impressions,
            tail_share=float(np.mean(shares)) if shares else None,
            tail_ctr=clicked[TAIL] / shown[TAIL] if shown[TAIL] else None,
            head_ctr=clicked[HEAD] / shown[HEAD] if shown[HEAD] else None,
        )
        decision: Decision = decide(strength, observation, control, previous)
        trajectory.append(
            {
                "searches": first + every,
                "tail_share": observation.tail_share,
                "expected_tail_share": shop.expected_tail_share(strength, mix),
                "tail_ctr": observation.tail_ctr,
                "head_ctr": observation.head_ctr,
                "ctr_ratio": observation.ctr_ratio,
                "strength_used": strength,
                "action": decision.action,
                "reason": decision.reason,
                "strength_next": decision.strength,
            }
        )
        strength, previous = decision.strength, decision
    return trajectory


def searches_to_band(
    trajectory: Sequence[dict[str, Any]], low: float, high: float, key: str = "expected_tail_share"
) -> int | None:
    """Searches until the tail share (``key``: the expected one at the strength used, or the interval's sample) is
    in the band and stays there to the end; None if it never does."""
    entered = None
    for point in trajectory:
        inside = point[key] is not None and low <= point[key] <= high
        if inside and entered is None:
            entered = point["searches"]
        elif not inside:
            entered = None
    return entered


def pooled_ctr_ratio(trajectory: Sequence[dict[str, Any]], every: int) -> float | None:
    """Tail over head click-through over the last quarter of the run, pooled (less noisy than one interval)."""
    tail = [p for p in trajectory[-max(1, len(trajectory) // 4) :] if p["tail_ctr"] is not None]
    head = [p for p in tail if p["head_ctr"]]
    if not head:
        return None
    return float(np.mean([p["tail_ctr"] for p in head]) / np.mean([p["head_ctr"] for p in head]))


def plot(runs: dict[str, tuple[list[dict[str, Any]], ExposureControlSettings, int | None]], name: str) -> str:
    """Per run, the tail share against the band, and the strength against the guardrail; ``int``: the search at
    which the query mix shifted (a vertical line), if it did."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(runs), 2, figsize=(12, 3.3 * len(runs)), squeeze=False)
    for row, (title, (trajectory, control, shift_at)) in zip(axes, runs.items()):
        x = [p["searches"] for p in trajectory]
        share, strength = row
        share.axhspan(control.target_low, control.target_high, color="tab:green", alpha=0.2, label="target band")
        share.plot(x, [p["tail_share"] for p in trajectory], color="tab:blue", linewidth=1, label="observed (interval)")
        share.plot(x, [p["expected_tail_share"] for p in trajectory], color="navy", linestyle="--", label="expected")
        share.set_ylim(0.3, 0.6 if control.target_high <= 0.55 else 1.0)
        share.set_title(f"{title}: tail share of the top 10")
        strength.plot(x, [p["strength_used"] for p in trajectory], color="tab:orange", label="strength")
        strength.axhline(control.max_strength, color="grey", linestyle="--", linewidth=1, label="max_strength")
        strength.set_ylim(-0.02, control.max_strength * 1.1)
        ratio = strength.twinx()
        ratio.plot(
            x, [p["ctr_ratio"] for p in trajectory], color="tab:red", alpha=0.4, linewidth=1, label="tail/head CTR"
        )
        ratio.axhline(control.min_ctr_ratio, color="tab:red", linestyle=":", linewidth=1, label="guardrail")
        ratio.set_ylim(0, 2.5)
        strength.set_title(f"{title}: strength, tail/head click-through")
        for ax in (share, strength):
            ax.set_xlabel("searches")
            if shift_at is not None:
                ax.axvline(shift_at, color="black", linewidth=0.8, alpha=0.5)
        share.legend(loc="upper right", fontsize=7)
        strength.legend(loc="upper left", fontsize=7)
        ratio.legend(loc="upper right", fontsize=7)
    return save_figure(fig, name)


def in_band_share(trajectory: Sequence[dict[str, Any]], low: float, high: float) -> float:
    """Share of intervals whose observed (sampled) tail share lies in the band."""
    observed = [p["tail_share"] for p in trajectory if p["tail_share"] is not None]
    return float(np.mean([low <= s <= high for s in observed])) if observed else 0.0


def shop_for(pipeline, dataset, settings) -> Shop:
    """Every judged query ranked once up to the long-tail stage (the stage off), with its products' popularity."""
    grades: dict[str, dict[str, int]] = {}
    for judged in dataset.qrels.values():
        for qid, docs in judged.items():
            grades.setdefault(qid, {}).update(docs)
    before_longtail = settings.override(longtail={"enabled": False})
    lists, popularity = {}, {}
    for qid in sorted(grades):
        retrieved = pipeline.retrieve(dataset.queries[qid].text, None, before_longtail)
        lists[qid] = pipeline.rank_from(retrieved, before_longtail).candidates
        popularity[qid] = pipeline.store.popularity([c.product_id for c in lists[qid]])
    frequency = {qid: int(dataset.queries[qid].meta.get("frequency", 1)) for qid in lists}
    return Shop(lists, popularity, grades, frequency, settings.longtail)


def main() -> None:
    ap = dataset_parser(__doc__)
    ap.set_defaults(products=2000, queries=200)
    ap.add_argument("--searches", type=int, default=30_000, help="simulated searches per run")
    ap.add_argument("--every", type=int, default=300, help="searches per controller interval")
    ap.add_argument("--band", type=float, nargs=2, default=(0.40, 0.44), help="target band of the tail share")
    ap.add_argument("--impossible", type=float, nargs=2, default=(0.9, 1.0), help="a band no strength reaches")
    ap.add_argument("--strict-guardrail", type=float, default=1.5, help="a guardrail the shoppers' clicks breach")
    ap.add_argument("--start", type=float, default=0.1, help="the strength the runs start from (longtail default)")
    ap.add_argument("--gate", type=float, default=0.5, help="longtail.gate in the simulation")
    ap.add_argument("--gain", type=float, default=2.5, help="exposure_control.gain (about 1 / the curve's slope)")
    ap.add_argument("--max-step", type=float, default=0.1, help="exposure_control.max_step")
    ap.add_argument("--shift-at", type=int, default=None, help="search at which the query mix turns uniform")
    args = ap.parse_args()
    shift_at = args.searches // 2 if args.shift_at is None else args.shift_at
    data, settings = prepared(args)
    cached_index(data, settings)
    settings = settings.offline().override(longtail={"gate": args.gate})
    started = time.perf_counter()
    pipeline = open_pipeline(settings)
    shop = shop_for(pipeline, load_beir(data), settings)
    pipeline.close()
    print(f"ranked {len(shop.qids)} queries in {time.perf_counter() - started:.0f}s", flush=True)

    control = ExposureControlSettings(
        enabled=True,
        target_low=args.band[0],
        target_high=args.band[1],
        gain=args.gain,
        max_step=args.max_step,
        min_impressions=1,
    )
    strengths = np.round(np.linspace(control.min_strength, control.max_strength, 11), 3).tolist()
    default_gate = LongTailSettings().gate
    at_default_gate = Shop(
        shop.lists,
        shop.popularity,
        shop.grades,
        shop.frequency,
        settings.longtail.model_copy(update={"gate": default_gate}),
    )
    curve = [
        {
            "strength": s,
            "tail_share": shop.expected_tail_share(s, shop.by_frequency),
            "tail_share_uniform_mix": shop.expected_tail_share(s, shop.uniform),
            "tail_share_default_gate": at_default_gate.expected_tail_share(s, shop.by_frequency),
        }
        for s in strengths
    ]
    for point in curve:
        print(f"strength {point['strength']:.1f}: expected tail share {point['tail_share']:.3f}", flush=True)

    trajectory = run(shop, control, args.start, args.searches, args.every, args.seed, shift_at)
    before = [p for p in trajectory if p["searches"] <= shift_at]
    after = [p for p in trajectory if p["searches"] > shift_at]
    to_band = searches_to_band(before, control.target_low, control.target_high)
    back = searches_to_band(after, control.target_low, control.target_high)
    back_after_shift = None if back is None else back - shift_at
    ratio = pooled_ctr_ratio(trajectory, args.every)
    print(f"in band from search {to_band}, back {back_after_shift} searches after the shift; CTR ratio {ratio}")

    impossible = control.model_copy(update={"target_low": args.impossible[0], "target_high": args.impossible[1]})
    stuck = run(shop, impossible, args.start, args.searches, args.every, args.seed)
    last = stuck[-1]
    at_bound_from = next((p["searches"] for p in stuck if p["reason"] == "at_max_bound"), None)
    print(f"impossible target: last decision {last['action']} ({last['reason']}) at {last['strength_next']}")

    strict = control.model_copy(update={"min_ctr_ratio": args.strict_guardrail})
    held = run(shop, strict, args.start, args.searches // 4, args.every, args.seed)
    held_decisions = sorted({p["reason"] for p in held})
    print(f"strict guardrail: reasons {held_decisions}, strength {held[-1]['strength_next']}")

    figure = plot(
        {
            "target band, query mix shifts": (trajectory, control, shift_at),
            "impossible target": (stuck, impossible, None),
        },
        "exposure_controller.png",
    )
    settled = [p for p in before if to_band is not None and p["searches"] >= to_band]
    resettled = [p for p in after if back is not None and p["searches"] >= back]
    results = json.loads(RESULTS.read_text(encoding="utf-8")) if RESULTS.exists() else {}
    results.update(
        {
            "controller_searches_to_band": to_band,
            "controller_ctr_ratio": ratio,
            "controller": {
                "dataset": data.name,
                "longtail_gate": args.gate,
                "settings": control.model_dump(mode="json"),
                "start_strength": args.start,
                "searches": args.searches,
                "every": args.every,
                "shift_at": shift_at,
                "searches_to_band_after_shift": back_after_shift,
                "observed_in_band_once_settled": in_band_share(
                    settled + resettled, control.target_low, control.target_high
                ),
                "searches_to_band_observed": searches_to_band(
                    before, control.target_low, control.target_high, key="tail_share"
                ),
                "guardrail_holds": sum(p["reason"] == "guardrail_breached" for p in trajectory),
                "final_strength": trajectory[-1]["strength_next"],
                "decisions": {
                    r: sum(p["reason"] == r for p in trajectory) for r in sorted({p["reason"] for p in trajectory})
                },
                "tail_share_by_strength": curve,
                "trajectory": trajectory,
                "impossible_target": {
                    "band": list(args.impossible),
                    "at_max_bound_from_search": at_bound_from,
                    "final_strength": last["strength_next"],
                    "final_decision": {"action": last["action"], "reason": last["reason"]},
                    "final_tail_share": last["tail_share"],
                    "trajectory": stuck,
                },
                "strict_guardrail": {
                    "min_ctr_ratio": args.strict_guardrail,
                    "searches": args.searches // 4,
                    "reasons": held_decisions,
                    "final_strength": held[-1]["strength_next"],
                    "ctr_ratio": pooled_ctr_ratio(held, args.every),
                },
                "seconds": round(time.perf_counter() - started, 1),
            },
        }
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    if args.no_write:
        return
    c0, c1 = curve[0], curve[-1]
    body = f"""
On `{data.name}` (MiniLM bi-encoder, default fusion, no reranker, `longtail.gate` {args.gate:g}): the
{len(shop.qids)} judged queries ranked once up to the long-tail stage, then {args.searches} simulated searches,
queries drawn by the generator's frequency, shoppers clicking by a position-based model on the true grades. The
controller (`core/exposure_control.py`, the function the service runs) decides every {args.every} searches
(gain {control.gain:g}, max step {control.max_step:g}, hysteresis {control.hysteresis:g}, guardrail tail/head
click-through >= {control.min_ctr_ratio:g}), starting from strength {args.start:g}. At search {shift_at} the traffic
changes under it: every query becomes as frequent as any, which raises the tail share at any strength. Raw figures,
trajectories included: `benchmarks/results/reco_exposure.json` (`controller_*`, `controller`).

![tail share of the top 10 over searches, with the target band]({figure})

{
        table(
            [
                "run",
                "band",
                "searches to the band (and staying)",
                "tail/head CTR (last quarter)",
                "final strength",
                "last decision",
            ],
            [
                [
                    "target band",
                    f"{control.target_low:g}-{control.target_high:g}",
                    f"{to_band}; after the shift {back_after_shift}",
                    "n/a" if ratio is None else ratio,
                    trajectory[-1]["strength_next"],
                    f"{trajectory[-1]['action']} ({trajectory[-1]['reason']})",
                ],
                [
                    "impossible target",
                    f"{impossible.target_low:g}-{impossible.target_high:g}",
                    "never",
                    "n/a" if pooled_ctr_ratio(stuck, args.every) is None else pooled_ctr_ratio(stuck, args.every),
                    last["strength_next"],
                    f"{last['action']} ({last['reason']})",
                ],
                [
                    f"guardrail {args.strict_guardrail:g} (breached)",
                    f"{control.target_low:g}-{control.target_high:g}",
                    "never",
                    "n/a"
                    if results["controller"]["strict_guardrail"]["ctr_ratio"] is None
                    else results["controller"]["strict_guardrail"]["ctr_ratio"],
                    held[-1]["strength_next"],
                    ", ".join(held_decisions),
                ],
            ],
        )
    }

- "Searches to the band" counts until the expected tail share at the strength in use (the mean over the query mix,
  dashed in the plot) is in the band and stays there; the interval samples ({args.every} searches each) scatter
  around it, and {results["controller"]["observed_in_band_once_settled"]:.0%} of them lie in the band once settled.
  Inside the band, and within the hysteresis of it once settled, nothing moves, so sampling noise does not make
  the ranking flap.
- Impossible target: the strength climbs by at most the maximum step per interval, reaches `max_strength`
  ({impossible.max_strength:g}) by search {at_bound_from}, and every decision from there on is `hold (at_max_bound)`.
- Guardrail: simulated tail click-through is about that of the head here, so the default guardrail never binds;
  set above what shoppers do ({args.strict_guardrail:g}), every decision is a hold and the strength never leaves
  {args.start:g}.
- Reach: over strengths {c0["strength"]:g}-{c1["strength"]:g} the tail share moves from {c0["tail_share"]:.3f} to
  {c1["tail_share"]:.3f} at gate {args.gate:g}, but only from {c0["tail_share_default_gate"]:.3f} to
  {c1["tail_share_default_gate"]:.3f} at the default gate {default_gate:g}: on this catalogue few candidates are within
  0.2 of the best match, so the gated boost has almost nothing to lift, and a controller on the default gate would
  go to its bound for any band above that. Choose the band from this curve (the benchmark prints it), and the gain
  near 1 / its slope.
"""
    write_section("exposure_controller", "Long-tail exposure controller in simulation (issue 17)", body)


if __name__ == "__main__":
    main()
