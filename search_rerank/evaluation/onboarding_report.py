"""An onboarding run (``search-rerank onboard``) as one self-contained HTML page, drawn from its state file.

What a shop needs to decide whether to serve the result: for each step, its
dev and test nDCG@10 against the last promoted step, the paired significance
of the difference, whether it was promoted and why (dev decides, test is only
reported), what it changed in the settings, and one plot of the whole climb
against the BM25 leg. The page is redrawn from the state after every step, so
a stopped run still has an up-to-date report.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tomli_w

from ..indexing.versions import write_atomically
from .evaluate import CONDENSED, JUDGED
from .tuning_report import NDCG, PAGE_STYLE, html_table, png, pyplot

LABEL_COVERAGE = (str(JUDGED), str(CONDENSED))
"""How much of each step's top 10 the labels judge, and nDCG@10 on the judged products alone: a step that loses
on sparse labels while its top 10 is less judged and it leads on the judged products may be losing to the labels
(``evaluation.evaluate``; ``search-rerank judgments pool`` lists what to grade)."""

SPLITS = ("dev", "test")


def _measured(state: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """Finished steps that were measured (a skipped step has no figures), in order."""
    return [(name, step) for name, step in state["steps"].items() if "dev" in step]


def progress_plot(state: Mapping[str, Any]) -> str:
    """Dev and test nDCG@10 after each step: filled markers for promoted steps, hollow for refused ones."""
    plt = pyplot()
    steps = _measured(state)
    fig, ax = plt.subplots(figsize=(7.0, 3.8))
    colours = {"dev": "#4477aa", "test": "#cc3311"}
    x = list(range(len(steps)))
    for split in SPLITS:
        values = [step[split]["metrics"][NDCG] for _, step in steps]
        ax.plot(x, values, "-", color=colours[split], lw=1, alpha=0.6)
        for xi, (_, step), value in zip(x, steps, values):
            promoted = step["status"] == "promoted"
            ax.scatter(
                [xi],
                [value],
                s=50,
                color=colours[split] if promoted else "white",
                edgecolors=colours[split],
                zorder=3,
                label=split if xi == 0 else None,
            )
        bm25 = state.get("bm25", {}).get(split)
        if bm25 is not None:
            ax.axhline(bm25["metrics"][NDCG], color=colours[split], ls="--", lw=0.8, label=f"BM25 leg ({split})")
    ax.set_xticks(x, [name for name, _ in steps])
    ax.set_ylabel(NDCG)
    ax.set_title("after each step (hollow: not promoted)")
    ax.legend(fontsize=8)
    return png(fig)


def _split_rows(step: Mapping[str, Any]) -> list[list[Any]]:
    rows = []
    for split in SPLITS:
        measured = step[split]
        sig = measured.get("significance")
        metrics = measured["metrics"]
        row: list[Any] = [split, metrics[NDCG], *(metrics.get(name, "") for name in ("R@100", *LABEL_COVERAGE))]
        if sig is None:
            row += ["", "", "", ""]
        else:
            row += [
                sig["mean_delta"],
                f"[{sig['ci_low']:+.4f}, {sig['ci_high']:+.4f}]",
                sig["p_value"],
                f"{sig['wins']} / {sig['losses']} / {sig['ties']}",
            ]
        rows.append(row)
    return rows


def _step_section(name: str, step: Mapping[str, Any], planned: Mapping[str, Any] | None) -> str:
    """``planned``: what the run's plan said of the step before it began (its work and, when timed, minutes)."""
    parts = [f"<h2>{html.escape(name)}: {html.escape(step['status'])}</h2>", f"<p>{html.escape(step['reason'])}</p>"]
    if "dev" in step:
        against = step.get("compared_with")
        parts.append(
            f"<p>Paired against <b>{html.escape(str(against))}</b> on the same queries "
            "(randomisation p, bootstrap CI of the mean per-query delta).</p>"
            if against is not None
            else ""
        )
        parts.append(
            html_table(
                ["split", NDCG, "R@100", *LABEL_COVERAGE, f"{NDCG} delta", "95% CI", "p", "wins / losses / ties"],
                _split_rows(step),
            )
        )
    choices = step.get("dev_choices")
    if choices is not None:
        parts.append(
            f"<p>Variants decided on dev ({NDCG}): "
            + ", ".join(f"{html.escape(label)} {value:.4f}" for label, value in choices[NDCG].items())
            + f"; the one measured on test: <b>{html.escape(choices['chosen'])}</b>.</p>"
        )
    if step.get("changes"):
        parts.append(f"<p>Settings it sets:</p><pre>{html.escape(tomli_w.dumps(step['changes']))}</pre>")
    card = step.get("card")
    if card is not None:
        parts.append(
            f"<p>Model <code>{html.escape(card['name'])}</code>: its own dev check "
            f"{'passed' if card['promoted'] else 'refused it'} ({html.escape(card['promotion_reason'])}); "
            f"trained in {card['training_seconds']:.0f} s at {card['pairs_per_second']:.1f} pairs/s.</p>"
        )
    guess = ""
    if planned is not None:
        minutes = planned.get("minutes")
        guess = (
            f" Planned: {planned['work']}"
            + ("" if minutes is None else f", estimated at {minutes * 60:.0f} s on this machine")
            + "."
        )
    parts.append(f"<p>Step time: {step['seconds']:.0f} s.{html.escape(guess)}</p>")
    return "\n".join(parts)


