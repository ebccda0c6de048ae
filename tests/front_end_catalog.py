"""The small catalogue front-end request bodies are checked against: the compatibility suite and the delegation
tests search the same nine products, so that what one expects of a body the other can rely on."""

from __future__ import annotations

from search_rerank.core.product import Product


def product(pid, title, brand, category, price, color=None, rating=None, sales=0, description="", added=None):
    """A catalogue row as the front-end tests write one (the parity test's catalogue is built from it too); ``added``
    is the date the shop added it, a field of the catalog's own (a date range facet's)."""
    return Product(
        id=pid,
        title=title,
        brand=brand,
        category=category,
        price=price,
        attributes={"color": color} if color else {},
        rating=rating,
        sales=sales,
        description=description,
        extra={"created_at": added} if added else {},
    )


CATALOG = [
    product(
        "s1",
        "Corner sofa",
        "Acme",
        "Furniture > Sofas",
        499.0,
        "grey",
        4.1,
        120,
        "a roomy grey corner sofa",
        "2024-05-10",
    ),
    product(
        "s2", "Leather sofa", "Acme", "Furniture > Sofas", 899.0, "brown", 4.7, 40, "a brown leather sofa", "2025-02-01"
    ),
    product(
        "s3",
        "Velvet sofa",
        "Bolt",
        "Furniture > Sofas",
        650.0,
        "blue",
        3.9,
        8,
        "soft velvet sofa in blue",
        "2025-07-15T09:30:00Z",
    ),
    product(
        "s4", "Sofa bed", "Cosy", "Furniture > Sofas", 700.0, "grey", None, 3, "folds out into a bed", "2023-11-30"
    ),
    product(
        "s5",
        "Small grey sofa",
        "Bolt",
        "Furniture > Sofas",
        299.0,
        "grey",
        4.4,
        75,
        "two seat sofa",
        "2025-01-01T00:00:00Z",
    ),
    product(
        "t1", "Oak table", "Bolt", "Furniture > Tables", 249.5, "brown", 4.8, 60, "solid oak dining table", "2022-08-08"
    ),
    product(
        "t2", "Glass table", "Acme", "Furniture > Tables", 199.0, None, 3.5, 22, "a glass coffee table", "2025-03-03"
    ),
    product("l1", "Desk lamp", "Acme", "Lighting", 39.0, "black", 4.2, 15, "a reading lamp", "2024-12-24"),
    product("l2", "Floor lamp", "Dune", "Lighting", 89.0, "white", None, 5, "tall floor lamp"),
]
BY_ID = {p.id: p for p in CATALOG}

MODEL_NUMBERED = [
    product("saw", "DEWALT DW745-B Table Saw", "DEWALT", "Tools > Saws", 399.0),
    product("blade", "10 in. Saw Blade", "Diablo", "Tools > Blades", 39.0, description="Fits DW745-B and DW745-C"),
]
"""Two products a model number typed without its separators ("dw745b") finds: the saw by its title's, the blade
by its description's."""
NOT_MET_BY_A_MODEL_NUMBER_ALONE = [
    {"match": {"title": {"query": "dw745b router", "operator": "and"}}},
    {"match": {"title": {"query": "dw745-b router", "minimum_should_match": "100%"}}},
    {"match_phrase": {"title": "dw745-b router"}},
    {"multi_match": {"query": "dw745b router", "fields": ["title"], "type": "phrase"}},
    {"combined_fields": {"query": "dw745b router", "fields": ["title"], "operator": "AND"}},
]
"""Queries that need every word, "router" being in no product: the saw's code would stand for words it does not
span, so as filters they match nothing on either backend."""

AROUND_A_CODE = [
    Product(id="asked", title="DeWalt DW745-B 10 in. table saw", brand="DeWalt", price=500.0),
    *(
        Product(id=f"saw{n}", title=f"{brand} {kind} saw", brand=brand, price=100.0 + 60 * n)
        for n, (brand, kind) in enumerate(
            (brand, kind) for brand in ("DeWalt", "Bosch", "Makita") for kind in ("table", "miter", "circular", "jig")
        )
    ),
    *(Product(id=f"sofa{i}", title=f"Corner sofa {i}", brand="Acme", price=50.0 + i) for i in range(8)),
]
"""A product a model number names among products like it and others, at prices from 50 to 760."""
CODE_WITHIN_FILTERS = {
    "bool": {
        "must": [{"match": {"title": "dw745b"}}],
        "filter": [{"range": {"price": {"gte": 400}}}],
        "must_not": [{"match": {"title": "miter"}}],
    }
}
"""A front end's search for the model number within a price range and without miter saws, which the products
around it must keep to."""
