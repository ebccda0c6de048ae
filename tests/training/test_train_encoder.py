"""Bi-encoder training on tiny data: triplets respect grades and splits, the model learns, runs repeat, and the
pipeline loads a trained encoder by name only with a valid, promoted card and a matching index."""

import json
import re
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from search_rerank.backends.encoder import resolve_encoder
from search_rerank.cli import main
from search_rerank.core.candidate import Candidate
from search_rerank.core.errors import ConfigError, DataError
from search_rerank.core.model_card import CARD_FILE, load_card
from search_rerank.core.product import Product
from search_rerank.core.settings import PACKAGED_MINILM, DenseSettings, Settings
from search_rerank.data.clicks import Impression, click_splits, read_clicks, simulate_clicks
from search_rerank.data.dataset import Query
from search_rerank.indexing.indexes import build_index, open_pipeline, read_manifest, update_index
from search_rerank.training.encoder import EncoderTraining, mine_triplets, train_encoder
from search_rerank.training.mining import MiningConfig, first_stage_lists


def _candidates(*ids: str) -> list[Candidate]:
    return [Candidate(pid, 1.0 / (rank + 1)) for rank, pid in enumerate(ids)]


def test_positives_are_the_best_grade_and_partial_matches_are_never_negatives():
    queries = {"q1": Query("q1", "red sofa"), "q2": Query("q2", "lamp")}
    qrels = {"q1": {"a": 2, "b": 1, "c": 0}, "q2": {"e": 1, "f": 0}}
    lists = {"q1": _candidates("b", "d", "c", "a"), "q2": _candidates("e", "f")}
    sparse = mine_triplets(queries, qrels, lists, ["a", "b", "c", "d", "e", "f"], MiningConfig())
    assert {(t.query_id, t.positive, t.negative) for t in sparse} == {("q1", "a", "c"), ("q2", "e", "f")}
    complete = mine_triplets(queries, qrels, lists, [], MiningConfig(judgments_complete=True))
    assert {(t.query_id, t.positive, t.negative) for t in complete} == {("q1", "a", "d"), ("q2", "e", "f")}


def test_a_query_without_hard_negatives_gets_random_ones_that_are_not_relevant():
    queries = {"q1": Query("q1", "red sofa")}
    qrels = {"q1": {"a": 2, "b": 2, "c": 1}}
    triplets = mine_triplets(queries, qrels, {"q1": _candidates("a", "c")}, ["a", "b", "c", "x", "y"])
    assert {t.positive for t in triplets} == {"a", "b"} and {t.negative for t in triplets} <= {"x", "y"}


@pytest.fixture(scope="module")
def generated(built_index):
    built = built_index(products=300, queries=120, seed=5, dense={"enabled": False}, longtail={"enabled": False})
    return built.pipeline(), built.dataset()


def test_triplets_come_only_from_the_split_given_with_its_best_grades(generated):
    pipeline, data = generated
    queries, qrels = data.split("train")
    lists = first_stage_lists(pipeline, queries, 30, progress=False)
    triplets = mine_triplets(queries, qrels, lists, sorted(pipeline.store.popularity()))
    assert triplets and {t.query_id for t in triplets} <= set(qrels)
    held_out = {qid for split in ("dev", "test") if split in data.qrels for qid in data.qrels[split]}
    assert not {t.query_id for t in triplets} & held_out
    for t in triplets:
        assert qrels[t.query_id][t.positive] == max(qrels[t.query_id].values())
        assert qrels[t.query_id].get(t.negative, 0) == 0


CODES = {"zorp": "sofa", "blix": "lamp", "quand": "rug", "vemt": "desk", "drul": "mirror", "skee": "kettle"}
COLOURS = ("red", "blue", "green", "grey", "black")


def _shop_products() -> list[Product]:
    rng = np.random.default_rng(0)
    return [
        Product(
            id=f"{kind}-{i}",
            title=f"{brand} {COLOURS[i % 5]} {kind}",
            description=f"A {COLOURS[i % 5]} {kind} for your home.",
            brand=brand,
            category=("Home", kind),
        )
        for kind in CODES.values()
        for i, brand in enumerate(("Acme", "Borg", "Cora")[int(rng.integers(3))] for _ in range(10))
    ]


