"""``search-rerank demo``: the whole product on a generated catalogue, every stage on, in one command.

What ``make demo`` and ``make demo-cluster`` run. Each step is skipped when its
result is already on disk, so the first run pays for training and tuning and
the next one starts serving at once:

1. generate the catalogue (deterministic from ``--seed``);
2. index it (tantivy BM25 + MiniLM/FAISS; with ``--cluster``, BM25 in a local
   osmem-server, an in-memory OpenSearch-compatible server, rebuilt every run
   because the server keeps nothing);
3. train a small cross-encoder reranker on the train split, selected on dev
   (a few minutes on two CPU cores), into the model registry;
4. train the learned ranker (LightGBM LambdaMART over every stage's scores and
   text features) on the train split, promoted only if it beats the best
   linear blend on dev (a few minutes more);
5. tune fusion, candidates, rerank window and the long-tail stage on dev, with both models in place;
6. write the served settings file (the models and the tuned sections) and serve it.

A newcomer therefore sees the product's headline stages at work: ``/search``
reports ``rerank`` and ``ltr`` among its stages, not among the skipped ones.
Why the ranker too: the demo's small reranker scores every oak table or
leather sofa much alike (its partial matches are labelled half-relevant), and
on the demo's dev split the ranker over its probability, the legs' scores and
field matches (title coverage, category match) lifts nDCG@10 from about 0.80 (the best linear blend)
to 0.89, which is what puts oak dining tables, not bedside tables, on top.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import tomli_w
from rich.console import Console

from ..core.errors import ConfigError, SearchRerankError
from ..core.settings import Settings, load_settings

if TYPE_CHECKING:
    from ..evaluation.tune import RerankScores

console = Console()

CPU_RERANK_WINDOW = 30
"""The largest rerank window tuning may pick: on two CPU cores a window of 30 at 64 tokens stays well inside
the reranker's deadline (docs/TRAINING.md, "Cost")."""


@dataclass(frozen=True)
class DemoPlan:
    """Where the demo keeps what it makes, and how much work each step does."""

    data: Path
    index_dir: Path
    models_dir: Path
    products: int = 5000
    queries: int = 500
    seed: int = 13
    max_pairs: int = 3000
    """A sample of the about 4,100 pairs the 5k demo's train split mines. Measured on the demo's dev split
    (2026-12-02, one run each): 3,000 pairs scored nDCG@10 0.776 in 81 s of training, all of them 0.771 in
    105 s (first stage 0.749); with fp32 training, as on a CPU without native bf16, 3,000 scored 0.772. The
    demo is the test suite's longest test, so its minutes are paid on every change."""
    max_length: int = 64
    trials: int = 20
    base_model: str | None = None
    """The reranker's starting model (default: the packaged MiniLM); tests pass a tiny one."""
    dense_model: str | None = None
    """The bi-encoder (default: the packaged MiniLM); tests pass a tiny one."""

    @property
    def reranker_name(self) -> str:
        """Named after the catalogue, so the embedded and the cluster demo share one model of the same data."""
        return f"demo-{self.products}-{self.queries}-{self.seed}-reranker"

    def ranker_name(self, cluster: bool) -> str:
        """Per backend: on a cluster the per-field BM25 features come from no tantivy index, so a ranker
        trained on one backend's features would not fit the other's."""
        return f"demo-{self.products}-{self.queries}-{self.seed}-ranker{'-cluster' if cluster else ''}"

    @property
    def base_file(self) -> Path:
        """Settings before tuning: the index, the registry, the reranker, the lexical backend."""
        return self.index_dir / "base.toml"

    @property
    def settings_file(self) -> Path:
        """The served settings: the base file with the tuned sections merged in."""
        return self.index_dir / "demo.toml"


def ensure_catalogue(plan: DemoPlan) -> None:
    from ..data.generate import GeneratorConfig, generate

    if (plan.data / "corpus.jsonl").exists():
        console.print(f"catalogue: already generated ({plan.data})")
        return
    console.print(f"catalogue: generating {plan.products} products and {plan.queries} queries into {plan.data}")
    generate(plan.data, GeneratorConfig(products=plan.products, queries=plan.queries, seed=plan.seed))


