"""Measuring rankings: ``evaluate``, ``tune``, ``compare`` and ``interleaving-report``."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from ..core.settings import Settings
from .common import Command, console, settings_for


@click.command(cls=Command)
@click.option("--dataset", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True)
@click.option("--split", default="test", show_default=True)
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), help="Also write the report here.")
@click.option("--by-kind", is_flag=True, help="Also show nDCG@10 and long-tail share per query kind.")
@click.option(
    "--personalised",
    "shoppers",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A simulated shoppers folder (generate --shoppers N writes DATASET/shoppers): score its held-out "
    "searches of --split with and without each shopper's profile, by segment, plus the dataset's shared "
    "judgments ranked for returning shoppers and an interleaving simulation.",
)
@click.option(
    "--interleave",
    type=click.IntRange(min=0),
    default=2000,
    show_default=True,
    help="With --personalised: simulated interleaved searches (0 = none).",
)
@click.pass_context
def evaluate(
    ctx: click.Context,
    dataset: Path,
    split: str,
    json_out: Path | None,
    by_kind: bool,
    shoppers: Path | None,
    interleave: int,
) -> None:
    """Score every configuration on a dataset split (nDCG@10, R@100, MRR@10, long-tail metrics)."""
    from ..data.loaders import load_dataset
    from ..evaluation.evaluate import evaluate as run
    from ..indexing.indexes import open_pipeline

    data = load_dataset(dataset)
    queries, qrels = data.split(split)
    pipeline = open_pipeline(settings_for(ctx))
    if shoppers is not None:
        personal = evaluate_personalised(pipeline, shoppers, split, (queries, qrels), interleave)
        if json_out is not None:
            json_out.parent.mkdir(parents=True, exist_ok=True)
            json_out.write_text(json.dumps(personal, indent=2) + "\n", encoding="utf-8")
        return
    report = run(pipeline, queries, qrels, dataset=str(dataset), split=split)
    console.print(report_table(report))
    for warning in report.below_bm25:
        console.print(f"[yellow]warning[/yellow]: {escape(warning.message())}")
    if by_kind:
        console.print(kind_table(report))
        console.print(kind_table(report, "lt_share@10"))
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(report.to_json(), indent=2) + "\n", encoding="utf-8")


def evaluate_personalised(pipeline, shoppers: Path, split: str, shared, interleave: int) -> dict[str, Any]:
    """Print and return the personalised report of ``split``'s held-out shopper searches."""
    from ..evaluation.personalised import PersonalisedEvaluation

    evaluation = PersonalisedEvaluation(pipeline, shoppers, split, shared=shared, progress=True)
    try:
        report = evaluation.evaluate(pipeline.settings, interleave_searches=interleave)
    finally:
        evaluation.close()
        pipeline.close()
    table = Table(
        title=f"{shoppers} [{split}]: nDCG@10 without / with personalisation ({report.profiles} with a profile)"
    )
    table.add_column("segment")
    for col in ("searches", "base", "personal", "delta", "relative", "p"):
        table.add_column(col, justify="right")
    rows = [*report.segments.items(), *([("shared judgments", report.shared)] if report.shared is not None else [])]
    for name, result in rows:
        p = result.significance["p_value"] if result.significance is not None else float("nan")
        table.add_row(
            name,
            str(result.searches),
            f"{result.ndcg10_base:.4f}",
            f"{result.ndcg10_personal:.4f}",
            f"{result.delta:+.4f}",
            f"{result.relative:+.1%}",
            f"{p:.4f}",
        )
    console.print(table)
    if report.interleaving is not None:
        il = report.interleaving
        needed = il["searches_needed"] if il["searches_needed"] is not None else "not reached"
        console.print(
            f"interleaving (A = without, B = with personalisation): {il['impressions']} searches, "
            f"A wins {il['a_wins']}, B wins {il['b_wins']}, ties {il['ties']}, preference for B "
            f"{il['preference_b']:+.3f}, p = {il['p_value']:.4f}; searches to p < 0.05: {needed}"
        )
    return report.to_json()


def report_table(report) -> Table:
    table = Table(title=f"{report.dataset} [{report.split}]: {report.queries} queries, {report.catalog_size} products")
    names = list(report.rows[0].metrics) if report.rows else []
    table.add_column("configuration")
    for name in names:
        table.add_column(name, justify="right")
    table.add_column("status")
    for row in report.rows:
        table.add_row(row.config, *(f"{row.metrics[n]:.4f}" for n in names), row.status)
    return table