def _shop_split(products: list[Product], colours) -> tuple[dict[str, Query], dict[str, dict[str, int]]]:
    """Queries in the shop's jargon: a code word for the product type, maybe a colour; grades as the reranker's."""
    queries, qrels = {}, {}
    for code, kind in CODES.items():
        for colour in colours:
            qid = f"{code}-{colour}"
            queries[qid] = Query(qid, f"{colour} {code}" if colour else code)
            qrels[qid] = {
                p.id: (2 if colour is None or colour in p.title else 1) if p.id.startswith(kind) else 0
                for p in products
            }
    return queries, qrels


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """Sixty products; the queries name types by code words no pretrained model knows, so only training helps."""
    products = _shop_products()
    root = tmp_path_factory.mktemp("shop")
    settings = Settings(
        index_dir=root / "idx", models_dir=root / "models", dense={"enabled": False}, longtail={"enabled": False}
    )
    build_index(products, settings, progress=False)
    return (
        open_pipeline(settings),
        _shop_split(products, (None, *COLOURS[:3])),
        _shop_split(products, COLOURS[3:]),
        root,
    )


def _ordered_right(model, pipeline, queries, qrels) -> float:
    """Share of (exact match, other type in the same colour) pairs of a dev query that the model orders right.

    Same colour, so that only knowing the code word for the type can tell them apart.
    """
    ids = sorted(next(iter(qrels.values())))
    texts = {pid: p.embedding_text() for pid, p in pipeline.store.get(ids).items()}
    docs = model.encode([texts[pid] for pid in ids], normalize_embeddings=True)
    right = total = 0
    for qid, judged in qrels.items():
        scores = dict(zip(ids, docs @ model.encode([queries[qid].text], normalize_embeddings=True)[0]))
        pos = [p for p, g in judged.items() if g == 2]
        colour = queries[qid].text.split()[0]
        neg = [p for p, g in judged.items() if g == 0 and colour in texts[p]]
        right += sum(scores[a] > scores[b] for a in pos for b in neg)
        total += len(pos) * len(neg)
    return right / total


@pytest.mark.slow
def test_an_encoder_learns_the_shops_words_for_held_out_queries(shop, tmp_path):
    """Dev queries pair the code words with colours no training query used; the packaged MiniLM must learn the
    words (a random tiny BERT does not learn token matching in a few steps)."""
    from sentence_transformers import SentenceTransformer

    from search_rerank.backends.encoder import resolve_model_path

    pipeline, train, dev, _ = shop
    before = _ordered_right(SentenceTransformer(resolve_model_path(PACKAGED_MINILM), device="cpu"), pipeline, *dev)
    config = EncoderTraining(
        epochs=2,
        batch_size=16,
        learning_rate=1e-4,
        max_seq_length=16,
        eval_steps=4,
        patience=2,
        device="cpu",
        mining=MiningConfig(positives_per_query=4, judgments_complete=True),
    )
    card = train_encoder(pipeline, train, dev, tmp_path / "shop-encoder", config, data_name="shop", progress=False)
    after = _ordered_right(SentenceTransformer(str(tmp_path / "shop-encoder"), device="cpu"), pipeline, *dev)
    assert after > 0.9 and after > before + 0.2, (before, after)
    assert card.promoted and card.dev_metrics["model_ndcg10"] > card.dev_metrics["first_stage_ndcg10"]
    assert load_card(tmp_path / "shop-encoder") == card and card.kind == "encoder"
    assert card.data.splits["train"].pairs > 0 and card.parameters["max_seq_length"] == 16


def test_training_repeats_exactly_for_a_seed_on_the_cpu(shop, tiny_bert_dir, tmp_path):
    from sentence_transformers import SentenceTransformer

    pipeline, train, dev, _ = shop
    config = EncoderTraining(
        base_model=str(tiny_bert_dir),
        epochs=1,
        batch_size=8,
        learning_rate=1e-3,
        max_seq_length=16,
        eval_steps=4,
        device="cpu",
        max_triplets=40,
    )
    texts = ["red zorp", "Acme blue lamp", "A grey rug for your home."]
    runs = []
    for name in ("one", "two"):
        card = train_encoder(pipeline, train, dev, tmp_path / name, config, progress=False)
        runs.append((card.dev_metrics, SentenceTransformer(str(tmp_path / name), device="cpu").encode(texts)))
    assert runs[0][0] == runs[1][0]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    base = SentenceTransformer(str(tiny_bert_dir), device="cpu").encode(texts)
    assert not np.allclose(base, runs[0][1])  # it did train


TINY = {"epochs": 1, "batch_size": 8, "learning_rate": 1e-3, "eval_steps": 4, "device": "cpu", "max_triplets": 40}


