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
