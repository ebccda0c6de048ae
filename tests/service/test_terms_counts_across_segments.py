"""A terms aggregation on the embedded index counts every match exactly, as Elasticsearch counts one shard: the
index is one shard, but tantivy counts each segment (a build's batches, each update in place) and kept only the
top terms of each, so a term below the cut in one segment went uncounted there."""

from __future__ import annotations

import pytest

from search_rerank.core.product import Product
from search_rerank.core.settings import Settings
from search_rerank.indexing.indexes import build_index, open_pipeline, update_index
from search_rerank.serving import create_app

# The first segment: twenty brands of two products each, and one "Zeta" product; the second: three more Zeta.
# Zeta's five products are the most, but in the first segment it is below ten times the size asked.
FIRST = [Product(id=f"b{i}-{n}", title="lamp", brand=f"Brand {i:02d}") for i in range(20) for n in range(2)]
FIRST.append(Product(id="zeta-0", title="lamp", brand="Zeta"))
SECOND = [Product(id=f"zeta-{n}", title="lamp", brand="Zeta") for n in range(1, 5)]


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    settings = Settings(index_dir=tmp_path_factory.mktemp("segments") / "idx", dense={"enabled": False})
    build_index(FIRST, settings, progress=False)
    update_index(SECOND, [], settings)
    pipeline = open_pipeline(settings)
    yield create_app(settings, pipeline).test_client()
    pipeline.close()


def test_a_terms_facet_counts_a_value_below_one_segments_cut_in_every_segment(client):
    body = {"size": 0, "aggs": {"brands": {"terms": {"field": "brand.keyword", "size": 1}}}}
    answer = client.post("/products/_search", json=body).get_json()["aggregations"]["brands"]
    assert answer["buckets"] == [{"key": "Zeta", "doc_count": 5}]
    assert answer["doc_count_error_upper_bound"] == 0
    assert answer["sum_other_doc_count"] == 40