def test_training_with_frozen_word_embeddings_leaves_the_matrix_as_it_was(shop, tiny_bert_dir, tmp_path):
    from sentence_transformers import SentenceTransformer

    pipeline, train, dev, _ = shop
    card = train_encoder(
        pipeline,
        train,
        dev,
        tmp_path / "frozen",
        EncoderTraining(base_model=str(tiny_bert_dir), freeze_word_embeddings=True, **TINY),
        progress=False,
    )
    before = dict(SentenceTransformer(str(tiny_bert_dir), device="cpu").named_parameters())
    after = dict(SentenceTransformer(str(tmp_path / "frozen"), device="cpu").named_parameters())
    matrix = next(name for name in before if name.endswith("word_embeddings.weight"))
    assert card.parameters["frozen_parameters"] == before[matrix].numel()
    assert np.array_equal(before[matrix].detach().numpy(), after[matrix].detach().numpy())
    assert any(not np.array_equal(before[n].detach().numpy(), after[n].detach().numpy()) for n in before if n != matrix)


def test_training_reads_the_products_texts_only_as_far_as_most_of_them_go(shop, tiny_bert_dir, tmp_path):
    pipeline, train, dev, _ = shop
    config = EncoderTraining(base_model=str(tiny_bert_dir), **TINY)
    card = train_encoder(pipeline, train, dev, tmp_path / "short", config, progress=False)
    assert 8 <= card.parameters["max_seq_length"] < pipeline.settings.dense.max_seq_length


def _register(models_dir, name, model_dir, *, promoted=True, kind="encoder", created="2025-01-01T00:00:00Z"):
    """A model in the registry with a hand-written card, as `train encoder` would leave it."""
    target = models_dir / name
    shutil.copytree(model_dir, target, dirs_exist_ok=True)
    metrics = {"model_ndcg10": 0.6 if promoted else 0.4, "first_stage_ndcg10": 0.5}
    card = {
        "kind": kind,
        "name": name,
        "base_model": PACKAGED_MINILM,
        "created": created,
        "data": {"path": "", "name": "shop", "label_source": "judgments", "splits": {}},
        "parameters": {},
        "seed": 1,
        "dev_metrics": metrics,
        "promoted": promoted,
        "promotion_reason": "hand-written for a test",
        "training_seconds": 1.0,
        "pairs_per_second": 1.0,
        "library_versions": {},
    }
    (target / CARD_FILE).write_text(json.dumps(card), encoding="utf-8")
    return target


def _dense_settings(root, model, **dense) -> Settings:
    return Settings(
        index_dir=root / "idx",
        models_dir=root / "models",
        longtail={"enabled": False},
        dense={"model": model, "device": "cpu", "candidates": 20, **dense},
    )


def test_the_pipeline_loads_an_encoder_by_registry_name_and_records_its_card(tiny_bert_dir, tmp_path):
    path = _register(tmp_path / "models", "shop-encoder", tiny_bert_dir)
    settings = _dense_settings(tmp_path, "shop-encoder")
    build_index(_shop_products(), settings, progress=False)
    pipeline = open_pipeline(settings)
    assert pipeline.run("blue lamp", None, size=5).hits
    manifest = read_manifest(settings)
    assert manifest["dense_model"] == "shop-encoder" and len(manifest["dense_card_sha256"]) == 64
    assert resolve_encoder(settings.dense, settings.models_dir).path == str(path)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda card: card.unlink(), "model_card.json is missing"),
        (lambda card: card.write_text("{", encoding="utf-8"), "not valid JSON"),
        (
            lambda card: card.write_text(json.dumps({**json.loads(card.read_text()), "kind": "reranker"})),
            "holds a reranker model",
        ),
    ],
)
def test_an_encoder_with_a_missing_or_broken_card_is_refused(tiny_bert_dir, tmp_path, damage, message):
    damage(_register(tmp_path / "models", "enc", tiny_bert_dir) / CARD_FILE)
    for model in ("enc", str(tmp_path / "models" / "enc")):
        with pytest.raises(ConfigError, match=message):
            build_index(_shop_products(), _dense_settings(tmp_path, model), progress=False)


