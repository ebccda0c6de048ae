"""Reranker training on tiny data: pairs are mined from the train split only, and the model learns."""

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from search_rerank.backends.encoder import resolve_model_path
from search_rerank.cli.onboard import AS_TRAINED, measure
from search_rerank.core.model_card import load_card
from search_rerank.core.product import Product
from search_rerank.core.rerank import probabilities
from search_rerank.core.settings import PACKAGED_MINILM, Settings
from search_rerank.data.dataset import Query
from search_rerank.evaluation.tune import RerankScores
from search_rerank.indexing.indexes import build_index, load_reranker, open_pipeline
from search_rerank.training.mining import MiningConfig, first_stage_lists, mine_capped, mine_pairs
from search_rerank.training.reranker import RerankerTraining, train_reranker


@pytest.fixture(scope="module")
def small(built_index):
    built = built_index(products=400, queries=150, seed=4, dense={"enabled": False}, longtail={"enabled": False})
    return built.pipeline(), built.dataset()


def test_unjudged_candidates_are_not_negatives_unless_labels_are_complete(small):
    pipeline, data = small
    queries, qrels = data.split("train")
    sparse = {qid: dict(list(judged.items())[:3]) for qid, judged in qrels.items()}
    lists = first_stage_lists(pipeline, queries, 20, progress=False)
    catalog = sorted(pipeline.store.popularity())
    for pair in mine_pairs(queries, sparse, lists, catalog, MiningConfig(random_negatives_per_query=0)):
        assert pair.product_id in sparse[pair.query_id]
    complete = mine_pairs(
        queries, sparse, lists, catalog, MiningConfig(random_negatives_per_query=0, judgments_complete=True)
    )
    assert any(p.product_id not in sparse[p.query_id] and p.label == 0 for p in complete)


def test_pairs_come_only_from_the_split_given(small):
    pipeline, data = small
    queries, qrels = data.split("train")
    lists = first_stage_lists(pipeline, queries, 20, progress=False)
    pairs = mine_pairs(queries, qrels, lists, sorted(pipeline.store.popularity()))
    assert pairs and {p.query_id for p in pairs} <= set(qrels)


def test_labels_are_grades_scaled_to_one(small):
    pipeline, data = small
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
        Product(
            id=f"{t}-{i}",
            title=f"{brand} {colour} {t}",
            description=f"A {colour} {t} for your home.",
            brand=brand,
            category=("Home", t),
        )
        for t in TYPES
        for i, (colour, brand) in enumerate(
            (COLOURS[k % 5], ("Acme", "Borg", "Cora")[int(rng.integers(3))]) for k in range(20)
        )
    ]
    settings = Settings(
        index_dir=tmp_path_factory.mktemp("shop") / "idx", dense={"enabled": False}, longtail={"enabled": False}
    )
    build_index(products, settings, progress=False)

    def judged(t: str, colour: str | None) -> dict[str, int]:
        return {p.id: (2 if colour is None or colour in p.title else 1) if p.id.startswith(t) else 0 for p in products}

    train = {f"{t}-{c}": (f"{c} {t}" if c else t, judged(t, c)) for t in TYPES for c in (None, *COLOURS[:3])}
    dev = {f"{t}-{c}": (f"{c} {t}", judged(t, c)) for t in TYPES for c in COLOURS[3:]}

    def split(queries):
        return {q: Query(q, text) for q, (text, _) in queries.items()}, {
            q: labels for q, (_, labels) in queries.items()
        }

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


@pytest.mark.slow
def test_a_reranker_learns_to_order_held_out_pairs(shop, tmp_path):
    """Dev queries name colours no training query used; the model must still put the right type first.

    The packaged MiniLM body with a new head: a random tiny BERT does not learn
    token matching in a few hundred steps, MiniLM does in seconds.
    """
    from sentence_transformers.cross_encoder import CrossEncoder

    pipeline, train, dev = shop
    base = resolve_model_path(PACKAGED_MINILM)
    before = _auc(CrossEncoder(base, num_labels=1, max_length=32), pipeline, *dev)
    config = RerankerTraining(
        epochs=2,
        learning_rate=5e-5,
        batch_size=16,
        eval_steps=40,
        patience=3,
        window=20,
        dev_queries=12,
        device="cpu",
        max_length=32,
        mining=MiningConfig(judgments_complete=True, random_negatives_per_query=4),
    )
    card = train_reranker(pipeline, train, dev, tmp_path / "shop-reranker", config, data_name="shop", progress=False)
    after = _auc(CrossEncoder(str(tmp_path / "shop-reranker"), num_labels=1, max_length=32), pipeline, *dev)
    assert after > 0.9 and after > before + 0.2, (before, after)
    assert load_card(tmp_path / "shop-reranker") == card
    assert card.promoted == (card.dev_metrics["model_ndcg10"] > card.dev_metrics["first_stage_ndcg10"])
    assert card.data.splits["train"].pairs > 0 and card.training_seconds > 0


