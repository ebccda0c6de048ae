import numpy as np
import pytest

from search_rerank.core.candidate import Candidate
from search_rerank.core.diversity import category_similarity, intra_list_diversity, mmr, similarity_matrix
from search_rerank.core.retrieval import Stage
from search_rerank.core.settings import DiversitySettings


@pytest.fixture(scope="module")
def built(built_index, tiny_bert_dir):
    dense = {"model": str(tiny_bert_dir), "device": "cpu", "candidates": 40}
    return built_index(products=300, queries=30, seed=5, dense=dense, lexical={"candidates": 40})


@pytest.fixture(scope="module")
def settings(built):
    return built.settings


@pytest.fixture(scope="module")
def pipeline(built):
    p = built.pipeline()
    yield p
    p.close()


def _ids(candidates):
    return [c.product_id for c in candidates]


# a and b are near-duplicates, c is different and a little less relevant
CANDIDATES = [Candidate("a", 1.0), Candidate("b", 0.95), Candidate("c", 0.9)]
VECTORS = {"a": np.array([1.0, 0.0]), "b": np.array([0.99, 0.1]), "c": np.array([0.0, 1.0])}


def test_mmr_moves_a_near_duplicate_below_a_different_product():
    sim = similarity_matrix(_ids(CANDIDATES), VECTORS, {})
    out = mmr(CANDIDATES, sim, DiversitySettings(enabled=True, lambda_=0.5))
    assert _ids(out) == ["a", "c", "b"]


def test_mmr_with_lambda_one_keeps_the_relevance_order():
    sim = similarity_matrix(_ids(CANDIDATES), VECTORS, {})
    out = mmr(CANDIDATES, sim, DiversitySettings(enabled=True, lambda_=1.0))
    assert _ids(out) == ["a", "b", "c"]


def test_mmr_disabled_returns_the_input_unchanged():
    sim = similarity_matrix(_ids(CANDIDATES), VECTORS, {})
    out = mmr(CANDIDATES, sim, DiversitySettings(enabled=False, lambda_=0.0))
    assert out == CANDIDATES


def test_mmr_keeps_candidates_below_the_depth_in_order_and_below_the_window():
    many = [Candidate(str(i), 1.0 - i / 10) for i in range(6)]
    sim = np.eye(2)
    out = mmr(many, sim, DiversitySettings(enabled=True, lambda_=0.3, depth=2))
    assert _ids(out)[2:] == ["2", "3", "4", "5"]
    assert min(c.score for c in out[:2]) > max(c.score for c in out[2:])


def test_mmr_refuses_a_similarity_matrix_of_the_wrong_size():
    with pytest.raises(ValueError, match="3x3"):
        mmr(CANDIDATES, np.eye(2), DiversitySettings(enabled=True))


def test_similarity_falls_back_to_category_without_vectors():
    categories = {"a": ("Furniture", "Sofas"), "b": ("Furniture", "Sofas"), "c": ("Lighting",)}
    sim = similarity_matrix(["a", "b", "c"], {"a": VECTORS["a"]}, categories)
    assert sim[0, 1] == 1.0 and sim[0, 2] == 0.0


def test_category_similarity_gives_half_for_siblings():
    assert category_similarity(("Furniture", "Sofas"), ("Furniture", "Tables")) == 0.5
    assert category_similarity((), ("Furniture",)) == 0.0


def test_mmr_by_category_interleaves_product_types():
    cands = [Candidate("s1", 1.0), Candidate("s2", 0.99), Candidate("t1", 0.9)]
    categories = {"s1": ("F", "Sofas"), "s2": ("F", "Sofas"), "t1": ("L", "Lamps")}
    sim = similarity_matrix(_ids(cands), {}, categories)
    assert _ids(mmr(cands, sim, DiversitySettings(enabled=True, lambda_=0.5))) == ["s1", "t1", "s2"]


def test_intra_list_diversity_is_zero_for_identical_items_and_one_for_orthogonal():
    assert intra_list_diversity(np.ones((3, 3))) == 0.0
    assert intra_list_diversity(np.eye(3)) == 1.0


def test_pipeline_skips_diversity_by_default(pipeline, settings):
    ranking = pipeline.run("sofa", size=5, settings=settings).ranking
    assert Stage.DIVERSITY not in ranking.stages
    assert ranking.skipped[Stage.DIVERSITY] == "diversity (MMR) disabled in settings"


def test_pipeline_diversifies_with_stored_vectors_when_enabled(pipeline, settings):
    plain = pipeline.run("sofa", size=10, settings=settings)
    varied = settings.override(diversity={"enabled": True, "lambda_": 0.0})
    result = pipeline.run("sofa", size=10, settings=varied)
    assert Stage.DIVERSITY in result.ranking.stages
    assert set(result.ranking.candidates[0].features) >= {"mmr_gain", "relevance"}
    assert [h.product.id for h in result.hits] != [h.product.id for h in plain.hits]
