import json
import re

import numpy as np
import pytest

from search_rerank.data.generate import (
    EXACT,
    PARTIAL,
    GeneratorConfig,
    QuerySpec,
    generate,
    grade,
    make_catalog,
    misspell,
)
from search_rerank.data.loaders import load_beir
from search_rerank.data.taxonomy import COLOURS, TYPES


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen")
    manifest = generate(out, GeneratorConfig(products=2000, queries=300, seed=5, workers=1), progress=False)
    return out, manifest


def test_taxonomy_has_at_least_40_types_in_6_departments():
    assert len(TYPES) >= 40
    assert len({t.department for t in TYPES}) >= 6


def test_generated_dataset_loads_as_beir(generated):
    out, manifest = generated
    data = load_beir(out)
    assert len(data.products) == manifest.products == 2000
    assert set(data.qrels) == {"train", "dev", "test"}


def test_generation_is_deterministic_for_a_seed(tmp_path, generated):
    out, _ = generated
    generate(tmp_path, GeneratorConfig(products=2000, queries=300, seed=5, workers=2), progress=False)
    assert (tmp_path / "corpus.jsonl").read_bytes() == (out / "corpus.jsonl").read_bytes()
    assert (tmp_path / "qrels" / "test.tsv").read_bytes() == (out / "qrels" / "test.tsv").read_bytes()


def test_every_query_has_an_exact_match(generated):
    out, _ = generated
    data = load_beir(out)
    for split in data.qrels.values():
        for qid, judged in split.items():
            assert EXACT in judged.values(), qid


def test_heldout_type_queries_are_only_in_test(generated):
    out, manifest = generated
    heldout = set(manifest.heldout_types)
    for line in (out / "queries.jsonl").read_text().splitlines():
        q = json.loads(line)
        if heldout & set(q["types"].split(",")):
            assert q["split"] == "test"


def test_all_query_kinds_are_generated(generated):
    _, manifest = generated
    assert set(manifest.query_kinds) == {"head", "attribute", "synonym", "intent", "brand", "model", "misspelt"}


def test_labels_are_complete_for_a_colour_query():
    cat = make_catalog(GeneratorConfig(products=3000, queries=10))
    by_type = [np.flatnonzero(cat.type == t) for t in range(len(TYPES))]
    sofa = next(i for i, t in enumerate(TYPES) if t.key == "sofa")
    red = COLOURS.index("red")
    ids, grades = grade(cat, QuerySpec("red sofa", "attribute", (sofa,), (("colour", red),)), by_type)
    labels = dict(zip(ids.tolist(), grades.tolist()))
    red_sofas = {int(i) for i in by_type[sofa] if cat.colour[i] == red}
    assert {i for i, g in labels.items() if g == EXACT} == red_sofas
    assert all(labels[int(i)] == PARTIAL for i in by_type[sofa] if cat.colour[i] != red)


