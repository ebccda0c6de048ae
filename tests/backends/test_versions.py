"""Versions of an embedded (tantivy) index directory: pointer, keep, rollback, leftovers, the write lock."""

from __future__ import annotations

import json

import pytest

from search_rerank.backends import tantivy_index
from search_rerank.core.errors import ConfigError
from search_rerank.core.product import Product
from search_rerank.core.settings import Settings
from search_rerank.core.store import ProductStore
from search_rerank.indexing.indexes import (
    STORE_FILE,
    build_index,
    lexical_index_current,
    lexical_index_opens,
    open_pipeline,
    read_manifest,
    rollback_index,
    update_index,
)
from search_rerank.indexing.versions import POINTER, IndexVersions
from search_rerank.serving import create_app

OLD = [Product(id="a", title="red sofa"), Product(id="b", title="oak table")]
NEW = [Product(id="a", title="red sofa"), Product(id="c", title="brass lamp")]


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(index_dir=tmp_path / "index", dense={"enabled": False})


def found(settings: Settings, query: str) -> list[str]:
    return [hit.product.id for hit in open_pipeline(settings).run(query).hits]


def test_each_build_is_a_version_and_the_pointer_names_the_served_one(settings):
    first = build_index(OLD, settings, progress=False)
    second = build_index(NEW, settings, progress=False)
    pointer = json.loads((settings.index_dir / POINTER).read_text(encoding="utf-8"))
    assert pointer == {"version": second.version} and second.previous == first.version
    assert read_manifest(settings)["version"] == second.version
    assert found(settings, "lamp") == ["c"] and found(settings, "table") == []


def test_keep_limits_old_versions_and_rollback_serves_the_previous_one(settings):
    reports = [build_index(catalog, settings, progress=False, keep=1) for catalog in (OLD, NEW, OLD, NEW)]
    assert IndexVersions(settings.index_dir).complete() == [reports[2].version, reports[3].version]
    assert rollback_index(settings) == (reports[3].version, reports[2].version)
    assert found(settings, "table") == ["b"]
    with pytest.raises(ConfigError, match="nothing to roll back to"):
        rollback_index(settings)


def test_a_pipeline_opened_before_a_build_keeps_answering_from_its_version(settings):
    build_index(OLD, settings, progress=False)
    before = open_pipeline(settings)
    build_index(NEW, settings, progress=False)
    assert [hit.product.id for hit in before.run("table").hits] == ["b"]


def test_incomplete_versions_are_ignored_and_deleted_by_the_next_build(settings):
    first = build_index(OLD, settings, progress=False)
    versions = IndexVersions(settings.index_dir)
    name, leftover = versions.create()  # what a build killed before its manifest leaves
    (leftover / "products.sqlite").write_bytes(b"half written")
    assert versions.complete() == [first.version] and found(settings, "table") == ["b"]
    with pytest.raises(ConfigError, match="not complete"):
        versions.point_to(name)
    build_index(NEW, settings, progress=False)
    assert not leftover.exists()


def test_a_second_writer_is_refused_while_the_lock_is_held(settings):
    build_index(OLD, settings, progress=False)
    with IndexVersions(settings.index_dir).locked():
        with pytest.raises(ConfigError, match="another build, update or rollback is running"):
            build_index(NEW, settings, progress=False)
    assert found(settings, "table") == ["b"]


def test_incremental_update_writes_into_the_served_version(settings):
    first = build_index(OLD, settings, progress=False)
    report = update_index([Product(id="c", title="brass lamp")], ["b"], settings, progress=False)
    assert report.version == first.version and report.deleted == 1
    assert found(settings, "lamp") == ["c"] and found(settings, "table") == []


def test_a_directory_from_before_versions_is_still_served(settings):
    build_index(OLD, settings, progress=False)
    versions = IndexVersions(settings.index_dir)
    [name] = versions.complete()
    legacy = Settings(index_dir=versions.path(name), dense={"enabled": False})  # manifest at its top, no pointer
    assert found(legacy, "table") == ["b"]


def test_a_pointer_to_a_missing_version_is_a_clear_error(settings):
    build_index(OLD, settings, progress=False)
    (settings.index_dir / POINTER).write_text(json.dumps({"version": "20000101-000000-000000"}), encoding="utf-8")
    with pytest.raises(ConfigError, match="does not hold"):
        open_pipeline(settings)
    build_index(NEW, settings, progress=False)  # the fix the message gives
    assert found(settings, "lamp") == ["c"]


def test_no_index_is_a_clear_error(settings):
    with pytest.raises(ConfigError, match="no index at"):
        open_pipeline(settings)
    with pytest.raises(ConfigError, match="holds no versions"):
        rollback_index(settings)


