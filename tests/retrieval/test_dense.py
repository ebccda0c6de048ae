"""The FAISS dense leg: exact and approximate search, reference filters, upserts, persistence."""

from __future__ import annotations

import json
import random
import shutil
import threading

import faiss
import numpy as np
import pytest

from search_rerank.backends import faiss_index as dense
from search_rerank.backends.encoder import BiEncoder
from search_rerank.backends.faiss_index import FaissRetriever
from search_rerank.core.errors import ConfigError
from search_rerank.core.filters import Filters
from search_rerank.core.product import Product
from search_rerank.core.retrieval import Retriever

INDEX_TYPES = ["flat", "hnsw", "ivf"]


def make(settings, path=None, **overrides) -> FaissRetriever:
    settings = settings.model_copy(update=overrides)
    retriever = FaissRetriever(BiEncoder(settings), settings, path)
    retriever.warm_up()
    return retriever


def unit_vectors(n: int, dim: int, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def plain_products(n: int, prefix: str = "p") -> list[Product]:
    return [Product(id=f"{prefix}{i}", title=f"item {i}") for i in range(n)]


def ids(hits) -> list[str]:
    return [pid for pid, _ in hits]


def random_catalog(n: int, seed: int = 7) -> list[Product]:
    """Case variants, missing prices, short paths and multi-valued attributes: the edges filters must get right."""
    rng = random.Random(seed)
    paths = [
        "Furniture > Sofas",
        "furniture > Sofas > Corner",
        "Furniture > Tables",
        "Electronics > Audio",
        "ELECTRONICS",
        "Garden > Furniture",
        "",
    ]
    brands = ["Acme", "ACME", "acme ", "Globex", "Initech", ""]
    colours = ["Red", "red", "Blue", "GREEN", "black"]
    products = []
    for i in range(n):
        attributes = {"colour": rng.sample(colours, rng.randint(0, 2))}
        if rng.random() < 0.5:
            attributes["material"] = [rng.choice(["Oak", "oak", "Steel", "leather"])]
        products.append(
            Product(
                id=f"c{i}",
                title=f"{rng.choice(['sofa', 'table', 'speaker', 'lamp'])} {i}",
                brand=rng.choice(brands),
                category=rng.choice(paths),
                price=None if rng.random() < 0.15 else round(rng.uniform(0, 500), 2),
                attributes=attributes,
            )
        )
    return products


FILTERS_BY_KIND = {
    "category": [
        Filters(category="furniture"),
        Filters(category="Furniture > sofas"),
        Filters(category="furniture > sofas > corner"),
        Filters(category="electronics"),
        Filters(category="Sofas"),
        Filters(category="Toys"),
    ],
    "brand": [Filters(brand="acme"), Filters(brand=["Globex", "INITECH"]), Filters(brand="Umbrella")],
    "price": [
        Filters(price_min=100),
        Filters(price_max=250.5),
        Filters(price_min=50, price_max=60),
        Filters(price_min=0),
    ],
    "attributes": [
        Filters(attributes={"colour": "RED"}),
        Filters(attributes={"colour": ["blue", "green"]}),
        Filters(attributes={"colour": "red", "material": "OAK"}),
        Filters(attributes={"size": "xl"}),
        Filters(attributes={"material": "purple"}),
    ],
    "combined": [
        Filters(category="furniture", brand="acme", price_max=400, attributes={"colour": ["red", "black"]}),
        Filters(),
    ],
}


def assert_filters_match_reference(retriever: FaissRetriever, catalog: list[Product], filters: Filters) -> None:
    query = np.ones(retriever._encoder.dim, dtype=np.float32)
    hits = retriever.search_vector(query, k=len(catalog) + 5, filters=filters)
    expected = {p.id for p in catalog if filters.matches(p)}
    assert set(ids(hits)) == expected, filters
    assert len(hits) == len(expected)
    scores = [s for _, s in hits]
    assert scores == sorted(scores, reverse=True)


def test_retriever_implements_protocol_as_dense_leg(tiny_settings):
    retriever = make(tiny_settings)
    retriever.add([Product(id="a", title="red sofa"), Product(id="b", title="usb charger")])
    assert isinstance(retriever, Retriever)
    assert retriever.name == "dense"
    hits = retriever.search("red sofa", 2)
    assert [c.product_id for c in hits][0] == "a"
    assert hits[0].legs == {"dense"}
    assert hits[0].features == {"dense_score": hits[0].score, "dense_rank": 1.0}
    assert hits[1].features["dense_rank"] == 2.0


def test_flat_search_returns_numpy_nearest_neighbours(tiny_settings):
    retriever = make(tiny_settings, index_type="flat")
    dim = retriever._encoder.dim
    vectors = unit_vectors(300, dim)
    retriever.add_vectors(plain_products(300), vectors)
    for query in unit_vectors(10, dim, seed=1):
        scores = vectors @ query
        expected = [f"p{i}" for i in np.argsort(-scores)[:5]]
        hits = retriever.search_vector(query, 5)
        assert ids(hits) == expected
        np.testing.assert_allclose([s for _, s in hits], np.sort(scores)[::-1][:5], atol=1e-5)


@pytest.mark.parametrize("index_type", ["hnsw", "ivf"])
def test_approximate_index_top1_matches_flat_on_random_vectors(tiny_settings, index_type):
    flat = make(tiny_settings, index_type="flat")
    approximate = make(tiny_settings, index_type=index_type)
    dim = flat._encoder.dim
    vectors, products = unit_vectors(2000, dim), plain_products(2000)
    for retriever in (flat, approximate):
        retriever.add_vectors(products, vectors)
    assert approximate.index_type == index_type
    queries = vectors[:50] + 0.05 * unit_vectors(50, dim, seed=2)
    for query in queries:
        [(got, got_score)], [(want, want_score)] = approximate.search_vector(query, 1), flat.search_vector(query, 1)
        assert got == want
        assert got_score == pytest.approx(want_score, abs=1e-5)


@pytest.mark.parametrize("kind", sorted(FILTERS_BY_KIND))
@pytest.mark.parametrize("index_type", INDEX_TYPES)
@pytest.mark.parametrize("exhaustive", [True, False], ids=["exhaustive", "selector"])
def test_filtered_results_are_exactly_the_matching_products(tiny_settings, monkeypatch, kind, index_type, exhaustive):
    if not exhaustive:
        monkeypatch.setattr(dense, "EXACT_SEARCH_MAX_SELECTED", 0)
    catalog = random_catalog(150)
    retriever = make(tiny_settings, index_type=index_type)
    retriever.add(catalog)
    for filters in FILTERS_BY_KIND[kind]:
        assert_filters_match_reference(retriever, catalog, filters)


def test_filters_follow_reference_after_upserts_deletes_and_compaction(tiny_settings):
    catalog = {p.id: p for p in random_catalog(120)}
    retriever = make(tiny_settings)
    retriever.add(catalog.values())
    changed = [
        p.model_copy(update={"brand": "Globex", "attributes": {"colour": ("Blue",)}})
        for p in random_catalog(120, seed=8)[:40]
    ]
    retriever.add(changed)
    catalog.update((p.id, p) for p in changed)
    gone = [f"c{i}" for i in range(60, 100)]
    assert retriever.delete(gone) == 40
    for pid in gone:
        del catalog[pid]
    for filters in (f for group in FILTERS_BY_KIND.values() for f in group):
        assert_filters_match_reference(retriever, list(catalog.values()), filters)


def test_add_replaces_vector_and_metadata_when_id_exists(tiny_settings):
    retriever = make(tiny_settings)
    dim = retriever._encoder.dim
    old, new = unit_vectors(2, dim, seed=3)
    retriever.add_vectors(
        [Product(id="a", title="sofa", brand="Acme")] + plain_products(20),
        np.vstack([old, unit_vectors(20, dim, seed=4)]),
    )
    retriever.add_vectors([Product(id="a", title="sofa", brand="Globex")], new[None, :])
    assert retriever.count() == 21
    assert retriever.search_vector(new, 1) == [("a", pytest.approx(1.0, abs=1e-5))]
    assert "a" not in ids(retriever.search_vector(old, 1)) or retriever.search_vector(old, 1)[0][1] < 0.99
    assert retriever.search_vector(new, 5, Filters(brand="acme")) == []
    assert ids(retriever.search_vector(new, 5, Filters(brand="globex"))) == ["a"]


def test_add_keeps_last_version_when_id_repeats_in_one_batch(tiny_settings):
    retriever = make(tiny_settings)
    dim = retriever._encoder.dim
    first, last = unit_vectors(2, dim, seed=5)
    added = retriever.add_vectors([Product(id="a", title="x"), Product(id="a", title="y")], np.vstack([first, last]))
    assert (added, retriever.count()) == (1, 1)
    assert retriever.search_vector(last, 1)[0][1] == pytest.approx(1.0, abs=1e-5)


def test_delete_removes_product_from_results(tiny_settings):
    retriever = make(tiny_settings)
    vectors = unit_vectors(10, retriever._encoder.dim)
    retriever.add_vectors(plain_products(10), vectors)
    assert retriever.delete(["p3", "unknown"]) == 1
    assert retriever.count() == 9
    hits = retriever.search_vector(vectors[3], 10)
    assert "p3" not in ids(hits) and len(hits) == 9
    assert retriever.delete(["p3"]) == 0


def test_delete_raises_when_given_one_string(tiny_settings):
    with pytest.raises(TypeError, match="wrap a single id in a list"):
        make(tiny_settings).delete("p3")


def test_compaction_drops_tombstones_when_many_products_are_deleted(tiny_settings, tmp_path):
    retriever = make(tiny_settings)
    vectors = unit_vectors(100, retriever._encoder.dim)
    retriever.add_vectors(plain_products(100), vectors)
    retriever.delete([f"p{i}" for i in range(40)])
    manifest = json.loads((retriever.save(tmp_path) / dense.MANIFEST).read_text())
    assert manifest["rows"] == manifest["count"] == 60
    for i in range(40, 100, 7):
        assert retriever.search_vector(vectors[i], 1)[0][0] == f"p{i}"


def test_auto_switches_to_hnsw_when_catalog_outgrows_flat_max_size(tiny_settings):
    retriever = make(tiny_settings, index_type="auto", flat_max_size=50)
    vectors = unit_vectors(80, retriever._encoder.dim)
    products = plain_products(80)
    retriever.add_vectors(products[:40], vectors[:40])
    assert retriever.index_type == "flat"
    retriever.add_vectors(products[40:], vectors[40:])
    assert retriever.index_type == "hnsw"
    assert [retriever.search_vector(v, 1)[0][0] for v in vectors] == [p.id for p in products]


def test_search_returns_nothing_when_empty_or_no_product_matches(tiny_settings):
    retriever = make(tiny_settings)
    assert retriever.search("sofa", 10) == []
    retriever.add([Product(id="a", title="sofa", price=10)])
    assert retriever.search("sofa", 10, Filters(price_min=20)) == []
    assert retriever.search("sofa", 0) == []
    with pytest.raises(ValueError, match="k must be >= 0"):
        retriever.search("sofa", -1)


def test_add_vectors_raises_when_shape_does_not_match(tiny_settings):
    retriever = make(tiny_settings)
    with pytest.raises(ValueError, match=r"expected \(2, 32\)"):
        retriever.add_vectors(plain_products(2), unit_vectors(2, 16))


@pytest.mark.parametrize("index_type", INDEX_TYPES)
def test_save_load_round_trip_gives_identical_results(tiny_settings, tmp_path, index_type):
    catalog = random_catalog(200)
    retriever = make(tiny_settings, index_type=index_type)
    retriever.add(catalog)
    retriever.delete(["c1", "c2"])  # tombstones are saved as they are
    retriever.save(tmp_path)
    loaded = FaissRetriever.load(tmp_path, BiEncoder(retriever._settings), retriever._settings)
    assert (loaded.count(), loaded.index_type) == (198, index_type)
    for query, filters in [
        ("sofa", None),
        ("red table", Filters(category="furniture", price_max=300)),
        ("lamp", Filters(attributes={"colour": "red"}, brand="acme")),
    ]:
        assert loaded.search(query, 20, filters) == retriever.search(query, 20, filters)


def test_load_raises_when_model_differs(tiny_settings, tiny_bert_dir, tmp_path):
    retriever = make(tiny_settings)
    retriever.add(plain_products(3))
    retriever.save(tmp_path / "index")
    other_model = shutil.copytree(tiny_bert_dir, tmp_path / "other-model")
    other = tiny_settings.model_copy(update={"model": str(other_model)})
    with pytest.raises(ConfigError, match="was built with model .* set dense.model to"):
        FaissRetriever.load(tmp_path / "index", BiEncoder(other), other)


def test_load_raises_when_dim_differs(tiny_settings, tmp_path):
    retriever = make(tiny_settings)
    retriever.add(plain_products(3))
    manifest_path = retriever.save(tmp_path) / dense.MANIFEST
    manifest_path.write_text(json.dumps({**json.loads(manifest_path.read_text()), "dim": 384}))
    with pytest.raises(ConfigError, match="holds 384-d vectors .* makes 32-d"):
        FaissRetriever.load(tmp_path, BiEncoder(tiny_settings), tiny_settings)


def test_load_raises_when_no_index_was_saved(tiny_settings, tmp_path):
    with pytest.raises(ConfigError, match="build one with add"):
        FaissRetriever.load(tmp_path, BiEncoder(tiny_settings), tiny_settings)


def test_searches_stay_consistent_when_products_are_added_concurrently(tiny_settings):
    retriever = make(tiny_settings, index_type="hnsw")
    dim = retriever._encoder.dim
    vectors = unit_vectors(400, dim)
    retriever.add_vectors(plain_products(200), vectors[:200])
    errors: list[BaseException] = []

    def search_repeatedly():
        try:
            for i in range(200):
                assert retriever.search_vector(vectors[i], 1)[0][0] == f"p{i}"
        except BaseException as exc:  # surfaced in the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=search_repeatedly) for _ in range(4)]
    for thread in threads:
        thread.start()
    for start in range(200, 400, 20):
        retriever.add_vectors(plain_products(400)[start : start + 20], vectors[start : start + 20])
    for thread in threads:
        thread.join()
    assert errors == []
    assert retriever.count() == 400


@pytest.mark.skipif(
    not hasattr(faiss, "StandardGpuResources") or faiss.get_num_gpus() == 0, reason="needs a faiss GPU build and a GPU"
)
@pytest.mark.parametrize("index_type", ["flat", "ivf"])
def test_gpu_search_matches_cpu_when_filtered(tiny_settings, index_type):
    catalog = random_catalog(300)
    gpu = make(tiny_settings, index_type=index_type, device="cuda")
    cpu = make(tiny_settings, index_type=index_type, device="cpu")
    for retriever in (gpu, cpu):
        retriever.add(catalog)
    assert gpu._gpu_index is not None
    for filters in [None, Filters(brand="acme"), Filters(category="furniture", price_max=300)]:
        assert ids(gpu.search_vector(np.ones(32), 10, filters)) == ids(cpu.search_vector(np.ones(32), 10, filters))
    for filters in (f for group in FILTERS_BY_KIND.values() for f in group):
        assert_filters_match_reference(gpu, catalog, filters)


@pytest.mark.slow
def test_couch_query_ranks_sofa_above_unrelated_product_with_minilm(minilm_settings):
    retriever = FaissRetriever(BiEncoder(minilm_settings), minilm_settings)
    retriever.add(
        [
            Product(id="sofa", title="Three-seater sofa", category="Furniture > Living room", brand="Nordhem"),
            Product(id="drill", title="Cordless hammer drill 18V", category="Tools > Power tools", brand="Voltex"),
            Product(id="socks", title="Wool hiking socks", category="Apparel > Socks", brand="Trailmate"),
        ]
    )
    assert [c.product_id for c in retriever.search("couch", 3)][0] == "sofa"
