"""Versioned builds with a server lexical leg: alias and pointer swapped together, rollback, recovery."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from servers import script_command, server_retriever, server_settings

from search_rerank.cli import main
from search_rerank.core.errors import ConfigError, DataError
from search_rerank.core.product import Product
from search_rerank.core.settings import Settings
from search_rerank.data.loaders import iter_catalog
from search_rerank.indexing.indexes import build_index, open_pipeline, read_manifest, rollback_index, update_index
from search_rerank.indexing.reindex import Reindexer
from search_rerank.indexing.versions import POINTER, IndexVersions

OLD = [Product(id="a", title="red sofa"), Product(id="b", title="oak table")]
NEW = [Product(id="a", title="red sofa"), Product(id="c", title="brass lamp")]


@pytest.fixture
def lexical(server_engine, request):
    """Lexical settings naming an alias that does not exist yet; every version is deleted afterwards."""
    settings = server_settings(server_engine, request)
    yield settings
    cleaner = server_retriever(settings)
    for name in cleaner.aliases(f"{settings.index}*"):
        cleaner.delete_index(name)


@pytest.fixture
def settings(lexical, tmp_path) -> Settings:
    """For code that builds its client from settings alone (builds, the CLI), as a deployment does."""
    return Settings(index_dir=tmp_path / "index", lexical=lexical, dense={"enabled": False})


def reindexer(lexical) -> Reindexer:
    return Reindexer(lexical, retriever=server_retriever(lexical))


def found(settings: Settings, query: str) -> list[str]:
    return [hit.product.id for hit in open_pipeline(settings).run(query).hits]


# ------------------------------------------------------------------ the alias alone


def test_point_to_moves_the_alias_in_one_step_and_can_remove_it(lexical):
    alias = reindexer(lexical)
    first, second = alias.start("20250101-000000-000001"), alias.start("20250101-000000-000002")
    assert alias.point_to([first.index]) == []
    assert alias.point_to([second.index]) == [first.index]
    assert alias.current() == [second.index]
    assert alias.point_to([]) == [second.index]
    assert not alias.live.exists(lexical.index)
    with pytest.raises(ConfigError, match="is gone"):
        alias.point_to([f"{lexical.index}-20250101-000000-000009"])


def test_prune_keeps_retained_versions_and_the_one_behind_the_alias(lexical):
    alias = reindexer(lexical)
    names = [alias.start(f"20250101-000000-00000{i}").index for i in range(3)]
    alias.point_to([names[2]])
    assert alias.prune([names[1]]) == [names[0]]
    assert list(alias.versions()) == names[1:]


def test_a_plain_index_in_the_alias_place_is_a_config_error(lexical):
    alias = reindexer(lexical)
    alias.live.create_index(lexical.index)
    with pytest.raises(ConfigError, match="is an index, not an alias"):
        alias.start("20250101-000000-000001")


# ------------------------------------------------------------------ versioned builds


def test_build_moves_alias_and_pointer_together_and_keeps_old_versions(settings):
    first = build_index(OLD, settings, progress=False, keep=1)
    assert first.lexical_index == f"{settings.lexical.index}-{first.version}"
    assert reindexer(settings.lexical).current() == [first.lexical_index]
    assert read_manifest(settings)["lexical_index"] == first.lexical_index
    second = build_index(NEW, settings, progress=False, keep=1)
    assert second.previous == first.version
    assert found(settings, "table") == [] and found(settings, "lamp") == ["c"]
    third = build_index(OLD, settings, progress=False, keep=1)
    assert third.pruned == [first.version]
    assert IndexVersions(settings.index_dir).complete() == [second.version, third.version]
    assert list(reindexer(settings.lexical).versions()) == [second.lexical_index, third.lexical_index]


def test_rollback_moves_alias_and_pointer_back(settings):
    first = build_index(OLD, settings, progress=False)
    second = build_index(NEW, settings, progress=False)
    assert rollback_index(settings) == (second.version, first.version)
    assert reindexer(settings.lexical).current() == [first.lexical_index]
    assert found(settings, "table") == ["b"]
    with pytest.raises(ConfigError, match="nothing to roll back to"):
        rollback_index(settings)


def test_failed_build_leaves_alias_pointer_and_versions_as_they_were(settings, tmp_path):
    first = build_index(OLD, settings, progress=False)
    broken = write_catalog(tmp_path / "broken.jsonl", NEW)
    broken.write_text(broken.read_text(encoding="utf-8") + "{not json\n", encoding="utf-8")
    for bad, error in ((iter_catalog(broken), DataError), ([], ConfigError)):
        with pytest.raises(error):
            build_index(bad, settings, progress=False, batch_size=1)
        assert IndexVersions(settings.index_dir).complete() == [first.version]
        assert list(reindexer(settings.lexical).versions()) == [first.lexical_index]
        assert reindexer(settings.lexical).current() == [first.lexical_index]
        assert found(settings, "table") == ["b"]


def test_a_failed_pointer_write_moves_the_alias_back(settings):
    first = build_index(OLD, settings, progress=False)
    # A directory where the pointer's temporary file goes: the pointer cannot be written.
    (settings.index_dir / f".{POINTER}.{os.getpid()}.tmp").mkdir()
    with pytest.raises(IsADirectoryError):
        build_index(NEW, settings, progress=False)
    assert reindexer(settings.lexical).current() == [first.lexical_index]
    assert found(settings, "table") == ["b"]


def test_an_alias_left_on_an_unserved_version_is_moved_back_by_the_next_writer(settings):
    first = build_index(OLD, settings, progress=False)
    second = build_index(NEW, settings, progress=False)
    # As a rollback killed between its two swaps leaves things: alias moved, pointer not.
    reindexer(settings.lexical).point_to([first.lexical_index])
    update_index([Product(id="d", title="wool rug")], [], settings, progress=False)
    assert reindexer(settings.lexical).current() == [second.lexical_index]
    assert found(settings, "rug") == ["d"] and found(settings, "lamp") == ["c"]


def test_incremental_update_changes_the_served_version_in_place(settings):
    first = build_index(OLD, settings, progress=False)
    report = update_index([Product(id="c", title="brass lamp")], ["b"], settings, progress=False)
    assert (report.version, report.deleted) == (first.version, 1)
    assert found(settings, "lamp") == ["c"] and found(settings, "table") == []
    assert read_manifest(settings)["products"] == 2 and "updated" in read_manifest(settings)


def test_writes_before_any_build_go_to_a_first_version_behind_the_alias(lexical):
    retriever = server_retriever(lexical)
    retriever.add(OLD)
    [first] = reindexer(lexical).current()
    assert first.startswith(f"{lexical.index}-")


# ------------------------------------------------------------------ command line


def write_catalog(path: Path, products) -> Path:
    path.write_text("".join(json.dumps(p.to_record()) + "\n" for p in products), encoding="utf-8")
    return path


def settings_file(tmp_path: Path, settings: Settings) -> Path:
    path = tmp_path / "settings.json"
    path.write_text(
        json.dumps(settings.model_dump(mode="json", include={"index_dir", "lexical", "dense"})), encoding="utf-8"
    )
    return path


def test_cli_reindex_and_rollback(settings, tmp_path):
    config = settings_file(tmp_path, settings)
    runner = CliRunner()
    for catalog in (OLD, NEW):
        result = runner.invoke(
            main,
            [
                "--settings",
                str(config),
                "reindex",
                "--catalog",
                str(write_catalog(tmp_path / "catalog.jsonl", catalog)),
            ],
        )
        assert result.exit_code == 0, result.output
        assert f"alias '{settings.lexical.index}' now points at" in " ".join(result.output.split())
    result = runner.invoke(main, ["--settings", str(config), "reindex", "--rollback"])
    assert result.exit_code == 0, result.output
    assert found(settings, "table") == ["b"]


def test_cli_reindex_explains_what_is_missing_without_a_traceback(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["--index-dir", str(tmp_path / "none"), "reindex"])
    assert result.exit_code == 2 and "--catalog is required" in result.output
    result = runner.invoke(main, ["--index-dir", str(tmp_path / "none"), "reindex", "--rollback"])
    assert result.exit_code == 1 and "holds no versions" in result.output
    assert "Traceback" not in result.output


def test_script_runs_the_cli_command(settings, tmp_path):
    script = Path(__file__).parents[2] / "scripts" / "reindex.py"
    command = script_command(
        script,
        "--settings",
        str(settings_file(tmp_path, settings)),
        "--catalog",
        str(write_catalog(tmp_path / "catalog.jsonl", OLD)),
    )
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert found(settings, "sofa") == ["a"]
