"""``search-rerank demo``'s steps on a small catalogue with tiny models: each step once, then reused; the served
settings carry the reranker and the tuned sections; the cluster variant keeps BM25 in osmem-server.

The real demo (5,000 products, the packaged MiniLM) is exercised by test_example_queries.py.
"""

from __future__ import annotations

import os
import re
import signal
import urllib.request

import pytest
from click.testing import CliRunner

from search_rerank.backends import tantivy_index
from search_rerank.cli import main
from search_rerank.cli.demo import DemoPlan, ensure_index, prepare, start_osmem
from search_rerank.core.model_card import load_card
from search_rerank.core.settings import Settings, load_settings
from search_rerank.data.loaders import iter_catalog
from search_rerank.indexing.indexes import build_index, open_pipeline


def small_plan(root, tiny_bert_dir, tiny_cross_encoder_dir) -> DemoPlan:
    return DemoPlan(
        data=root / "data",
        index_dir=root / "index",
        models_dir=root / "models",
        products=200,
        queries=60,
        seed=5,
        max_pairs=48,
        trials=2,
        base_model=str(tiny_cross_encoder_dir),
        dense_model=str(tiny_bert_dir),
    )


@pytest.fixture
def plan(tmp_path, tiny_bert_dir, tiny_cross_encoder_dir) -> DemoPlan:
    """A plan of its own, for a test that runs the demo's steps itself."""
    return small_plan(tmp_path, tiny_bert_dir, tiny_cross_encoder_dir)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, tiny_bert_dir, tiny_cross_encoder_dir):
    """The embedded demo prepared once for the tests that only read what it made (each prepare is seconds of
    training and tuning): the plan and its served settings file."""
    made = small_plan(tmp_path_factory.mktemp("demo"), tiny_bert_dir, tiny_cross_encoder_dir)
    return made, prepare(made)


@pytest.fixture(scope="module")
def cluster_prepared(tmp_path_factory, tiny_bert_dir, tiny_cross_encoder_dir, osmem_server_url):
    """The cluster demo prepared once, likewise."""
    made = small_plan(tmp_path_factory.mktemp("cluster-demo"), tiny_bert_dir, tiny_cross_encoder_dir)
    return made, prepare(made, osmem_server_url)


def demo_args(plan: DemoPlan) -> list[str]:
    return [
        "demo",
        *("--data", str(plan.data), "--out", str(plan.index_dir), "--models-dir", str(plan.models_dir)),
        *("--products", str(plan.products), "--queries", str(plan.queries), "--seed", str(plan.seed)),
        *("--max-pairs", str(plan.max_pairs), "--trials", str(plan.trials), "--base-model", str(plan.base_model)),
        "--no-serve",
    ]


def test_served_settings_name_the_reranker_exactly_when_it_was_promoted(prepared):
    plan, served = prepared
    settings = load_settings(served)
    card = load_card(plan.models_dir / plan.reranker_name)
    assert settings.rerank.model == (plan.reranker_name if card.promoted else None)


def test_served_settings_name_the_ranker_exactly_when_it_was_promoted(prepared):
    plan, served = prepared
    settings = load_settings(served)
    card = load_card(plan.models_dir / plan.ranker_name(cluster=False))
    assert settings.ltr.model == (plan.ranker_name(cluster=False) if card.promoted else None)


def test_cluster_demo_trains_a_ranker_of_its_own(cluster_prepared):
    plan, served = cluster_prepared
    settings = load_settings(served)
    assert (plan.models_dir / plan.ranker_name(cluster=True) / "model_card.json").exists()
    assert settings.ltr.model in (plan.ranker_name(cluster=True), None)


def test_served_settings_carry_the_tuned_sections(prepared):
    text = prepared[1].read_text(encoding="utf-8")
    assert "tuned on" in text
    for section in ("[fusion]", "[longtail]", "[lexical]"):
        assert section in text


def test_second_demo_run_reuses_catalogue_index_models_and_tuning(plan, tiny_bert_dir, monkeypatch):
    monkeypatch.setenv("SEARCH_RERANK_DENSE__MODEL", str(tiny_bert_dir))
    runner = CliRunner()
    first = runner.invoke(main, demo_args(plan))
    assert first.exit_code == 0, first.output
    assert "already" not in first.output
    second = runner.invoke(main, demo_args(plan))
    assert second.exit_code == 0, second.output
    said = " ".join(second.output.split())  # as the terminal wrapped it, unwrapped
    steps = ("catalogue: already generated", "index: already built", "reranker: already", "ranker: already")
    for step in (*steps, "tuning: already"):
        assert re.search(rf"(^|\s){step}", said), step  # "ranker: already" on its own, not inside "reranker: ..."


def test_demo_builds_again_an_index_of_an_older_schema(tmp_path, monkeypatch):
    """A demo served before an upgrade: its index no longer opens, and reusing it would stop every later run."""
    catalog = tmp_path / "catalog.jsonl"
    catalog.write_text('{"id": "a", "title": "red sofa"}\n{"id": "b", "title": "东京塔模型"}\n', encoding="utf-8")
    settings = Settings(index_dir=tmp_path / "index", dense={"enabled": False}, rerank={"pretokenise": False})
    with monkeypatch.context() as patched:
        patched.setattr(tantivy_index, "ANALYZER_NAME", "search_rerank_en")  # what schema version 2 wrote
        build_index(iter_catalog(catalog), settings, progress=False)
    plan = DemoPlan(data=catalog, index_dir=settings.index_dir, models_dir=tmp_path / "models")
    ensure_index(plan, settings, rebuild=False)
    assert [hit.product.id for hit in open_pipeline(settings).run("模型").hits] == ["b"]


def test_cluster_demo_searches_bm25_in_the_cluster(cluster_prepared):
    plan, served = cluster_prepared
    settings = load_settings(served)
    assert settings.lexical.backend == "opensearch"
    pipeline = open_pipeline(settings)
    try:
        title = next(iter(iter_catalog(plan.data))).title
        result = pipeline.run(title, None, size=5)
    finally:
        pipeline.close()
    assert result.hits and not result.degraded
    assert "lexical" in result.hits[0].explanation()["legs"]


def test_cluster_demo_rebuilds_the_index_a_fresh_server_lacks(plan, osmem_server_url):
    prepare(plan, osmem_server_url)
    index = plan.index_dir
    first = (index / "current.json").read_text(encoding="utf-8")
    prepare(plan, osmem_server_url)
    assert (index / "current.json").read_text(encoding="utf-8") != first


def test_osmem_started_for_the_demo_answers_at_the_url_it_reports(tmp_path):
    url, process = start_osmem(tmp_path / "osmem.log", 0)
    try:
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url, timeout=30) as response:
            assert response.status == 200
    finally:
        os.kill(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def test_demo_serves_its_settings_with_the_environment_the_cli_started_in(plan, tiny_bert_dir, monkeypatch):
    """``--serve`` ends in exec'ing gunicorn; what it would exec is recorded instead, here only."""
    monkeypatch.setenv("SEARCH_RERANK_DENSE__MODEL", str(tiny_bert_dir))
    execs = []

    def record(path, args, env):
        execs.append((args, env))
        raise SystemExit(0)

    monkeypatch.setattr(os, "execvpe", record)
    args = [a for a in demo_args(plan) if a != "--no-serve"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    (gunicorn, env), *_ = execs
    assert "search_rerank.serving:create_app()" in gunicorn
    assert env["SEARCH_RERANK_SETTINGS"] == str((plan.index_dir / "demo.toml").resolve())
    assert env["SEARCH_RERANK_DENSE__MODEL"] == str(tiny_bert_dir)
