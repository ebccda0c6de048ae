"""An ``exists`` on one of the product's text fields matches the products that have a value in it, on both
backends: a product without a description (or brand, category, attributes) is written without one, as its
``_source`` shows it, so ``must_not`` ``exists`` finds the listings a shop has yet to fill in. Elasticsearch
counts an empty string as a value; the catalogue holds no empty string (a missing field and "" are the same
product), so neither backend has one to count."""

from __future__ import annotations

import pytest
from both_backends import backend_fixtures, filtered

from search_rerank.core.product import Product

CATALOG = [
    Product(
        id="full",
        title="Oak table",
        brand="Bolt",
        category=["Furniture", "Tables"],
        attributes={"color": ["brown"]},
        description="a solid oak table",
    ),
    Product(id="bare", title="Corner sofa"),
    Product(id="described", title="Desk lamp", description="a lamp for the desk"),
]
EVERY = sorted(p.id for p in CATALOG)


embedded, client = backend_fixtures(CATALOG)


def test_exists_on_the_description_matches_the_products_with_one(client):
    assert filtered(client, {"exists": {"field": "description"}}) == ["described", "full"]


def test_must_not_exists_on_the_description_finds_the_products_without_one(client):
    assert filtered(client, {"bool": {"must_not": [{"exists": {"field": "description"}}]}}) == ["bare"]


@pytest.mark.parametrize("field", ["brand", "category", "attributes"])
def test_exists_on_a_text_field_matches_only_the_products_with_a_value_in_it(client, field):
    assert filtered(client, {"exists": {"field": field}}) == ["full"]


def test_exists_on_the_title_matches_every_product(client):
    assert filtered(client, {"exists": {"field": "title"}}) == EVERY


def test_a_query_strings_field_star_on_the_description_is_the_same_exists(client):
    assert filtered(client, {"query_string": {"query": "description:*"}}) == ["described", "full"]
