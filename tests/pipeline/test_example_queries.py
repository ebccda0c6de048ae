"""The README's example queries, answered by what ``make demo`` serves, return what a shopper expects.

The fixture runs the demo's own steps (``search-rerank demo --no-serve``:
the same 5,000-product catalogue and seed, the same index, reranker and ranker
training and tuning) in a temporary directory, then asks the served settings. Checks go
by product type and attributes, never by ids, so they hold for any catalogue
the generator makes that has enough of the products asked for; each test
first checks that the catalogue has them, so it cannot pass vacuously.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from search_rerank.cli.demo import DemoPlan, prepare
from search_rerank.core.filters import Filters
from search_rerank.core.product import Product
from search_rerank.core.settings import load_settings
from search_rerank.data.loaders import iter_catalog
from search_rerank.indexing.indexes import open_pipeline

# The first test builds the whole demo (index, reranker training, tuning): minutes on two cores, once per module.
pytestmark = [pytest.mark.slow, pytest.mark.long, pytest.mark.timeout(3600)]

TOP = 5
SOFAS = {"Sofas", "Sectionals"}  # couch, sofa, settee, sectional: what a couch query asks for


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[DemoPlan, Path]:
    root = tmp_path_factory.mktemp("demo")
    plan = DemoPlan(data=root / "data", index_dir=root / "index", models_dir=root / "models")
    return plan, prepare(plan)


@pytest.fixture(scope="module")
def catalogue(demo) -> list[Product]:
    return list(iter_catalog(demo[0].data))


@pytest.fixture(scope="module")
def search(demo):
    pipeline = open_pipeline(load_settings(demo[1]).offline())  # a busy test machine must not time the reranker out

    def run(query: str, filters: Filters | None = None):
        return pipeline.run(query, filters, size=TOP)

    yield run
    pipeline.close()


def kind(product: Product) -> str:
    return product.category[-1]


def materials(product: Product) -> tuple[str, ...]:
    return product.attributes.get("material", ())


def is_oak_dining_table(product: Product) -> bool:
    return product.category[-2:] == ("Dining Room", "Tables") and "oak" in materials(product)


def is_red_leather_sofa(product: Product) -> bool:
    return (
        kind(product) in SOFAS
        and "red" in product.attributes.get("color", ())
        and any("leather" in m for m in materials(product))
    )


def describe(products: list[Product]) -> list[str]:
    return [f"{p.title} ({' > '.join(p.category)}; {p.attributes})" for p in products]


def test_demo_serves_the_reranker_and_the_learned_ranker(search):
    result = search("couch", Filters(price_max=800))
    for stage in ("rerank", "ltr"):
        assert stage not in result.ranking.skipped
        assert stage not in result.degraded


def test_couch_under_800_returns_sofas_under_800(search, catalogue):
    assert sum(kind(p) in SOFAS and p.price is not None and p.price <= 800 for p in catalogue) >= TOP
    top = [hit.product for hit in search("couch", Filters(price_max=800)).hits]
    assert len(top) == TOP
    assert all(kind(p) in SOFAS and p.price is not None and p.price <= 800 for p in top), describe(top)


def test_red_leather_sofa_returns_red_leather_sofas(search, catalogue):
    assert sum(map(is_red_leather_sofa, catalogue)) >= TOP
    top = [hit.product for hit in search("red leather sofa").hits]
    assert len(top) == TOP
    assert all(map(is_red_leather_sofa, top)), describe(top)


def test_oak_dining_table_returns_oak_dining_tables(search, catalogue):
    assert sum(map(is_oak_dining_table, catalogue)) >= TOP
    top = [hit.product for hit in search("oak dining table").hits]
    assert len(top) == TOP
    assert all(map(is_oak_dining_table, top)), describe(top)