def tiny_training(base: Path, **changes) -> RerankerTraining:
    """A few steps of the tiny test cross-encoder, evaluated on 4 of the shop's 12 dev queries."""
    return RerankerTraining(
        base_model=str(base),
        batch_size=8,
        eval_steps=5,
        window=10,
        dev_queries=4,
        device="cpu",
        max_length=24,
        mining=MiningConfig(judgments_complete=True),
        **changes,
    )


def test_training_repeats_exactly_for_a_seed_on_the_cpu(shop, tiny_cross_encoder_dir, tmp_path):
    from sentence_transformers.cross_encoder import CrossEncoder

    pipeline, train, dev = shop
    config = tiny_training(tiny_cross_encoder_dir, learning_rate=1e-3, max_pairs=60)
    pairs = [("red sofa", "Acme red sofa"), ("lamp", "Borg blue rug")]
    runs = []
    for name in ("one", "two"):
        card = train_reranker(pipeline, train, dev, tmp_path / name, config, progress=False)
        runs.append((card.dev_metrics, CrossEncoder(str(tmp_path / name), num_labels=1, max_length=24)))
    assert runs[0][0] == runs[1][0]
    np.testing.assert_array_equal(probabilities(runs[0][1], pairs, 8), probabilities(runs[1][1], pairs, 8))
    base = CrossEncoder(str(tiny_cross_encoder_dir), num_labels=1, max_length=24)
    assert not np.allclose(probabilities(base, pairs, 8), probabilities(runs[0][1], pairs, 8))  # it did train


def test_the_blend_and_the_promotion_are_decided_on_more_dev_queries_than_training_evaluates(
    shop, tiny_cross_encoder_dir, tmp_path
):
    pipeline, train, dev = shop
    config = tiny_training(tiny_cross_encoder_dir, max_pairs=40)
    decided = train_reranker(pipeline, train, dev, tmp_path / "all", config, progress=False)
    assert decided.data.splits["dev"].queries == len(dev[1]) > config.dev_queries
    assert decided.data.splits["dev"].pairs == len(dev[1]) * config.window
    alike = train_reranker(
        pipeline, train, dev, tmp_path / "alike", replace(config, decision_queries=config.dev_queries), progress=False
    )
    assert alike.data.splits["dev"].queries == config.dev_queries


def test_the_dev_reranking_that_decides_the_blend_shows_its_progress(shop, tiny_cross_encoder_dir, tmp_path, capsys):
    """On a CPU the decision reranks up to 1,000 dev queries (50,000 pairs): 2.3 minutes at a Home Depot-sized
    dataset, with nothing on the screen after the trainer's own bar had finished."""
    pipeline, train, dev = shop
    config = tiny_training(tiny_cross_encoder_dir, max_pairs=40)
    train_reranker(pipeline, train, dev, tmp_path / "shown", config, progress=True)
    assert f"dev rerank: 100%|██████████| {len(dev[1])}/{len(dev[1])}" in capsys.readouterr().err


@pytest.fixture(params=["auto", "bf16"])
def decided(request, shop, tiny_cross_encoder_dir, tmp_path, monkeypatch):
    """A reranker trained into ``tmp_path/kept`` with a store for its dev decision's probabilities; the settings
    that serve it (at the trained window); the store. Trained, decided and served in one precision: ``auto``
    (fp32 on a CPU without native bf16, as this project's CI machine) or bf16 asked for by name, as ``auto``
    gives on a CPU with AMX."""
    pipeline, train, dev = shop
    monkeypatch.setattr(pipeline, "settings", pipeline.settings.override(rerank={"precision": request.param}))
    kept = RerankScores()
    config = tiny_training(tiny_cross_encoder_dir, max_pairs=40, precision=request.param)
    train_reranker(pipeline, train, dev, tmp_path / "kept", config, progress=False, rerank_scores=kept)
    served = pipeline.settings.override(rerank={"model": "kept", "allow_unpromoted": True, "window": config.window})
    return served.model_copy(update={"models_dir": tmp_path}), kept