def kind_table(report, measure: str = "nDCG@10") -> Table:
    kinds = sorted({k for row in report.rows for k in row.by_kind})
    table = Table(title=f"{measure} by query kind")
    table.add_column("configuration")
    for kind in kinds:
        table.add_column(kind, justify="right")
    for row in report.rows:
        table.add_row(row.config, *(f"{row.by_kind.get(k, {}).get(measure, 0):.4f}" for k in kinds))
    return table


@click.command(cls=Command)
@click.option("--dataset", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True)
@click.option("--split", default="dev", show_default=True, help="Tune on this split; keep test for `compare`.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder for best.toml, report.html and tuning.json.",
)
@click.option("--trials", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--seed", type=int, default=13, show_default=True)
@click.option(
    "--min-lt-share",
    type=click.FloatRange(0, 1),
    help="Maximise nDCG@10 with at least this long-tail share of the top 10.",
)
@click.option(
    "--max-ndcg-cost",
    type=click.FloatRange(0, 1),
    help="Maximise long-tail share with nDCG@10 at most this far below the current settings'.",
)
@click.option(
    "--max-candidates",
    type=click.IntRange(min=10),
    default=100,
    show_default=True,
    help="Largest candidates per leg searched (from 50, or from this when lower); each query is retrieved once at this depth.",
)
@click.option(
    "--exposure",
    type=click.Choice(["lt_share@10", "tail@10"]),
    default="lt_share@10",
    show_default=True,
    help="The exposure objective: share of the top 10 outside the head, or in the tail tier only (below "
    "head and torso; room to grow when most of the catalog is long tail).",
)
@click.option(
    "--longtail-methods",
    default="off,boost,xquad",
    show_default=True,
    help="Long-tail stages to search, comma separated.",
)
@click.option(
    "--longtail-targets",
    default="long_tail",
    show_default=True,
    help="What the long-tail stage may favour, comma separated: long_tail (below the head, graded), "
    "tail (the tail tier, alike).",
)
@click.option(
    "--click-popularity",
    "click_logs",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="UBI log(s): popularity tiers from clicks instead of catalog signals.",
)
@click.option(
    "--personalised",
    "shoppers",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A simulated shoppers folder (DATASET/shoppers): search only the personalisation stage's weights, "
    "maximising nDCG@10 of its held-out searches of --split, each ranked for its shopper's profile.",
)
@click.option(
    "--max-shared-cost",
    type=click.FloatRange(0, 1),
    default=0.005,
    show_default=True,
    help="With --personalised: the most nDCG@10 the split's shared judgments, ranked for its returning "
    "shoppers, may lose against no personalisation (the mean loss plus one standard error of it, see "
    "evaluation.tune.Guard).",
)
@click.option(
    "--code-shares/--no-code-shares",
    default=True,
    show_default=True,
    help="After the trials, choose the lexical share of the queries naming a product code on those queries alone, "
    'moving it only on a significant lead (docs/TUNING.md, "Queries that name a product by its code").',
)
@click.pass_context
def tune(
    ctx: click.Context,
    dataset: Path,
    split: str,
    out: Path,
    trials: int,
    seed: int,
    min_lt_share: float | None,
    max_ndcg_cost: float | None,
    exposure: str,
    max_candidates: int,
    longtail_methods: str,
    longtail_targets: str,
    click_logs: tuple[Path, ...],
    shoppers: Path | None,
    max_shared_cost: float,
    code_shares: bool,
) -> None:
    """Search fusion, candidates, rerank window and long-tail settings on a split; write the best as TOML.

    With --personalised, search the personalisation stage's weights instead,
    on simulated shoppers' held-out searches. Without a constraint the search has two objectives (nDCG@10, long-tail
    share) and best.toml gets the Pareto front's highest-nDCG point; the
    report shows the whole front. Serve the result with
    SEARCH_RERANK_SETTINGS=OUT/best.toml.
    """
    from ..data.clicks import read_ubi
    from ..data.loaders import load_dataset
    from ..evaluation.exposure import click_popularity
    from ..evaluation.tune import Goal, Guard, SearchSpace, write_settings
    from ..evaluation.tune import tune as run
    from ..evaluation.tuning_report import code_share_lines, write_report
    from ..indexing.indexes import open_pipeline

    pipeline = open_pipeline(settings_for(ctx))
    popularity = None
    if click_logs:
        popularity = click_popularity(read_ubi(*click_logs), (p.id for p in pipeline.store))
    space = SearchSpace(
        max_candidates=max_candidates,
        longtail_methods=tuple(m.strip() for m in longtail_methods.split(",") if m.strip()),
        longtail_targets=tuple(t.strip() for t in longtail_targets.split(",") if t.strip()),
        ranking=shoppers is None,
        personalisation=shoppers is not None,
        code_weights=code_shares,
    )
    goal = Goal(min_lt_share=min_lt_share, max_ndcg_cost=max_ndcg_cost, exposure=exposure)
    profiles = guard = None
    queries, qrels = load_dataset(dataset).split(split)
    if shoppers is not None:
        from ..evaluation.personalised import read_searches, shared_profiles, shopper_profiles, without_personalisation

        shared_queries, shared_qrels = queries, qrels
        queries, qrels = read_searches(shoppers, split)
        profiles = shopper_profiles(pipeline, shoppers, queries)
        # The split's shared judgments, ranked for its returning shoppers, may not lose more than the cost.
        guard = Guard(
            shared_queries,
            shared_qrels,
            shared_profiles(shared_qrels, queries, profiles),
            max_cost=max_shared_cost,
            floor=without_personalisation(pipeline.settings),
        )
        if goal.mode == "pareto":  # the stage does not trade exposure: one objective, nDCG@10
            goal = Goal(min_lt_share=0.0, exposure=exposure)
    try:
        result = run(
            pipeline,
            queries,
            qrels,
            trials=trials,
            seed=seed,
            goal=goal,
            space=space,
            popularity=popularity,
            profiles=profiles,
            guard=guard,
            dataset=str(dataset),
            split=split,
            progress=True,
        )
    finally:
        pipeline.close()
    best_file = write_settings(
        out / "best.toml",
        result.best["sections"],
        ctx.obj["settings"],
        comment=f"search-rerank tune: trial {result.best['number']} of {trials} on "
        f"{dataset} [{split}], mode {result.mode}, seed {seed}",
    )
    page, _ = write_report(result.to_json(), out)
    table = Table(title=f"{dataset} [{split}]: {result.queries} queries, {trials} trials, mode {result.mode}")
    for col in ("metric", "current", "best", "delta"):
        table.add_column(col, justify="right" if col != "metric" else "left")
    for name, value in result.best["metrics"].items():
        before = result.baseline["metrics"][name]
        table.add_row(name, f"{before:.4f}", f"{value:.4f}", f"{value - before:+.4f}")
    console.print(table)
    sig = result.significance
    console.print(
        f"nDCG@10 delta {sig['mean_delta']:+.4f}, {sig['confidence']:.0%} CI [{sig['ci_low']:+.4f}, "
        f"{sig['ci_high']:+.4f}], p = {sig['p_value']:.4f} (on the tuning split: optimistic)"
    )
    for line in code_share_lines(result.to_json()):
        console.print(line, soft_wrap=True)  # one line each, whatever the terminal's width (logs are read by line)
    console.print(f"wrote {best_file} and {page}; Pareto front: {len(result.pareto)} trials")


@click.command(cls=Command)
@click.argument("a", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("b", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dataset", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True)
@click.option("--split", default="test", show_default=True)
@click.option(
    "--measure",
    default="nDCG@10",
    show_default=True,
    help="nDCG@10, R@100, RR@10, Judged@10, or 'nDCG(judged_only=True)@10' (the judged products alone: two rankers "
    "compared on sparse labels without the unjudged products either brings up).",
)
@click.option(
    "--movers",
    type=click.IntRange(min=0),
    default=5,
    show_default=True,
    help="How many of the queries that moved most to show.",
)
@click.option("--show", type=click.IntRange(min=1), default=5, show_default=True, help="Top results shown per side.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
@click.pass_context
def compare(
    ctx: click.Context,
    a: Path,
    b: Path,
    dataset: Path,
    split: str,
    measure: str,
    movers: int,
    show: int,
    seed: int,
    as_json: bool,
) -> None:
    """Compare two settings files (.toml/.json) or TREC runs on a split: deltas, significance, movers."""
    from ..data.loaders import load_dataset
    from ..data.qrels import Run
    from ..evaluation.compare import compare as run
    from ..evaluation.compare import load_side, settings_runs

    data = load_dataset(dataset)
    queries, qrels = data.split(split)
    sides = [load_side(path, ctx.obj["index_dir"], judged=qrels) for path in (a, b)]
    configured = [side for side in sides if isinstance(side, Settings)]
    products: dict[str, dict[str, Any]] = {}
    runs: list[Run] = []
    if configured:  # ranked together, so that two settings over one index retrieve once
        runs, products = settings_runs(configured, queries, qrels)
    ranked = iter(runs)
    run_a, run_b = [next(ranked) if isinstance(side, Settings) else side for side in sides]
    result = run(
        run_a,
        run_b,
        qrels,
        queries,
        names=(str(a), str(b)),
        measure=measure,
        movers=movers,
        show=show,
        seed=seed,
        products=products,
    )
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
        return
    table = Table(title=f"{dataset} [{split}]: {len(result.per_query)} queries")
    for col in ("metric", "A", "B", "delta"):
        table.add_column(col, justify="left" if col == "metric" else "right")
    for name in result.means[result.a]:
        va, vb = result.means[result.a][name], result.means[result.b][name]
        table.add_row(name, f"{va:.4f}", f"{vb:.4f}", f"{vb - va:+.4f}")
    console.print(f"A = {escape(result.a)}\nB = {escape(result.b)}")
    console.print(table)
    sig = result.significance
    verdict = "[green]significant[/]" if sig["p_value"] < 0.05 else "[yellow]not significant[/]"
    console.print(
        f"{measure} B - A: {sig['mean_delta']:+.4f}, {sig['confidence']:.0%} CI [{sig['ci_low']:+.4f}, "
        f"{sig['ci_high']:+.4f}], randomisation p = {sig['p_value']:.4f}: {verdict}; "
        f"B wins {sig['wins']}, loses {sig['losses']}, ties {sig['ties']}"
    )
    for row in result.movers:
        moved = Table(
            title=f"{escape(row['query'])} ({row['qid']}, {row['kind']}): {measure} "
            f"{row['a']:.3f} -> {row['b']:.3f} ({row['delta']:+.3f})"
        )
        moved.add_column("#", justify="right")
        moved.add_column("A", overflow="fold")
        moved.add_column("B", overflow="fold")
        for rank in range(max(len(row["a_top"]), len(row["b_top"]))):
            moved.add_row(
                str(rank + 1),
                *(_shown(side[rank]) if rank < len(side) else "" for side in (row["a_top"], row["b_top"])),
            )
        console.print(moved)


def _shown(hit: dict) -> str:
    grade = "unjudged" if hit["grade"] is None else f"grade {hit['grade']}"
    title = f" {escape(hit['title'])}" if hit.get("title") else ""
    return f"{escape(hit['product_id'])}{title} [dim]({grade})[/dim]"


@click.command("interleaving-report", cls=Command)
@click.argument("logs", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the significance test.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def interleaving_report(logs: tuple[Path, ...], seed: int, as_json: bool) -> None:
    """Which ranker won a team-draft interleaving test, from UBI logs whose impressions carry
    event_attributes.team ("A" or "B")."""
    from ..evaluation.interleaving import credit, read_interleaved_ubi, summarise

    passed_over: Counter[str] = Counter()
    impressions = read_interleaved_ubi(*logs, passed_over=passed_over)
    if not impressions:
        raise click.ClickException(
            f"no impression in {', '.join(map(str, logs))} carries event_attributes.team: "
            "was interleaving switched on when these were logged?"
        )
    result = summarise([credit(teams, clicked) for teams, clicked in impressions], seed=seed)
    if as_json:
        click.echo(json.dumps({**result.to_json(), "passed_over": dict(passed_over)}, indent=2))
        return
    if passed_over:
        reasons = ", ".join(f"{count} with {why}" for why, count in passed_over.items())
        console.print(f"passed over {passed_over.total()} events not of the interleaving: {reasons}")
    table = Table(title=f"team-draft interleaving: {result.impressions} searches")
    for col in ("A wins", "B wins", "ties", "preference for B", "p"):
        table.add_column(col, justify="right")
    table.add_row(
        str(result.a_wins), str(result.b_wins), str(result.ties), f"{result.preference_b:+.3f}", f"{result.p_value:.4f}"
    )
    console.print(table)
    if result.p_value < 0.05:
        console.print(f"[green]{'B' if result.preference_b > 0 else 'A'} is preferred[/] (p < 0.05)")
    else:
        console.print("[yellow]no significant preference yet[/]: keep collecting")