def ensure_index(plan: DemoPlan, settings: Settings, *, rebuild: bool) -> None:
    """Build the index unless one is served already; ``rebuild`` for a cluster that has forgotten it.

    A rebuild keeps no old version: the server indexes they name are gone with the server's last run. A
    served index of another schema (built by an earlier release) is built again, one that still opens included.
    """
    from ..data.loaders import catalog_fields, iter_catalog
    from ..indexing.indexes import build_index, lexical_index_current
    from ..indexing.versions import IndexVersions

    served = None if rebuild else IndexVersions(settings.index_dir).serving_dir()
    if served is not None:
        if lexical_index_current(served, settings.lexical):
            console.print(f"index: already built ({settings.index_dir})")
            return
        console.print(f"index: {settings.index_dir} is of an earlier release's schema; building it again")
    console.print(f"index: {plan.data} into {settings.index_dir} (BM25 and MiniLM vectors; the vectors take longest)")
    fields = catalog_fields(plan.data, settings.lexical.catalog_field_types)
    report = build_index(iter_catalog(plan.data), settings, keep=0 if rebuild else 2, catalog=fields)
    console.print(f"index: {report.products} products in {report.seconds.get('total', 0):.0f} s")


def already_trained(out: Path, what: str) -> bool | None:
    """Whether the model in ``out`` was promoted, if an earlier run trained it; None when there is none yet."""
    from ..core.model_card import load_card

    if not (out / "model_card.json").exists():
        return None
    card = load_card(out)
    console.print(f"{what}: already trained ({out}; promoted: {'yes' if card.promoted else 'no'})")
    return card.promoted