def test_the_dev_decision_keeps_its_probabilities_as_the_served_model_scores_them(shop, decided):
    """Onboarding then measures the step on the same dev queries without scoring their windows again."""
    pipeline, _, (queries, qrels) = shop
    served, kept = decided
    reranker = load_reranker(served)
    reranker.warm_up()
    assert reranker.bf16 or served.rerank.precision != "bf16"
    assert {key[:3] for key in kept.scores} == {RerankScores.model_key(reranker)}
    assert {key[3] for key in kept.scores} == {queries[qid].text for qid in qrels}
    for query in {key[3] for key in kept.scores}:
        ids = [key[4] for key in kept.scores if key[3] == query]
        products = pipeline.store.get(ids)
        texts = [products[pid].embedding_text() for pid in ids]
        expected = [kept.scores[(*RerankScores.model_key(reranker), query, pid)] for pid in ids]
        # bf16 rounds each batch's products by its padding: a probability moves in its third decimal at most
        np.testing.assert_allclose(reranker.score(query, texts), expected, atol=1e-5 if not reranker.bf16 else 4e-3)
        assert len(ids) == served.rerank.window


def test_measuring_the_trained_model_on_the_decisions_dev_queries_scores_no_window_again(shop, decided):
    _, _, dev = shop
    served, kept = decided
    fresh = RerankScores()
    measure({AS_TRAINED: served}, {"dev": dev}, fresh)
    assert fresh.scores.keys() == kept.scores.keys()  # measuring scores the very pairs the decision scored
    scored = dict(kept.scores)
    measure({AS_TRAINED: served}, {"dev": dev}, kept)
    assert kept.scores == scored  # and given them, none again


def test_a_cap_on_pairs_retrieves_the_first_stage_of_no_more_train_queries_than_pairs(
    shop, tiny_cross_encoder_dir, tmp_path, capsys
):
    """The Home Depot layout's onboarding retrieved all 19,024 train queries' lists (9.7 minutes) to keep 3,000."""
    pipeline, train, dev = shop
    config = tiny_training(tiny_cross_encoder_dir, max_pairs=6)
    card = train_reranker(pipeline, train, dev, tmp_path / "capped", config, progress=True)
    retrieved = re.findall(r"first stage: 100%\|██████████\| (\d+)/\1", capsys.readouterr().err)
    assert len(train[1]) > 6 and 1 <= int(retrieved[0]) <= 6
    assert card.data.splits["train"].pairs == 6


def _queries(*ids: str) -> dict[str, Query]:
    return {qid: Query(qid, qid) for qid in ids}


class _Miner:
    """Each query's items as ``items`` says, and which queries it was asked to mine, in order."""

    def __init__(self, items: dict[str, int]):
        self.items = items
        self.asked: list[str] = []

    def __call__(self, queries):
        self.asked.extend(queries)
        return [(qid, n) for qid in sorted(queries) for n in range(self.items[qid])]


def test_a_cap_keeps_that_many_items_mining_only_the_queries_drawn():
    miner = _Miner({f"q{i:03d}": 10 for i in range(200)})
    kept = mine_capped(_queries(*miner.items), None, 20, 3, miner, lambda item: item[0])
    assert len(kept) == 20 and len(miner.asked) <= 20
    assert {qid for qid, _ in kept} <= set(miner.asked)
    assert kept == mine_capped(_queries(*miner.items), None, 20, 3, _Miner(miner.items), lambda item: item[0])


def test_a_cap_draws_only_queries_with_a_relevant_product():
    miner = _Miner({"judged": 5, "unjudged": 5, "irrelevant": 5})
    qrels = {"judged": {"p": 1}, "irrelevant": {"p": 0}}
    kept = mine_capped(_queries(*miner.items), qrels, 3, 0, miner, lambda item: item[0])
    assert miner.asked == ["judged"] and [qid for qid, _ in kept] == ["judged"] * 3


def test_draws_that_find_their_query_without_items_are_drawn_again_among_the_others():
    """A query whose every product is judged relevant has no negative to pair with (a click log's, say)."""
    miner = _Miner({"empty": 0, "full": 30})
    kept = mine_capped(_queries(*miner.items), None, 10, 0, miner, lambda item: item[0])
    assert len(kept) == 10 and {qid for qid, _ in kept} == {"full"}


def test_a_cap_above_every_item_keeps_every_item():
    miner = _Miner({"a": 2, "b": 3})
    assert len(mine_capped(_queries("a", "b"), None, 100, 0, miner, lambda item: item[0])) == 5


def test_without_a_cap_every_query_is_mined_and_every_item_kept():
    miner = _Miner({"a": 2, "b": 3})
    assert mine_capped(_queries("a", "b"), None, None, 0, miner, lambda item: item[0]) == miner(_queries("a", "b"))
