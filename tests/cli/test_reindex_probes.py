"""Catalogues as shops' batch reindex jobs hand them to the real command: Google Merchant Center text feeds as the
Merchant Center writes their header, and updates that would empty the served index."""

from __future__ import annotations

import pytest
from command_line import refused, run

from search_rerank.core.settings import Settings
from search_rerank.indexing.indexes import open_pipeline

FEED_SPACED = (
    "id\ttitle\tdescription\tlink\timage link\tprice\tproduct type\tcolor\tage group\n"
    "t-1\tOak table\tSolid oak\thttps://shop.example/t-1\thttps://shop.example/t-1.jpg\t1,299.00 USD\t"
    "Home > Furniture > Tables\tBrown/Black\tadult\n"
)
CATALOG = '{"id": "a", "title": "red sofa"}\n{"id": "b", "title": "oak table"}\n'


def found(index_dir, query: str) -> list[str]:
    pipeline = open_pipeline(Settings(index_dir=index_dir, dense={"enabled": False}))
    try:
        return [hit.product.id for hit in pipeline.run(query).hits]
    finally:
        pipeline.close()


@pytest.fixture
def index_dir(tmp_path):
    catalog = tmp_path / "catalog.jsonl"
    catalog.write_text(CATALOG, encoding="utf-8")
    built = run("--index-dir", str(tmp_path / "idx"), "index", "--no-dense", "--catalog", str(catalog))
    assert built.exit_code == 0, built.output
    return tmp_path / "idx"


def test_a_merchant_text_feed_naming_its_attributes_with_spaces_is_read_as_a_feed(tmp_path):
    """Merchant Center's text feeds may name attributes as its help pages write them ("image link"); only XML needs
    the underscore. Read as a plain catalog, the price "1,299.00 USD" was refused and the category kept as text."""
    feed = tmp_path / "products.txt"
    feed.write_text(FEED_SPACED, encoding="utf-8")
    result = run("--index-dir", str(tmp_path / "idx"), "index", "--no-dense", "--catalog", str(feed))
    assert result.exit_code == 0, result.output
    pipeline = open_pipeline(Settings(index_dir=tmp_path / "idx", dense={"enabled": False}))
    [table] = pipeline.store.get(["t-1"]).values()
    pipeline.close()
    assert (table.price, table.category) == (1299.0, ("Home", "Furniture", "Tables"))
    assert table.attributes == {"color": ("Brown", "Black"), "age_group": ("adult",)}
    assert table.extra["image_link"] == "https://shop.example/t-1.jpg"


def test_an_incremental_update_deleting_every_product_is_refused_and_the_served_index_kept(index_dir, tmp_path):
    """A full build of an empty catalogue is refused; an update that empties the served index is the same mistake
    (a delete file made from the whole catalogue), and left the service with nothing to find."""
    every = tmp_path / "every.txt"
    every.write_text("a\nb\n", encoding="utf-8")
    empty = tmp_path / "none.jsonl"
    empty.write_text("", encoding="utf-8")
    result = run(
        "--index-dir", str(index_dir), "index", "--no-dense", "--incremental", "--catalog", str(empty),
        "--delete", str(every),
    )  # fmt: skip
    assert "no product" in refused(result)
    assert found(index_dir, "table") == ["b"]


def test_a_csv_export_naming_its_separator_for_excel_on_its_first_line_is_read(tmp_path):
    """Exports made to open in Excel start "sep=;"; read as the header, every row was refused as one of too many
    cells, on a line that was the real header."""
    export = tmp_path / "export.csv"
    export.write_bytes(b"sep=;\r\nid;title;brand\r\np1;Tisch, Eiche;Acme\r\np2;Lampe;Messing\r\n")
    result = run("--index-dir", str(tmp_path / "idx"), "index", "--no-dense", "--catalog", str(export))
    assert result.exit_code == 0, result.output
    assert found(tmp_path / "idx", "Tisch") == ["p1"]


def test_a_bad_row_after_an_excel_separator_line_is_named_by_its_own_line(tmp_path):
    export = tmp_path / "export.csv"
    export.write_bytes(b"sep=;\r\nid;title;price\r\np1;Tisch;12.5\r\np2;Lampe;cheap\r\n")
    message = refused(run("--index-dir", str(tmp_path / "idx"), "index", "--no-dense", "--catalog", str(export)))
    assert f"{export}:4:" in message and "cheap" in message