def test_an_unpromoted_encoder_is_refused_unless_allowed(tiny_bert_dir, tmp_path):
    _register(tmp_path / "models", "weak", tiny_bert_dir, promoted=False)
    with pytest.raises(ConfigError, match="'weak' was not promoted.*dense.allow_unpromoted"):
        build_index(_shop_products(), _dense_settings(tmp_path, "weak"), progress=False)
    settings = _dense_settings(tmp_path, "weak", allow_unpromoted=True)
    build_index(_shop_products(), settings, progress=False)
    assert open_pipeline(settings).run("lamp", None, size=3).hits


@pytest.mark.parametrize(
    ("encoding", "named"),
    [({"max_seq_length": 8}, "dense.max_seq_length 8"), ({"document_prefix": "passage: "}, "dense.document_prefix")],
)
def test_an_index_encoded_with_other_dense_settings_is_refused_served_and_updated(
    tiny_bert_dir, tmp_path, encoding, named
):
    """Served with the model's defaults, an index encoded from 8 tokens ranked its dense leg 0.51 where it scores
    0.76, and an update wrote vectors of the new settings beside the old ones: nothing said so."""
    build_index(_shop_products(), _dense_settings(tmp_path, str(tiny_bert_dir), **encoding), progress=False)
    served = _dense_settings(tmp_path, str(tiny_bert_dir))
    with pytest.raises(ConfigError, match=named):
        open_pipeline(served)
    with pytest.raises(ConfigError, match=named):
        update_index(_shop_products()[:2], [], served, progress=False)
    assert open_pipeline(_dense_settings(tmp_path, str(tiny_bert_dir), **encoding)).run("lamp", None, size=3).hits


def test_cardless_models_load_unless_a_card_is_required(tiny_bert_dir, tmp_path):
    assert resolve_encoder(DenseSettings(model=PACKAGED_MINILM, require_card=True), tmp_path).card_sha256 is None
    settings = _dense_settings(tmp_path, str(tiny_bert_dir))
    build_index(_shop_products(), settings, progress=False)
    assert open_pipeline(settings).run("lamp", None, size=3).hits
    assert read_manifest(settings)["dense_card_sha256"] is None
    with pytest.raises(ConfigError, match="has no model card and dense.require_card is true"):
        resolve_encoder(DenseSettings(model=str(tiny_bert_dir), require_card=True), tmp_path)
    with pytest.raises(ConfigError, match="no model named 'unknown' in the registry"):
        resolve_encoder(DenseSettings(model="unknown"), tmp_path)


def test_an_index_built_with_another_encoder_is_refused_until_reindexed(tiny_bert_dir, tmp_path):
    _register(tmp_path / "models", "enc", tiny_bert_dir)
    settings = _dense_settings(tmp_path, "enc")
    build_index(_shop_products(), settings, progress=False)
    _register(tmp_path / "models", "enc", tiny_bert_dir, created="2025-02-01T00:00:00Z")  # retrained, same name
    with pytest.raises(ConfigError, match=r"built with the encoder 'enc' \(card sha256 .*reindex"):
        open_pipeline(settings)
    with pytest.raises(ConfigError, match="reindex"):
        update_index(_shop_products()[:2], [], settings, progress=False)
    with pytest.raises(ConfigError, match=r"'enc' \(card sha256 .* dense.model is '.*' \(no card\)"):
        open_pipeline(_dense_settings(tmp_path, str(tiny_bert_dir)))
    build_index(_shop_products(), settings, progress=False)
    assert open_pipeline(settings).run("lamp", None, size=3).hits


def _click_log(path, products, rng) -> None:
    """Simulated shoppers on the shop: every query shown 30 times in shuffled order, clicking by grade."""
    queries, grades = _shop_split(products, (None, *COLOURS))
    by_text = {queries[qid].text: judged for qid, judged in grades.items()}
    ids = [p.id for p in products]
    rankings = [(text, [ids[i] for i in rng.permutation(len(ids))[:12]]) for text in by_text for _ in range(30)]
    impressions = simulate_clicks(by_text, rankings, [1.0] * 12, rng)
    path.write_text(
        "".join(
            json.dumps({"query": i.query, "shown": list(i.shown), "clicked": sorted(i.clicked)}) + "\n"
            for i in impressions
        ),
        encoding="utf-8",
    )


