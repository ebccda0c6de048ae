"""A generated catalog indexed into both legs and searched through the pipeline and the CLI."""

import time

import pytest
from click.testing import CliRunner

from search_rerank.cli import main
from search_rerank.core.filters import Filters
from search_rerank.data.loaders import iter_catalog, load_beir
from search_rerank.evaluation.evaluate import evaluate
from search_rerank.indexing.indexes import build_index, open_pipeline


@pytest.fixture(scope="module")
def indexed(built_index, tiny_bert_dir):
    built = built_index(products=600, queries=120, seed=3, dense={"model": str(tiny_bert_dir)})
    return built.data, built.settings, built.report


def test_index_reports_every_product_in_both_legs(indexed):
    _, settings, report = indexed
    pipeline = open_pipeline(settings)
    assert report.products == 600
    assert pipeline.legs["lexical"].count() == pipeline.legs["dense"].count() == 600


def test_search_returns_hits_from_both_legs(indexed):
    _, settings, _ = indexed
    result = open_pipeline(settings).run("sofa", size=10)
    assert len(result.hits) == 10
    assert any("lexical" in h.candidate.legs for h in result.hits)
    assert result.ranking.skipped["rerank"] == "no reranker model configured"


def test_filters_apply_to_every_hit(indexed):
    _, settings, _ = indexed
    f = Filters(category="Furniture", price_max=500)
    for hit in open_pipeline(settings).run("table", f, size=20).hits:
        assert f.matches(hit.product)


def test_pagination_neither_repeats_nor_drops(indexed):
    _, settings, _ = indexed
    pipeline = open_pipeline(settings)
    whole = [h.product.id for h in pipeline.run("chair", size=30).hits]
    pages = [h.product.id for off in (0, 10, 20) for h in pipeline.run("chair", size=10, offset=off).hits]
    assert pages == whole


def test_failing_leg_degrades_to_the_other(indexed):
    _, settings, _ = indexed
    pipeline = open_pipeline(settings)

    class Down:
        name = "dense"

        def search(self, *a, **k):
            raise ConnectionError("dense leg unreachable")

        def warm_up(self):
            pass

    pipeline.legs["dense"] = Down()
    result = pipeline.run("sofa", size=5)
    assert "dense" in result.degraded
    assert len(result.hits) == 5


def test_failed_rebuild_leaves_serving_index_untouched(indexed, tmp_path):
    data, settings, _ = indexed
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x1", "title": "ok"}\n{"id": "x2"}\n')
    with pytest.raises(Exception, match="bad.jsonl:2"):
        build_index(iter_catalog(bad), settings, progress=False)
    assert open_pipeline(settings).store.count() == 600


def test_evaluate_scores_every_judged_query_for_every_configuration(indexed):
    data, settings, _ = indexed
    queries, qrels = load_beir(data).split("test")
    report = evaluate(open_pipeline(settings), queries, qrels, progress=False)
    assert report.queries == len(qrels)
    assert [r.config for r in report.rows] == ["bm25", "dense", "hybrid-rrf", "hybrid-linear", "hybrid-linear+longtail"]
    bm25 = report.row("bm25").metrics
    assert 0 < bm25["nDCG@10"] <= 1 and 0 < bm25["lt_share@10"] <= 1


def test_evaluation_waits_for_a_slow_leg_instead_of_dropping_it(indexed):
    """Quality numbers must not depend on how busy the machine is: offline runs have no stage deadlines."""
    data, settings, _ = indexed
    pipeline = open_pipeline(settings.override(dense={"timeout_s": 0.05}))
    dense = pipeline.legs["dense"]

    class Slow:
        name = "dense"

        def search(self, *args, **kwargs):
            time.sleep(0.2)
            return dense.search(*args, **kwargs)

        def warm_up(self):
            pass

    pipeline.legs["dense"] = Slow()
    assert "dense" in pipeline.run("sofa").degraded
    queries, qrels = load_beir(data).split("test")
    few = dict(list(qrels.items())[:3])
    report = evaluate(pipeline, queries, few, progress=False)
    assert report.row("dense").status == "ok" and report.row("dense").metrics["nDCG@10"] > 0


def test_cli_search_prints_a_table(indexed):
    _, settings, _ = indexed
    result = CliRunner().invoke(
        main,
        ["--index-dir", str(settings.index_dir), "search", "lamp", "--size", "3"],
        env={"SEARCH_RERANK_DENSE__MODEL": settings.dense.model},
    )
    assert result.exit_code == 0, result.output
    assert "lamp" in result.output.lower()


def test_cli_bad_catalog_row_names_file_and_line(tmp_path):
    bad = tmp_path / "cat.jsonl"
    bad.write_text('{"id": "1", "title": "fine"}\n{"id": "2", "price": "cheap", "title": "t"}\n')
    result = CliRunner().invoke(
        main, ["--index-dir", str(tmp_path / "i"), "index", "--catalog", str(bad), "--no-dense"]
    )
    assert result.exit_code == 1
    assert "cat.jsonl:2" in result.output
