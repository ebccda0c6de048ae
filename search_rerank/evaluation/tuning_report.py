"""A tuning run as one self-contained HTML page (plots embedded) and the JSON it was drawn from.

One file that opens anywhere, with no server and no image folder beside it,
is what gets attached to a ticket or a review; the JSON is what a later
script reads. The page shows what a reviewer must see before accepting tuned
settings: how each parameter moved the metric (is the optimum on the edge of
the range?), the relevance / long-tail trade, which queries the best settings
win and lose against the defaults, and whether that difference is more than
noise on these queries.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tomli_w

NDCG = "nDCG@10"
LT_SHARE = "lt_share@10"
EXPOSURE_LABELS = {
    LT_SHARE: "long-tail share of the top 10 (below the head)",
    "tail@10": "tail-tier share of the top 10 (below head and torso)",
}
PAGE_STYLE = """<style>
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: left; }
td { font-variant-numeric: tabular-nums; }
img { max-width: 100%; display: block; margin: 0.5rem 0 1.5rem; }
pre { background: #f6f6f6; padding: 0.8rem; }
</style>"""
"""The reports' shared look (tuning, onboarding): one self-contained page each."""


def png(fig) -> str:
    """A matplotlib figure as base64 PNG, to embed in a page (the figure is closed)."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def pyplot():
    """pyplot on the Agg backend: reports are drawn on machines with no display."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def parameter_plot(result: Mapping[str, Any]) -> str:
    """nDCG@10 of every trial against each parameter it set; categories are spread on their own axis."""
    plt = pyplot()
    trials = result["trials"]
    names = sorted({name for t in trials for name in t["params"]})
    cols = min(3, max(len(names), 1))
    rows = max(1, -(-len(names) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows), squeeze=False)
    best = result["best"]["number"]
    for ax, name in zip(axes.flat, names):
        points = [(t["params"][name], t["metrics"][NDCG], t["number"] == best) for t in trials if name in t["params"]]
        values = [p[0] for p in points]
        if all(isinstance(v, str) for v in values):
            categories = sorted(set(values))
            x = [categories.index(v) for v in values]
            ax.set_xticks(range(len(categories)), categories)
        else:
            x = values
        ax.scatter(x, [p[1] for p in points], s=14, alpha=0.6, color="#4477aa")
        ax.scatter(
            [xi for xi, p in zip(x, points) if p[2]],
            [p[1] for p in points if p[2]],
            marker="*",
            s=160,
            color="#cc3311",
            label="best",
        )
        ax.axhline(result["baseline"]["metrics"][NDCG], color="grey", ls="--", lw=0.8)
        ax.set_xlabel(name)
        ax.set_ylabel(NDCG)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    return png(fig)


def pareto_plot(result: Mapping[str, Any]) -> str:
    plt = pyplot()
    lt = exposure(result)
    trials = {t["number"]: t for t in result["trials"]}
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ax.scatter(
        [t["metrics"][lt] for t in trials.values()],
        [t["metrics"][NDCG] for t in trials.values()],
        s=14,
        alpha=0.5,
        color="#bbbbbb",
        label="trials",
    )
    front = sorted((trials[n] for n in result["pareto"]), key=lambda t: t["metrics"][lt])
    ax.plot(
        [t["metrics"][lt] for t in front],
        [t["metrics"][NDCG] for t in front],
        "o-",
        color="#4477aa",
        label="Pareto front",
    )
    base = result["baseline"]["metrics"]
    ax.scatter([base[lt]], [base[NDCG]], marker="s", s=60, color="black", label="baseline (defaults)")
    best = result["best"]["metrics"]
    ax.scatter([best[lt]], [best[NDCG]], marker="*", s=220, color="#cc3311", label="chosen")
    ax.set_xlabel(EXPOSURE_LABELS.get(lt, lt))
    ax.set_ylabel(NDCG)
    ax.legend(fontsize=8)
    return png(fig)


def per_query_plot(result: Mapping[str, Any]) -> str:
    """Every query's delta, sorted: wins above the line, losses below."""
    plt = pyplot()
    deltas = sorted(row["delta"] for row in result["per_query"])
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    colours = ["#cc3311" if d < 0 else "#228833" if d > 0 else "#bbbbbb" for d in deltas]
    ax.bar(range(len(deltas)), deltas, color=colours, width=1.0)
    ax.axhline(0, color="black", lw=0.6)
    ax.set_xlabel("queries, sorted by delta")
    ax.set_ylabel(f"{NDCG}: chosen - baseline")
    return png(fig)


def html_table(header: list[str], rows: list[list[Any]]) -> str:
    """An HTML table; floats shown to 4 decimals, everything else escaped."""

    def cell(value: Any) -> str:
        return f"{value:.4f}" if isinstance(value, float) else html.escape(str(value))

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _query_rows(rows: list[Mapping[str, Any]]) -> list[list[Any]]:
    return [[r["query"], r["kind"], r["baseline"], r["best"], r["delta"]] for r in rows]


def exposure(result: Mapping[str, Any]) -> str:
    """The exposure metric the run traded nDCG@10 against (runs written before it was a choice: lt_share@10)."""
    return result.get("exposure", LT_SHARE)


def code_share_lines(result: Mapping[str, Any]) -> list[str]:
    """One line per kind of code query: its lexical share before and after, and why it moved or stayed
    (tune.choose_share). Runs written before the step, or without both legs: none."""
    lines = []
    for name, choice in result.get("code_weights", {}).items():
        if not choice["queries"]:
            lines.append(f"fusion.{name}: lexical share {choice['current']:.2f} kept ({choice['reason']})")
            continue
        best = choice["ndcg"][f"{choice['best']:.1f}"]
        moved = (
            f"{choice['current']:.2f} -> {choice['best']:.2f}" if choice["adopted"] else f"{choice['current']:.2f} kept"
        )
        lines.append(
            f"fusion.{name}: {choice['queries']} code queries, lexical share {moved} (nDCG@10 "
            f"{choice['current_ndcg']:.4f} at the current share, {best:.4f} at {choice['best']:.2f}; {choice['reason']})"
        )
    return lines


def render_html(result: Mapping[str, Any]) -> str:
    lt = exposure(result)
    base, best, sig = result["baseline"], result["best"], result["significance"]
    metrics = list(base["metrics"])
    kinds = sorted(set(base["by_kind"]) | set(best["by_kind"]))
    moved = sorted(result["per_query"], key=lambda r: r["delta"])
    losses, wins = [r for r in moved if r["delta"] < 0][:10], [r for r in reversed(moved) if r["delta"] > 0][:10]
    verdict = ("significant" if sig["p_value"] < 0.05 else "not significant") + " at α = 0.05"
    images = {"parameters": parameter_plot(result), "pareto": pareto_plot(result), "queries": per_query_plot(result)}
    img = {k: f'<img alt="{k}" src="data:image/png;base64,{v}">' for k, v in images.items()}
    goal = (
        ", ".join(f"{k} = {v}" for k, v in result["goal"].items() if v is not None and k != "exposure")
        or "none (Pareto front)"
    )
    code_lines = code_share_lines(result)
    codes = (
        "<h3>Queries naming a product code</h3><p>Their lexical share is chosen on them alone after the trials, "
        "and moves only on a significant lead:</p><ul>"
        + "".join(f"<li>{html.escape(line)}</li>" for line in code_lines)
        + "</ul>"
        if code_lines
        else ""
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tuning report: {html.escape(result["dataset"])}</title>
{PAGE_STYLE}</head><body>
<h1>Tuning report</h1>
<p>Dataset <code>{html.escape(result["dataset"])}</code>, split <code>{html.escape(result["split"])}</code>,
{result["queries"]} judged queries, {len(result["trials"])} trials (TPE, seed {result["seed"]}), mode
<b>{html.escape(result["mode"])}</b> (nDCG@10 against <code>{html.escape(lt)}</code>), constraint:
{html.escape(goal)}.
Retrieval {result["timing"]["retrieve_s"]:.1f} s once, then {result["timing"]["per_trial_ms"]:.0f} ms per trial.</p>
<h2>Chosen settings (trial {best["number"]}) against the baseline</h2>
{
        html_table(
            ["metric", "baseline", "chosen", "delta"],
            [[m, base["metrics"][m], best["metrics"][m], best["metrics"][m] - base["metrics"][m]] for m in metrics],
        )
    }
<pre>{html.escape(tomli_w.dumps(best["sections"]))}</pre>
{codes}
<h2>Significance ({NDCG}, paired, per query)</h2>
{
        html_table(
            [
                "queries",
                "mean delta",
                f"{sig['confidence']:.0%} CI (bootstrap)",
                "p (randomisation)",
                "p (bootstrap)",
                "wins",
                "losses",
                "ties",
            ],
            [
                [
                    sig["queries"],
                    sig["mean_delta"],
                    f"[{sig['ci_low']:.4f}, {sig['ci_high']:.4f}]",
                    sig["p_value"],
                    sig["bootstrap_p_value"],
                    sig["wins"],
                    sig["losses"],
                    sig["ties"],
                ]
            ],
        )
    }
<p>The difference is <b>{verdict}</b>. These are the queries the settings were chosen on, so the estimate is
optimistic: confirm on a held-out split with <code>search-rerank compare</code>.</p>
<h2>Relevance against long-tail exposure</h2>
{img["pareto"]}
<h2>{NDCG} against each parameter</h2>
{img["parameters"]}
<h2>Per-query wins and losses</h2>
{img["queries"]}
<h3>Largest wins</h3>
{html_table(["query", "kind", "baseline", "chosen", "delta"], _query_rows(wins))}
<h3>Largest losses</h3>
{html_table(["query", "kind", "baseline", "chosen", "delta"], _query_rows(losses))}
<h2>By query kind</h2>
{
        html_table(
            ["kind", "queries", f"{NDCG} baseline", f"{NDCG} chosen", f"{lt} baseline", f"{lt} chosen"],
            [
                [
                    k,
                    base["by_kind"].get(k, {}).get("queries", 0),
                    base["by_kind"].get(k, {}).get(NDCG, 0.0),
                    best["by_kind"].get(k, {}).get(NDCG, 0.0),
                    base["by_kind"].get(k, {}).get(lt, 0.0),
                    best["by_kind"].get(k, {}).get(lt, 0.0),
                ]
                for k in kinds
            ],
        )
    }
</body></html>
"""


def write_report(result: Mapping[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    """``report.html`` and ``tuning.json`` in ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    page, data = out / "report.html", out / "tuning.json"
    data.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    page.write_text(render_html(result), encoding="utf-8")
    return page, data
