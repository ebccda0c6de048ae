"""Reranker training on tiny data: pairs are mined from the train split only, and the model learns."""

import numpy as np
import pytest

from search_rerank.generate import GeneratorConfig, generate
from search_rerank.indexes import build_index, open_pipeline
from search_rerank.loaders import iter_catalog, load_beir
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


def _auc(model, pipeline, queries, qrels) -> float:
    """Share of (relevant, irrelevant) product pairs of a query that the model orders right."""
    rng = np.random.default_rng(0)
    catalog = sorted(pipeline.store.popularity())
    right, total = 0, 0
    for qid, judged in list(qrels.items())[:25]:
        pos = [p for p, g in judged.items() if g == 2][:3]
        neg = [p for p in rng.choice(catalog, 12, replace=False) if judged.get(p, 0) == 0][:3]
        texts = {pid: p.embedding_text() for pid, p in pipeline.store.get(pos + neg).items()}
        probs = probabilities(model, [(queries[qid].text, texts[p]) for p in pos + neg], 16)
        for i in range(len(pos)):
            for j in range(len(pos), len(pos) + len(neg)):
                right += probs[i] > probs[j]
                total += 1
    return right / total


def test_a_tiny_reranker_learns_to_order_held_out_pairs(small, tmp_path, tiny_cross_encoder_dir):
    from sentence_transformers.cross_encoder import CrossEncoder

    _, pipeline, data = small
    dev_q, dev_qrels = data.split("dev")
    before = _auc(CrossEncoder(str(tiny_cross_encoder_dir), num_labels=1), pipeline, dev_q, dev_qrels)
    config = RerankerTraining(base_model=str(tiny_cross_encoder_dir), epochs=4, learning_rate=1e-3, batch_size=16,
                              eval_steps=40, patience=5, window=10, dev_queries=20, device="cpu")
    trained = train_reranker(pipeline, data.split("train"), (dev_q, dev_qrels), tmp_path / "model", config,
                             progress=False)
    after = _auc(CrossEncoder(str(trained.path), num_labels=1), pipeline, dev_q, dev_qrels)
    assert after > max(before, 0.5) + 0.15, (before, after)
    assert set(trained.dev) == {"ndcg10", "blend", "first_stage_ndcg10"}
    assert trained.promoted == (trained.dev["ndcg10"] > trained.dev["first_stage_ndcg10"])
