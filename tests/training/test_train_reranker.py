"""Reranker training on tiny data: pairs are mined from the train split only, and the model learns."""

import numpy as np
import pytest

from search_rerank.dataset import Query
from search_rerank.generate import GeneratorConfig, generate
from search_rerank.indexes import build_index, open_pipeline
from search_rerank.loaders import iter_catalog, load_beir
from search_rerank.product import Product
from search_rerank.mining import MiningConfig, first_stage_lists, mine_pairs
from search_rerank.rerank import probabilities
from search_rerank.settings import Settings
from search_rerank.train_reranker import RerankerTraining, train_reranker


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    root = tmp_path_factory.mktemp("train-rerank")
    generate(root / "data", GeneratorConfig(products=400, queries=150, seed=4, workers=1), progress=False)
    settings = Settings(index_dir=root / "idx", dense={"enabled": False}, longtail={"enabled": False})
    build_index(iter_catalog(root / "data"), settings, progress=False)
    return root, open_pipeline(settings), load_beir(root / "data")


def test_unjudged_candidates_are_not_negatives_unless_labels_are_complete(small):
    _, pipeline, data = small
    queries, qrels = data.split("train")
    sparse = {qid: dict(list(judged.items())[:3]) for qid, judged in qrels.items()}
    lists = first_stage_lists(pipeline, queries, 20, progress=False)
    catalog = sorted(pipeline.store.popularity())
    for pair in mine_pairs(queries, sparse, lists, catalog, MiningConfig(random_negatives_per_query=0)):
        assert pair.product_id in sparse[pair.query_id]
    complete = mine_pairs(queries, sparse, lists, catalog,
                          MiningConfig(random_negatives_per_query=0, judgments_complete=True))
    assert any(p.product_id not in sparse[p.query_id] and p.label == 0 for p in complete)


def test_pairs_come_only_from_the_split_given(small):
    _, pipeline, data = small
    queries, qrels = data.split("train")
    lists = first_stage_lists(pipeline, queries, 20, progress=False)
    pairs = mine_pairs(queries, qrels, lists, sorted(pipeline.store.popularity()))
    assert pairs and {p.query_id for p in pairs} <= set(qrels)


def test_labels_are_grades_scaled_to_one(small):
    _, pipeline, data = small
    queries, qrels = data.split("train")
    lists = first_stage_lists(pipeline, queries, 20, progress=False)
    for pair in mine_pairs(queries, qrels, lists, sorted(pipeline.store.popularity())):
        assert pair.label == qrels[pair.query_id].get(pair.product_id, 0) / 2


TYPES = ("sofa", "lamp", "rug", "desk", "mirror", "kettle")
COLOURS = ("red", "blue", "green", "grey", "black")


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """Six product types in five colours: small enough for a 2-layer model to learn in seconds."""
    rng = np.random.default_rng(0)
    products = [
        Product(id=f"{t}-{i}", title=f"{brand} {colour} {t}", description=f"A {colour} {t} for your home.",
                brand=brand, category=("Home", t))
        for t in TYPES for i, (colour, brand) in enumerate(
            (COLOURS[k % 5], ("Acme", "Borg", "Cora")[int(rng.integers(3))]) for k in range(20))
    ]
    settings = Settings(index_dir=tmp_path_factory.mktemp("shop") / "idx", dense={"enabled": False},
                        longtail={"enabled": False})
    build_index(products, settings, progress=False)

    def judged(t: str, colour: str | None) -> dict[str, int]:
        return {p.id: (2 if colour is None or colour in p.title else 1) if p.id.startswith(t) else 0 for p in products}

    train = {f"{t}-{c}": (f"{c} {t}" if c else t, judged(t, c)) for t in TYPES for c in (None, *COLOURS[:3])}
    dev = {f"{t}-{c}": (f"{c} {t}", judged(t, c)) for t in TYPES for c in COLOURS[3:]}

    def split(queries):
        return {q: Query(q, text) for q, (text, _) in queries.items()}, {q: labels for q, (_, labels) in queries.items()}

    return open_pipeline(settings), split(train), split(dev)


def _auc(model, pipeline, queries, qrels) -> float:
    """Share of (relevant, irrelevant) product pairs of a dev query that the model orders right."""
    right, total = 0, 0
    products = pipeline.store.get(sorted(next(iter(qrels.values()))))
    texts = {pid: p.embedding_text() for pid, p in products.items()}
    for qid, judged in qrels.items():
        pos = [p for p, g in judged.items() if g == 2]
        neg = [p for p, g in judged.items() if g == 0]
        probs = dict(zip(pos + neg, probabilities(model, [(queries[qid].text, texts[p]) for p in pos + neg], 64)))
        right += sum(probs[a] > probs[b] for a in pos for b in neg)
        total += len(pos) * len(neg)
    return right / total


def test_a_tiny_reranker_learns_to_order_held_out_pairs(shop, tmp_path, tiny_cross_encoder_dir):
    """Dev queries name colours no training query used; the model must still put the right type first."""
    from sentence_transformers.cross_encoder import CrossEncoder

    pipeline, train, dev = shop
    before = _auc(CrossEncoder(str(tiny_cross_encoder_dir), num_labels=1), pipeline, *dev)
    config = RerankerTraining(base_model=str(tiny_cross_encoder_dir), epochs=6, learning_rate=2e-3, batch_size=16,
                              eval_steps=50, patience=10, window=20, dev_queries=12, device="cpu", max_length=32,
                              mining=MiningConfig(judgments_complete=True, random_negatives_per_query=4))
    trained = train_reranker(pipeline, train, dev, tmp_path / "model", config, progress=False)
    after = _auc(CrossEncoder(str(trained.path), num_labels=1), pipeline, *dev)
    assert after > 0.85 > before, (before, after)
    assert set(trained.dev) == {"ndcg10", "blend", "first_stage_ndcg10", "model_ndcg10"}
    assert trained.promoted == (trained.dev["ndcg10"] > trained.dev["first_stage_ndcg10"])
