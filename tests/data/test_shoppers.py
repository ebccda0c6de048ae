"""Simulated shoppers (data.shoppers): hidden tastes, a UBI log of earlier sessions, judgments of later ones."""

from __future__ import annotations

import json
from datetime import datetime

import numpy as np
import pytest

from search_rerank.core.errors import ConfigError
from search_rerank.data.clicks import read_ubi
from search_rerank.data.generate import GeneratorConfig, generate
from search_rerank.data.loaders import load_beir
from search_rerank.data.qrels import read_beir_qrels
from search_rerank.data.shoppers import ShopperConfig, personal_grades
from search_rerank.serving.ubi import UbiEvent, UbiQuery

SHOPPERS = ShopperConfig(shoppers=120)


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    out = tmp_path_factory.mktemp("shoppers")
    manifest = generate(out, GeneratorConfig(products=800, queries=80, seed=7, workers=1), False, SHOPPERS)
    return out, manifest


def _lines(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _shared_qrels(out):
    shared = {}
    for split in ("train", "dev", "test"):
        shared.update(read_beir_qrels(out / "qrels" / f"{split}.tsv"))
    return shared


def test_personal_grades_raise_only_relevant_products_that_match_the_taste():
    grades = np.array([0, 0, 1, 1, 2, 2])
    matches = np.array([3, 0, 2, 1, 2, 0])
    assert personal_grades(grades, matches, preferred_matches=2).tolist() == [0, 0, 2, 1, 3, 2]


def test_heldout_judgments_differ_from_the_shared_ones_only_by_a_grade_up_on_relevant_products(simulated):
    out, _ = simulated
    shared = _shared_qrels(out)
    queries = {q["_id"]: q for q in _lines(out / "shoppers" / "queries.jsonl")}
    raised = 0
    for split in ("dev", "test"):
        for qid, judged in read_beir_qrels(out / "shoppers" / "qrels" / f"{split}.tsv").items():
            base = shared[queries[qid]["query"]]
            assert set(judged) == set(base), qid
            for pid, grade in judged.items():
                assert grade - base[pid] in (0, 1), (qid, pid)
                if grade > base[pid]:
                    assert base[pid] > 0, f"{qid}: irrelevant {pid} gained a grade"
                    raised += 1
    assert raised > 0


def test_shoppers_without_taste_are_judged_by_the_shared_grades(simulated):
    out, _ = simulated
    shared = _shared_qrels(out)
    tasteless = {
        s["id"] for s in _lines(out / "shoppers" / "shoppers.jsonl") if not any(s["taste"][f] for f in s["taste"])
    }
    assert tasteless
    queries = {q["_id"]: q for q in _lines(out / "shoppers" / "queries.jsonl")}
    for split in ("dev", "test"):
        for qid, judged in read_beir_qrels(out / "shoppers" / "qrels" / f"{split}.tsv").items():
            if queries[qid]["shopper"] in tasteless:
                assert judged == shared[queries[qid]["query"]]


def test_segments_come_in_the_configured_shares(simulated):
    _, manifest = simulated
    counts = manifest.shoppers.shoppers
    assert sum(counts.values()) == SHOPPERS.shoppers
    for segment, share in (
        ("returning", SHOPPERS.returning_share),
        ("cold", SHOPPERS.cold_share),
        ("anonymous", SHOPPERS.anonymous_share),
    ):
        assert abs(counts[segment] / SHOPPERS.shoppers - share) < 0.12, counts


def test_cold_shoppers_log_at_most_two_events_and_anonymous_ones_none_with_a_user_id(simulated):
    out, _ = simulated
    segment = {s["id"]: s["segment"] for s in _lines(out / "shoppers" / "shoppers.jsonl")}
    events: dict[str, int] = {}
    for record in _lines(out / "shoppers" / "ubi.ndjson"):
        if "action_name" in record:
            assert segment[record["client_id"]] != "anonymous" or "user_id" not in record
            if "user_id" in record:
                events[record["user_id"]] = events.get(record["user_id"], 0) + 1
    cold = [events.get(s, 0) for s, kind in segment.items() if kind == "cold"]
    returning = [events.get(s, 0) for s, kind in segment.items() if kind == "returning"]
    assert cold and max(cold) <= 2
    assert min(returning) > 2


def test_logged_sessions_all_come_before_the_shoppers_heldout_searches(simulated):
    out, _ = simulated
    last_logged: dict[str, datetime] = {}
    for record in _lines(out / "shoppers" / "ubi.ndjson"):
        at = datetime.fromisoformat(record["timestamp"])
        last_logged[record["client_id"]] = max(at, last_logged.get(record["client_id"], at))
    heldout = _lines(out / "shoppers" / "queries.jsonl")
    assert heldout
    for query in heldout:
        if query["shopper"] in last_logged:
            assert datetime.fromisoformat(query["timestamp"]) > last_logged[query["shopper"]]


def test_the_log_is_valid_ubi_that_read_ubi_reads_with_clicks(simulated):
    out, _ = simulated
    for record in _lines(out / "shoppers" / "ubi.ndjson"):
        (UbiEvent if "action_name" in record else UbiQuery).model_validate(record)
    impressions = read_ubi(out / "shoppers" / "ubi.ndjson")
    assert impressions and any(impression.clicked for impression in impressions)
    assert all(impression.session for impression in impressions)


def test_the_shoppers_folder_loads_as_a_beir_dataset_with_segments_in_query_meta(simulated):
    out, manifest = simulated
    data = load_beir(out / "shoppers")
    assert set(data.qrels) == {"dev", "test"}
    assert {q.meta["segment"] for q in data.queries.values()} == {"returning", "cold", "anonymous"}
    assert sum(len(judged) for judged in data.qrels.values()) == sum(
        sum(by_segment.values()) for by_segment in manifest.shoppers.heldout_queries.values()
    )


def test_without_shoppers_the_generator_writes_the_same_files_as_before(simulated, tmp_path):
    out, _ = simulated
    generate(tmp_path, GeneratorConfig(products=800, queries=80, seed=7, workers=1), progress=False)
    assert not (tmp_path / "shoppers").exists()
    for name in ("corpus.jsonl", "queries.jsonl", "manifest.json", "qrels/test.tsv"):
        assert (tmp_path / name).read_bytes() == (out / name).read_bytes(), name


def test_shopper_shares_that_leave_no_room_are_refused():
    with pytest.raises(ConfigError, match="returning_share"):
        ShopperConfig(returning_share=0.8, cold_share=0.3)