def ensure_reranker(plan: DemoPlan, settings: Settings) -> bool:
    """Train the demo's reranker unless the registry has it; whether it may be served (promoted on dev).

    Small on purpose (``max_pairs`` pairs at ``max_length`` tokens, a dev
    subset): minutes on two cores, and still well above the first stage on
    this catalogue. The model card records everything, as for any model.
    """
    from ..data.loaders import load_dataset
    from ..indexing.indexes import open_pipeline
    from ..training.mining import MiningConfig
    from ..training.reranker import RerankerTraining, train_reranker

    out = Path(settings.models_dir) / plan.reranker_name
    trained = already_trained(out, "reranker")
    if trained is not None:
        return trained
    console.print(
        f"reranker: training {plan.reranker_name} on {plan.data} (train split), at most {plan.max_pairs} pairs of "
        f"{plan.max_length} tokens, selected on the dev split (a few minutes on two cores; once)"
    )
    data = load_dataset(plan.data)
    config = RerankerTraining(
        # A few thousand pairs, the packaged bi-encoder's body and a new head: at the 3e-5 that suits tens of
        # thousands, 2,000 pairs left the model below the first stage on its own (dev loss near log 2); 1e-4 learns.
        learning_rate=1e-4,
        max_pairs=plan.max_pairs,
        max_length=plan.max_length,
        window=CPU_RERANK_WINDOW,
        dev_queries=60,
        eval_steps=max(1, plan.max_pairs // 16 // 3),
        seed=plan.seed,
        mining=MiningConfig(judgments_complete=True, seed=plan.seed),
    )
    if plan.base_model is not None:
        config = replace(config, base_model=plan.base_model)
    pipeline = open_pipeline(settings.offline())  # a busy machine slows mining, never changes its lists
    try:
        card = train_reranker(
            pipeline,
            data.split("train"),
            data.split("dev"),
            out,
            config,
            data_path=str(plan.data),
            data_name=data.name,
        )
    finally:
        pipeline.close()
    m = card.dev_metrics
    console.print(
        f"reranker: dev nDCG@10 {m['model_ndcg10']:.4f} vs first stage {m['first_stage_ndcg10']:.4f}, "
        f"{'promoted' if card.promoted else 'not promoted'} ({card.training_seconds:.0f} s)"
    )
    return card.promoted


def ensure_ranker(plan: DemoPlan, settings: Settings, name: str, rerank_scores: RerankScores) -> bool:
    """Train the demo's learned ranker unless the registry has it; whether it may be served (promoted on dev).

    It is trained on top of ``settings`` (the reranker in place, so its
    probability is one of the features), as ``search-rerank train ranker`` does.
    The reranker's scores of the dev lists are kept in ``rerank_scores`` for tuning.
    """
    from ..data.loaders import load_dataset
    from ..indexing.indexes import open_pipeline
    from ..training.ranker import RankerTraining, train_ranker

    out = Path(settings.models_dir) / name
    trained = already_trained(out, "ranker")
    if trained is not None:
        return trained
    console.print(
        f"ranker: training {name} on {plan.data} (train split), checked on the dev split (a few minutes; once)"
    )
    data = load_dataset(plan.data)
    pipeline = open_pipeline(settings.offline())
    try:
        card = train_ranker(
            pipeline,
            data.split("train"),
            data.split("dev"),
            out,
            # The demo's judgments are complete (the generator grades every product), so a candidate nobody
            # judged is not relevant: counting it as grade 0 is right by construction, and fitting the "drop"
            # variant to compare on dev ("auto", for sparse labels) was a fifth of the step's LightGBM time.
            RankerTraining(seed=plan.seed, unjudged="zero"),
            data_path=str(plan.data),
            data_name=data.name,
            label_source="judgments",
            progress=True,
            rerank_scores=rerank_scores,
        )
    finally:
        pipeline.close()
    m = card.dev_metrics
    console.print(
        f"ranker: dev nDCG@10 {m['model_ndcg10']:.4f} vs the best linear blend's {m['first_stage_ndcg10']:.4f}, "
        f"{'promoted' if card.promoted else 'not promoted'} ({card.training_seconds:.0f} s)"
    )
    return card.promoted


def write_base_settings(
    plan: DemoPlan, reranker: bool, lexical: dict[str, Any] | None, ranker: str | None = None
) -> Settings:
    """The settings every later step opens: index, registry, the models that may be served, the backend."""
    data: dict[str, Any] = {"index_dir": str(plan.index_dir), "models_dir": str(plan.models_dir)}
    if plan.dense_model is not None:
        data["dense"] = {"model": plan.dense_model}
    if reranker:
        # The ranker is trained on this window's reranker scores, and tuning picks at most this window for serving.
        data["rerank"] = {"model": plan.reranker_name, "window": CPU_RERANK_WINDOW}
    if ranker is not None:
        data["ltr"] = {"model": ranker}
    if lexical is not None:
        data["lexical"] = lexical
    plan.base_file.parent.mkdir(parents=True, exist_ok=True)
    plan.base_file.write_text(
        "# written by `search-rerank demo`; the served settings are demo.toml beside it\n" + tomli_w.dumps(data),
        encoding="utf-8",
    )
    return load_settings(plan.base_file)


def ensure_tuned(plan: DemoPlan, settings: Settings, rerank_scores: RerankScores) -> None:
    """Tune on dev unless the served settings file was written from the same base file (same reranker, backend).

    ``rerank_scores`` holds what the ranker step's dev lists already cost the reranker: tuning ranks the same dev
    queries over the same index, and rescoring them was a fifth of the step."""
    from ..data.loaders import load_dataset
    from ..evaluation.tune import SearchSpace, tune, write_settings
    from ..indexing.indexes import open_pipeline

    stamp = f"base: {plan.base_file.read_text(encoding='utf-8')!r}"
    if plan.settings_file.exists() and stamp in plan.settings_file.read_text(encoding="utf-8"):
        console.print(f"tuning: already tuned ({plan.settings_file})")
        return
    console.print(
        f"tuning: fusion, candidates, rerank window and long tail on {plan.data} (dev split), {plan.trials} trials"
    )
    queries, qrels = load_dataset(plan.data).split("dev")
    pipeline = open_pipeline(settings.offline())
    try:
        result = tune(
            pipeline,
            queries,
            qrels,
            trials=plan.trials,
            seed=plan.seed,
            space=SearchSpace(max_window=CPU_RERANK_WINDOW),
            dataset=str(plan.data),
            progress=True,
            rerank_scores=rerank_scores,
        )
    finally:
        pipeline.close()
    write_settings(
        plan.settings_file,
        result.best["sections"],
        plan.base_file,
        comment=f"search-rerank demo: tuned on {plan.data} [dev], trial {result.best['number']} of {plan.trials}\n"
        + stamp,
    )
    before, after = result.baseline["metrics"]["nDCG@10"], result.best["metrics"]["nDCG@10"]
    console.print(f"tuning: dev nDCG@10 {before:.4f} -> {after:.4f}; wrote {plan.settings_file}")


def start_osmem(log_file: Path, port: int, startup_timeout: float = 60.0) -> tuple[str, subprocess.Popen]:
    """Start osmem-server on ``port`` for as long as this process (and the gunicorn it becomes) lives.

    It watches this process id, not its stdin: serving replaces this process
    with gunicorn (same id), which closes the pipes Python made.
    """
    try:
        from osmem_server import resolve_binary
    except ImportError as exc:
        raise ConfigError("the cluster demo needs osmem-server: pip install -e '.[dev]'") from exc
    log_file.parent.mkdir(parents=True, exist_ok=True)
    args = [
        resolve_binary(),
        "-parent-pid",
        str(os.getpid()),
        "-no-stdin-watch",
        "-no-ja",
        "-addr",
        f"127.0.0.1:{port}",
    ]
    with log_file.open("w", encoding="utf-8") as log:
        process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + startup_timeout
    while time.monotonic() < deadline:
        for line in log_file.read_text(encoding="utf-8").splitlines():
            try:
                ready = json.loads(line)
            except ValueError:
                continue
            if isinstance(ready, dict) and "url" in ready:
                return str(ready["url"]), process
        if process.poll() is not None:
            raise ConfigError(f"osmem-server exited at start (is port {port} taken?); see {log_file}")
        time.sleep(0.1)
    process.kill()
    raise ConfigError(f"osmem-server did not start within {startup_timeout:.0f} s; see {log_file}")


def prepare(plan: DemoPlan, cluster_url: str | None = None) -> Path:
    """Every step up to serving; returns the settings file to serve.

    With ``cluster_url`` (an OpenSearch-compatible server that keeps nothing
    between runs) the lexical leg lives there and is rebuilt every time.
    """
    ensure_catalogue(plan)
    lexical = None if cluster_url is None else {"backend": "opensearch", "url": cluster_url, "index": "products"}
    settings = write_base_settings(plan, reranker=False, lexical=lexical)
    ensure_index(plan, settings, rebuild=cluster_url is not None)
    promoted = ensure_reranker(plan, settings)
    if not promoted:
        console.print("[yellow]reranker: not promoted on dev, so it is not served; the demo runs without it[/]")
    settings = write_base_settings(plan, reranker=promoted, lexical=lexical)
    ranker = plan.ranker_name(cluster=cluster_url is not None)
    from ..evaluation.tune import RerankScores

    rerank_scores = RerankScores()
    served_ranker = ranker if ensure_ranker(plan, settings, ranker, rerank_scores) else None
    if served_ranker is None:
        console.print("[yellow]ranker: not promoted on dev, so it is not served; the demo runs without it[/]")
    settings = write_base_settings(plan, reranker=promoted, lexical=lexical, ranker=served_ranker)
    ensure_tuned(plan, settings, rerank_scores)
    return plan.settings_file


@click.command("demo")
@click.option(
    "--data",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("data/demo"),
    show_default=True,
    help="Where the generated catalogue goes (or is).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("indexes/demo"),
    show_default=True,
    help="Index directory; demo.toml, the served settings, is written here.",
)
@click.option(
    "--models-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("models"),
    show_default=True,
    help="Model registry the reranker is trained into (and reused from).",
)
@click.option("--products", type=click.IntRange(min=10), default=DemoPlan.products, show_default=True)
@click.option("--queries", type=click.IntRange(min=10), default=DemoPlan.queries, show_default=True)
@click.option("--seed", type=int, default=DemoPlan.seed, show_default=True)
@click.option(
    "--max-pairs",
    type=click.IntRange(min=16),
    default=DemoPlan.max_pairs,
    show_default=True,
    help="Reranker training pairs.",
)
@click.option(
    "--trials", type=click.IntRange(min=1), default=DemoPlan.trials, show_default=True, help="Tuning trials on dev."
)
@click.option("--base-model", default=None, hidden=True, help="Reranker body (default: the packaged MiniLM).")
@click.option(
    "--cluster",
    is_flag=True,
    help="BM25, filters and aggregations in a local osmem-server (OpenSearch-compatible, in memory) instead of "
    "tantivy; facets from the cluster and the passthrough then work.",
)
@click.option("--cluster-port", type=click.IntRange(0, 65535), default=9201, show_default=True)
@click.option("--serve/--no-serve", default=True, show_default=True, help="Serve once everything is ready.")
@click.option("--host", default=None, help="Bind address (default: settings' service.host).")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Port (default: settings' service.port).")
@click.pass_context
def demo(
    ctx: click.Context,
    data: Path,
    out: Path,
    models_dir: Path,
    products: int,
    queries: int,
    seed: int,
    max_pairs: int,
    trials: int,
    base_model: str | None,
    cluster: bool,
    cluster_port: int,
    serve: bool,
    host: str | None,
    port: int | None,
) -> None:
    """Generate, index, train a reranker and a ranker, tune, then serve: the whole product on a demo catalogue.

    Steps already done (catalogue, index, models, tuning) are reused, so the
    first run takes minutes and the next starts serving at once.
    """
    plan = DemoPlan(
        data=data,
        index_dir=out,
        models_dir=models_dir,
        products=products,
        queries=queries,
        seed=seed,
        max_pairs=max_pairs,
        trials=trials,
        base_model=base_model,
    )
    try:
        cluster_url = None
        if cluster:
            cluster_url, _ = start_osmem(out / "osmem.log", cluster_port)
            console.print(f"cluster: osmem-server at {cluster_url} (in memory: the lexical index is rebuilt every run)")
        settings_file = prepare(plan, cluster_url)
    except SearchRerankError as exc:
        raise click.ClickException(str(exc)) from exc
    if not serve:
        console.print(f"ready: serve it with `search-rerank --settings {settings_file} serve`")
        return
    parent = ctx.parent
    group = parent.command if parent is not None else None
    serve_command = (
        group.get_command(parent, "serve") if parent is not None and isinstance(group, click.Group) else None
    )
    if serve_command is None:
        raise click.ClickException("no serve command in this command group")
    ctx.obj = {**(ctx.obj or {}), "settings": settings_file, "index_dir": None}  # the root group's environ kept
    ctx.invoke(serve_command, host=host, port=port, workers=None)