def test_popularity_is_heavy_tailed():
    cat = make_catalog(GeneratorConfig(products=20000, queries=10))
    top = np.sort(cat.sales)[::-1]
    assert top[: len(top) // 10].sum() > 0.5 * top.sum()


def test_misspelling_changes_one_word():
    rng = np.random.default_rng(0)
    typo = misspell("scandinavian bookcase", rng)
    assert typo != "scandinavian bookcase"
    assert sum(a != b for a, b in zip(typo.split(), "scandinavian bookcase".split())) == 1


@pytest.fixture(scope="module")
def pooled(tmp_path_factory):
    out = tmp_path_factory.mktemp("pooled")
    manifest = generate(
        out, GeneratorConfig(products=1500, queries=120, seed=3, workers=1, pooled=4, pool_depth=12), progress=False
    )
    return out, manifest


def test_pooled_judgments_are_a_few_per_query_with_true_grades(pooled):
    out, manifest = pooled
    complete, sparse = load_beir(out), load_beir(out / "pooled")
    assert set(sparse.qrels) == {"train", "dev", "test"}
    for split, judged in sparse.qrels.items():
        for qid, labels in judged.items():
            assert 1 <= len(labels) <= 4
            truth = complete.qrels[split][qid]
            assert all(grade == truth.get(pid, 0) for pid, grade in labels.items())
    assert sum(manifest.pooled_judgments.values()) < sum(manifest.judgments.values()) / 10


def test_pooled_judgments_come_from_the_lexical_top(pooled):
    """Judged products share words with the query; most relevant products stay unjudged."""
    out, _ = pooled
    sparse = load_beir(out / "pooled")
    complete = load_beir(out)
    texts = {p.id: (p.title + " " + p.description + " " + p.attribute_text()).lower() for p in complete.products}
    judged = [(qid, pid) for labels in sparse.qrels.values() for qid, ls in labels.items() for pid in ls]
    overlap = [any(w in texts[pid] for w in complete.queries[qid].text.lower().split()) for qid, pid in judged]
    assert np.mean(overlap) > 0.9


def test_pooled_must_not_exceed_the_pool():
    with pytest.raises(ValueError, match="pool_depth"):
        GeneratorConfig(pooled=30, pool_depth=20)


def test_tail_listings_carry_less_attribute_data_than_best_sellers(generated):
    out, _ = generated
    products = load_beir(out).products
    by_sales = sorted(products, key=lambda p: p.sales)
    fifth = len(by_sales) // 5
    tail = np.mean([len(p.attributes) for p in by_sales[:fifth]])
    head = np.mean([len(p.attributes) for p in by_sales[-fifth:]])
    assert head > tail + 1


@pytest.fixture(scope="module")
def hard(tmp_path_factory):
    out = tmp_path_factory.mktemp("hard")
    manifest = generate(
        out, GeneratorConfig(products=1500, queries=200, seed=7, workers=1, profile="hard"), progress=False
    )
    return out, manifest


def test_hard_profile_listings_are_title_only(hard):
    out, _ = hard
    for product in load_beir(out).products:
        assert product.description == ""
        assert product.attributes == {}
        assert product.category == ()
        assert product.brand and product.title.startswith(product.brand)


def test_hard_profile_titles_carry_model_numbers_and_units(hard):
    out, _ = hard
    titles = [p.title for p in load_beir(out).products]
    model = re.compile(r"\b[A-Z0-9]{2,4}-\d{4}[A-Z]\b")
    units = re.compile(r"\d (in|ft|mm)\.?\b|\d+V\b|\d-Pack\b|Gal\.")
    assert np.mean([bool(model.search(t)) for t in titles]) > 0.5
    assert np.mean([bool(units.search(t)) for t in titles]) > 0.5


def test_hard_profile_leaves_most_products_without_popularity(hard):
    out, _ = hard
    products = load_beir(out).products
    assert np.mean([p.sales == 0 and p.review_count == 0 and p.rating is None for p in products]) > 0.7


def test_hard_profile_queries_include_partial_model_numbers_and_units(hard):
    out, manifest = hard
    queries = [json.loads(line) for line in (out / "queries.jsonl").read_text().splitlines()]
    assert {"unit", "model", "brand", "misspelt"} <= set(manifest.query_kinds)
    numbers_only = [q for q in queries if q["kind"] == "model" and re.fullmatch(r"\d{4}[a-zA-Z]", q["text"])]
    assert numbers_only


def test_hard_profile_default_labels_are_sparse_with_true_grades(hard):
    out, manifest = hard
    assert manifest.labels == "pooled"
    sparse, complete = load_beir(out), load_beir(out / "complete")
    for split, judged in sparse.qrels.items():
        for qid, labels in judged.items():
            assert 1 <= len(labels) <= manifest.config["pooled"]
            assert all(grade == complete.qrels[split][qid].get(pid, 0) for pid, grade in labels.items())
    assert sum(manifest.pooled_judgments.values()) < sum(manifest.judgments.values()) / 4


def test_hard_profile_is_deterministic_for_a_seed(tmp_path, hard):
    out, _ = hard
    generate(tmp_path, GeneratorConfig(products=1500, queries=200, seed=7, workers=2, profile="hard"), progress=False)
    for name in ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv", "complete/qrels/test.tsv"):
        assert (tmp_path / name).read_bytes() == (out / name).read_bytes(), name


def test_unknown_profile_is_rejected():
    with pytest.raises(ValueError, match="profile"):
        GeneratorConfig(profile="medium")


def test_generate_command_writes_the_hard_profile_when_asked(tmp_path):
    from click.testing import CliRunner

    from search_rerank.cli import main

    args = ["generate", "--out", str(tmp_path), "--products", "300", "--queries", "40", "--workers", "1"]
    result = CliRunner().invoke(main, [*args, "--profile", "hard"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["config"]["profile"] == "hard"
    assert manifest["labels"] == "pooled"
    assert (tmp_path / "complete" / "qrels" / "test.tsv").exists()