def _train_from_clicks(kind: str, root, tmp_path, seed: int, *options: str):
    """`train KIND --clicks` on a simulated click log over the shop's index; the CLI result and the saved card."""
    _click_log(tmp_path / "clicks.jsonl", _shop_products(), np.random.default_rng(seed))
    settings = {
        "index_dir": str(root / "idx"),
        "models_dir": str(tmp_path / "models"),
        "dense": {"enabled": False},
        "longtail": {"enabled": False},
    }
    (tmp_path / "settings.json").write_text(json.dumps(settings), encoding="utf-8")
    result = CliRunner().invoke(
        main,
        [
            "--settings",
            str(tmp_path / "settings.json"),
            "train",
            kind,
            "--clicks",
            str(tmp_path / "clicks.jsonl"),
            "--name",
            "clicked",
            "--epochs",
            "1",
            "--eval-steps",
            "2",
            "--min-impressions",
            "2",
            *options,
        ],
    )
    assert result.exit_code == 0, result.output
    return result, load_card(tmp_path / "models" / "clicked")


def test_train_encoder_from_a_click_log_writes_a_clicks_card(shop, tiny_bert_dir, tmp_path):
    result, card = _train_from_clicks(
        "encoder", shop[3], tmp_path, 3, "--base-model", str(tiny_bert_dir), "--batch-size", "8", "--max-triplets", "24"
    )
    assert card.data.label_source == "clicks" and card.data.path == str(tmp_path / "clicks.jsonl")
    assert card.data.splits["train"].queries > 0 and card.data.splits["dev"].queries > 0
    assert "dev nDCG@10" in result.output


def test_train_reranker_from_a_click_log_writes_a_clicks_card(shop, tiny_cross_encoder_dir, tmp_path):
    _, card = _train_from_clicks(
        "reranker", shop[3], tmp_path, 4, "--base-model", str(tiny_cross_encoder_dir), "--max-pairs", "24"
    )
    assert card.kind == "reranker" and card.data.label_source == "clicks"


def test_click_logs_are_read_as_plain_json_lines_or_as_a_glob_of_ubi_files(tmp_path):
    (tmp_path / "plain.jsonl").write_text('{"query": "lamp", "shown": ["a", "b"], "clicked": ["b"]}\n')
    ubi = tmp_path / "ubi"
    ubi.mkdir()
    (ubi / "queries.ndjson").write_text('{"query_id": "s1", "user_query": "lamp"}\n')
    events = [
        {
            "action_name": action,
            "query_id": "s1",
            "timestamp": 1000 + n,
            "event_attributes": {"position": {"ordinal": ordinal}, "object": {"object_id": doc}},
        }
        for n, (action, ordinal, doc) in enumerate([("impression", 0, "a"), ("impression", 1, "b"), ("click", 1, "b")])
    ]
    (ubi / "events.ndjson").write_text("".join(json.dumps(e) + "\n" for e in events))
    for source in (tmp_path / "plain.jsonl", ubi / "*.ndjson"):
        [impression] = read_clicks(source)
        assert (impression.query, impression.shown, impression.clicked) == ("lamp", ("a", "b"), {"b"})
    with pytest.raises(DataError, match="no such click log"):
        read_clicks(tmp_path / "missing.jsonl")


def test_click_splits_put_every_query_text_on_one_side_for_good():
    impressions = [Impression(f"{word} lamp", ("a", "b"), frozenset("a")) for word in COLOURS for _ in range(10)]
    splits = click_splits(impressions, min_impressions=5)
    train, dev = (set(q.text for q in splits[s][0].values()) for s in ("train", "dev"))
    assert train and dev and not train & dev and train | dev == {f"{w} lamp" for w in COLOURS}
    assert click_splits(impressions[::-1] + impressions, min_impressions=5)["dev"][1].keys() == splits["dev"][1].keys()


def test_train_needs_a_dataset_or_a_click_log(tmp_path):
    result = CliRunner().invoke(main, ["train", "encoder", "--name", "x"])
    assert result.exit_code != 0 and "give --dataset, --clicks, or both" in result.output


def test_a_cap_on_triplets_retrieves_the_first_stage_of_no_more_train_queries_than_triplets(
    shop, tiny_bert_dir, tmp_path, capsys
):
    """The Home Depot layout's onboarding retrieved all 19,024 train queries' lists (9.7 minutes) to keep 3,000."""
    pipeline, train, dev, _ = shop
    config = EncoderTraining(base_model=str(tiny_bert_dir), **{**TINY, "max_triplets": 5})
    card = train_encoder(pipeline, train, dev, tmp_path / "capped", config, progress=True)
    retrieved = re.findall(r"first stage: 100%\|██████████\| (\d+)/\1", capsys.readouterr().err)
    assert len(train[1]) > 5 and 1 <= int(retrieved[0]) <= 5
    assert card.data.splits["train"].pairs == 5