def render_html(state: Mapping[str, Any]) -> str:
    steps = _measured(state)
    summary = [
        [
            name,
            step["status"],
            *(
                value
                for split in SPLITS
                for value in (
                    step[split]["metrics"][NDCG],
                    step[split]["significance"]["mean_delta"] if step[split].get("significance") else "",
                    step[split]["significance"]["p_value"] if step[split].get("significance") else "",
                )
            ),
            f"{step['seconds']:.0f} s",
        ]
        for name, step in steps
    ]
    planned = state.get("estimate", {}).get("steps", {})
    bm25 = state.get("bm25", {})
    bm25_line = (
        "BM25 leg alone: "
        + ", ".join(f"{split} {NDCG} {bm25[split]['metrics'][NDCG]:.4f}" for split in SPLITS if split in bm25)
        + "."
        if bm25
        else ""
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Onboarding report: {html.escape(state["dataset"])}</title>
{PAGE_STYLE}</head><body>
<h1>Onboarding report</h1>
<p>Dataset <code>{html.escape(state["dataset"])}</code>. Each step is measured on dev and test as served and paired
against the last promoted step; it is promoted only when it beats that step on <b>dev</b> (test is reported, never
used to decide). Served settings: <code>{html.escape(str(state.get("settings_file", "")))}</code>.
{html.escape(bm25_line)} Total time {state.get("onboard_minutes", 0.0):.1f} minutes.</p>
<p>Each step's {JUDGED} is the share of its top 10 the judgments grade. Judgments pooled from an earlier system
count every product it never showed as irrelevant, so a step that brings up new products can lose on
{NDCG} to the labels rather than to the step before; when its {JUDGED} falls and it leads on the judged
products alone ({CONDENSED}), grade what is new and onboard again: <code>to_grade-dev.csv</code> and
<code>to_grade-test.csv</code> beside this report list the unjudged products in the top 10 of BM25 and of every
step, promoted or not.</p>
{html_table(["step", "status", f"dev {NDCG}", "dev delta", "dev p", f"test {NDCG}", "test delta", "test p", "time"], summary)}
<img alt="progress" src="data:image/png;base64,{progress_plot(state)}">
{"".join(_step_section(name, step, planned.get(name)) for name, step in state["steps"].items())}
</body></html>
"""


def write_report(state: Mapping[str, Any], path: str | Path) -> Path:
    """The page at ``path``, written atomically (a stopped run never leaves half a page)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, render_html(state))
    return path
