"""Alias-swapped rebuilds, rollback, and a full ``index`` build with a server lexical leg."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from servers import server_retriever, server_settings

from search_rerank.cli import main
from search_rerank.errors import ConfigError
from search_rerank.indexes import build_index, open_pipeline
from search_rerank.product import Product
from search_rerank.reindex import Reindexer, reindex, rollback
from search_rerank.settings import Settings

OLD = [Product(id="a", title="red sofa"), Product(id="b", title="oak table")]
NEW = [Product(id="a", title="red sofa"), Product(id="c", title="brass lamp")]


@pytest.fixture
def settings(server_engine, request):
    """Lexical settings naming an alias that does not exist yet; every version is deleted afterwards."""
    lexical = server_settings(server_engine, request)
    yield lexical
    cleaner = server_retriever(lexical)
    for name in cleaner.aliases(f"{lexical.index}*"):
        cleaner.delete_index(name)


@pytest.fixture
def configured(settings):
    """For code that builds its client from settings alone (CLI, index build): no test-only node class.

    Elasticsearch's client then needs a real cluster (``ES_URL``): osmem-server
    refuses its vendor media types.
    """
    if settings.backend == "elasticsearch" and not os.environ.get("ES_URL"):
        pytest.skip("Elasticsearch's own client needs ES_URL (osmem-server refuses its media types)")
    return settings


def live(settings):
    return server_retriever(settings)


def found(settings, query: str) -> list[str]:
    return [c.product_id for c in live(settings).search(query, 10)]


def test_first_reindex_creates_the_alias(settings):
    report = reindex(OLD, settings, retriever=live(settings))
    assert report.products == 2 and report.previous == [] and report.index.startswith(f"{settings.index}-")
    assert Reindexer(settings, retriever=live(settings)).current() == [report.index]
    assert found(settings, "sofa") == ["a"]
    assert live(settings).count() == 2


def test_reindex_swaps_to_the_new_catalog_and_keeps_old_versions(settings):
    first = reindex(OLD, settings, keep=1, retriever=live(settings))
    second = reindex(NEW, settings, keep=1, retriever=live(settings))
    assert second.previous == [first.index]
    assert found(settings, "table") == [] and found(settings, "lamp") == ["c"]
    third = reindex(OLD, settings, keep=1, retriever=live(settings))
    assert third.deleted == [first.index]
    assert list(Reindexer(settings, retriever=live(settings)).versions()) == [second.index, third.index]


def test_rollback_points_the_alias_at_the_previous_version(settings):
    first = reindex(OLD, settings, retriever=live(settings))
    second = reindex(NEW, settings, retriever=live(settings))
    assert rollback(settings, live(settings)) == (second.index, first.index)
    assert found(settings, "table") == ["b"]
    with pytest.raises(ConfigError, match="nothing to roll back to"):
        rollback(settings, live(settings))


def test_failed_load_leaves_the_alias_and_versions_as_they_were(settings):
    first = reindex(OLD, settings, retriever=live(settings))
    with pytest.raises(TypeError):
        reindex([NEW[0], {"id": "x", "title": "not a product"}], settings, retriever=live(settings))
    assert list(Reindexer(settings, retriever=live(settings)).versions()) == [first.index]
    assert Reindexer(settings, retriever=live(settings)).current() == [first.index]
    with pytest.raises(ConfigError, match="catalog is empty"):
        reindex([], settings, retriever=live(settings))
    assert list(Reindexer(settings, retriever=live(settings)).versions()) == [first.index]


def test_writes_before_any_reindex_go_to_a_first_version_behind_the_alias(settings):
    retriever = live(settings)
    retriever.add(OLD)
    [first] = Reindexer(settings, retriever=retriever).current()
    assert first.startswith(f"{settings.index}-")
    second = reindex(NEW, settings, retriever=live(settings))
    assert second.previous == [first]


def test_a_plain_index_in_the_alias_place_is_a_config_error(settings):
    live(settings).create_index(settings.index)
    with pytest.raises(ConfigError, match="is an index, not an alias"):
        reindex(OLD, settings, retriever=live(settings))


def write_catalog(path: Path, products) -> Path:
    path.write_text("".join(json.dumps(p.to_record()) + "\n" for p in products), encoding="utf-8")
    return path


def settings_file(tmp_path: Path, lexical) -> Path:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"lexical": lexical.model_dump(mode="json")}), encoding="utf-8")
    return path


def test_cli_reindex_and_rollback(configured, tmp_path):
    settings = configured
    config = settings_file(tmp_path, settings)
    runner = CliRunner()
    for catalog in (OLD, NEW):
        result = runner.invoke(main, ["--settings", str(config), "reindex", "--catalog",
                                      str(write_catalog(tmp_path / "catalog.jsonl", catalog))])
        assert result.exit_code == 0, result.output
        assert f"alias '{settings.index}' now points at" in " ".join(result.output.split())  # rich wraps lines
    result = runner.invoke(main, ["--settings", str(config), "reindex", "--rollback"])
    assert result.exit_code == 0, result.output
    assert found(settings, "table") == ["b"]


def test_cli_reindex_explains_wrong_backend_without_a_traceback(tmp_path):
    result = CliRunner().invoke(main, ["reindex", "--catalog", str(write_catalog(tmp_path / "c.jsonl", OLD))])
    assert result.exit_code == 2
    assert "reindex rebuilds a server index" in result.output


def test_script_runs_the_cli_command(configured, tmp_path):
    settings = configured
    config = settings_file(tmp_path, settings)
    script = Path(__file__).parents[2] / "scripts" / "reindex.py"
    done = subprocess.run([sys.executable, str(script), "--settings", str(config), "--catalog",
                           str(write_catalog(tmp_path / "catalog.jsonl", OLD))],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert found(settings, "sofa") == ["a"]


def test_full_index_build_with_a_server_leg_swaps_the_alias(configured, tmp_path):
    config = Settings(index_dir=tmp_path / "index", lexical=configured, dense={"enabled": False})
    build_index(OLD, config, progress=False)
    build_index(NEW, config, progress=False)
    assert len(Reindexer(configured).versions()) == 2
    assert [hit.product.id for hit in open_pipeline(config).run("lamp").hits] == ["c"]