@pytest.mark.parametrize("title", ["★★★★★", "🛋️", "-", "北欧風ファブリックソファ三人掛けグレー"])
def test_a_catalog_whose_last_title_has_no_searchable_word_builds(settings, title):
    """The built version is checked by finding a product by its title; this one's words no index keeps, or (a
    long run of Japanese) the probe does not count as one."""
    build_index([*OLD, Product(id="z", title=title)], settings, progress=False)
    assert found(settings, "sofa") == ["a"]


def test_a_catalog_whose_last_title_a_hundred_and_more_products_share_builds(settings):
    """The probe ties with every product of its title; where more of them share it than the check reads, any of
    them may come first, and that says nothing wrong of the index."""
    same = [Product(id=f"f{i:03d}", title="Replacement water filter") for i in range(150)]
    build_index([*OLD, *same], settings, progress=False)
    assert found(settings, "sofa") == ["a"]


def test_the_title_check_searches_a_product_as_its_last_record_was_indexed(settings):
    catalog = [*OLD, Product(id="b", title="★★★")]  # "b" again, its last record without a searchable word
    build_index(catalog, settings, batch_size=1, progress=False)
    assert found(settings, "table") == []


@pytest.fixture
def schema_2_index(settings, monkeypatch) -> Settings:
    """A version built before Chinese and Japanese were cut into words: schema version 2 named its analyzer so."""
    with monkeypatch.context() as patched:
        patched.setattr(tantivy_index, "ANALYZER_NAME", "search_rerank_en")
        build_index(OLD, settings, progress=False)
    return settings


def test_service_refuses_to_start_on_an_index_of_an_older_schema_and_says_how_to_rebuild(schema_2_index):
    with pytest.raises(SystemExit, match=r"cannot start: .*`search-rerank index --catalog PATH`"):
        create_app(schema_2_index)


def test_incremental_update_of_an_index_of_an_older_schema_is_refused_before_it_writes(schema_2_index):
    with pytest.raises(ConfigError, match="an --incremental update cannot convert it"):
        update_index([Product(id="c", title="brass lamp")], ["b"], schema_2_index, progress=False)
    served = IndexVersions(schema_2_index.index_dir).serving_dir()
    assert sorted(ProductStore(served / STORE_FILE).get(["a", "b", "c"])) == ["a", "b"]


def test_a_new_build_serves_again_after_an_index_of_an_older_schema(schema_2_index):
    build_index(NEW, schema_2_index, progress=False)  # the fix the message gives
    assert found(schema_2_index, "lamp") == ["c"]


def test_a_rollback_to_a_version_of_an_older_schema_is_refused_and_the_served_version_stays(schema_2_index):
    old = IndexVersions(schema_2_index.index_dir).current()
    build_index(NEW, schema_2_index, progress=False)
    new = IndexVersions(schema_2_index.index_dir).current()
    with pytest.raises(ConfigError, match=f"version '{old}' cannot be served by this release"):
        rollback_index(schema_2_index)
    assert IndexVersions(schema_2_index.index_dir).current() == new
    assert found(schema_2_index, "lamp") == ["c"]


@pytest.fixture
def schema_4_index(settings, monkeypatch) -> Settings:
    """A version built before words were folded to ASCII: schema version 4, whose fields are those of 5."""
    with monkeypatch.context() as patched:
        patched.setattr(tantivy_index, "ANALYZER_NAME", tantivy_index.UNFOLDED_ANALYZER_NAME)
        build_index(
            [*OLD, Product(id="c", title="GE Café Range"), Product(id="e", title="½ in. Tee")], settings, progress=False
        )
    return settings


def test_an_index_of_schema_4_is_served_with_the_words_it_was_written_with(schema_4_index):
    # Its terms keep their accents, so a query is cut as they were: "café" finds it, as it did.
    assert found(schema_4_index, "café") == ["c"]


def test_an_index_of_schema_4_finds_a_fraction_character_as_it_was_written(schema_4_index):
    # It holds "½" as a word of its own, not spelled out: the character finds it, as it did, and "1/2" does not.
    assert (found(schema_4_index, "½"), found(schema_4_index, "1/2")) == (["e"], [])


def test_an_index_of_schema_4_opens_but_is_not_current(schema_4_index):
    # Served until the next build, but a benchmark or the demo builds it again: they measure and show this release.
    served = IndexVersions(schema_4_index.index_dir).serving_dir()
    assert (
        lexical_index_opens(served, schema_4_index.lexical),
        lexical_index_current(served, schema_4_index.lexical),
    ) == (
        True,
        False,
    )


def test_an_index_built_by_this_release_is_current(settings):
    build_index(OLD, settings, progress=False)
    assert lexical_index_current(IndexVersions(settings.index_dir).serving_dir(), settings.lexical)


def test_an_index_of_schema_4_takes_incremental_updates_in_its_own_words(schema_4_index):
    update_index([Product(id="d", title="Crème Brûlée Torch")], [], schema_4_index, progress=False)
    assert found(schema_4_index, "crème") == ["d"]
