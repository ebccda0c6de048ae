import numpy as np
import pytest

from search_rerank.core.candidate import Candidate
from search_rerank.core.errors import ConfigError
from search_rerank.core.fusion import CODE_ANCHOR, IDENTIFIER_QUERY, fuse, l2_norm, linear, rrf
from search_rerank.core.retrieval import leg_candidates
from search_rerank.core.settings import FusionSettings, Settings


def legs():
    return {
        "lexical": leg_candidates("lexical", [("a", 10.0), ("b", 5.0), ("c", 1.0)]),
        "dense": leg_candidates("dense", [("b", 0.9), ("d", 0.8), ("a", 0.1)]),
    }


def test_rrf_scores_are_weighted_reciprocal_ranks():
    fused = {c.product_id: c.score for c in rrf(legs(), rank_constant=60, weights={"lexical": 2.0, "dense": 1.0})}
    assert fused["b"] == pytest.approx(2 / 62 + 1 / 61)
    assert fused["d"] == pytest.approx(1 / 62)


def test_rrf_ranks_product_found_by_both_legs_first():
    assert [c.product_id for c in rrf(legs())][0] == "b"


def test_fused_candidate_keeps_both_legs_features():
    b = next(c for c in rrf(legs()) if c.product_id == "b")
    assert b.legs == {"lexical", "dense"}
    assert b.features["lexical_rank"] == 2 and b.features["dense_rank"] == 1


def test_linear_missing_leg_counts_as_that_legs_worst_score():
    fused = {c.product_id: c.score for c in linear(legs(), normalization="minmax")}
    # d: lexical missing -> 0 (worst), dense (0.8-0.1)/(0.8) = 0.875
    assert fused["d"] == pytest.approx(0.875)


def test_linear_ranks_a_legs_only_hit_above_the_products_it_did_not_find():
    one_hit = {
        "lexical": leg_candidates("lexical", [("z", 21.0)]),
        "dense": leg_candidates("dense", [("a", 0.9), ("b", 0.8), ("z", 0.1)]),
    }
    fused = linear(one_hit, weights={"lexical": 1.0, "dense": 0.0}, normalization="minmax")
    assert [c.product_id for c in fused][0] == "z"


def test_single_leg_fusion_keeps_that_legs_order():
    one = {"lexical": legs()["lexical"]}
    assert [c.product_id for c in fuse(one, FusionSettings(), "lamp")] == ["a", "b", "c"]


def test_fusion_does_not_change_its_input():
    original = legs()
    before = [c.score for c in original["lexical"]]
    rrf(original)
    assert [c.score for c in original["lexical"]] == before


def test_unknown_normalization_lists_valid_ones():
    with pytest.raises(ConfigError, match="minmax"):
        linear(legs(), normalization="softmax")


def test_empty_legs_fuse_to_empty_list():
    assert rrf({"lexical": [], "dense": []}) == []
    assert linear({"lexical": [], "dense": []}) == []


def test_candidate_features_are_read_only():
    c = Candidate("x", 1.0, features={"a": 1.0})
    with pytest.raises(TypeError):
        c.features["a"] = 2.0


def test_with_score_copies_with_new_score_and_merged_read_only_features_leaving_the_original():
    c = Candidate("x", 1.0, legs={"lexical"}, features={"a": 1.0})
    copy = c.with_score(2, b=3.0)
    assert (copy.product_id, copy.score, copy.legs, dict(copy.features)) == (
        "x",
        2.0,
        {"lexical"},
        {"a": 1.0, "b": 3.0},
    )
    assert (c.score, dict(c.features)) == (1.0, {"a": 1.0})
    with pytest.raises(TypeError):
        copy.features["a"] = 2.0  # type: ignore[index]


def test_l2_norm_divides_each_score_by_the_lists_euclidean_norm():
    # Elasticsearch's L2ScoreNormalizer: 3 and 4 become 0.6 and 0.8.
    assert l2_norm(np.array([3.0, 4.0])) == pytest.approx([0.6, 0.8])


def test_l2_norm_leaves_an_all_zero_list_as_it_is():
    assert l2_norm(np.array([0.0, 0.0])).tolist() == [0.0, 0.0]


def test_linear_with_l2_norm_sums_each_legs_l2_normalised_scores():
    fused = {c.product_id: c.score for c in linear(legs(), normalization="l2_norm")}
    lexical_norm, dense_norm = np.sqrt(100 + 25 + 1), np.sqrt(0.81 + 0.64 + 0.01)
    # a: first in the lexical leg, last in the dense one
    assert fused["a"] == pytest.approx(10 / lexical_norm + 0.1 / dense_norm)


def test_linear_without_normalisation_sums_the_raw_scores():
    fused = {c.product_id: c.score for c in linear(legs(), weights={"dense": 10.0}, normalization="none")}
    assert fused["b"] == pytest.approx(5.0 + 10 * 0.9)


def code_legs():
    """BM25 found the model number's product first; the dense leg, which cannot read codes, put it last."""
    return {
        "lexical": leg_candidates("lexical", [("a", 10.0), ("b", 5.0), ("c", 1.0)]),
        "dense": leg_candidates("dense", [("c", 0.9), ("b", 0.8), ("a", 0.1)]),
    }


def test_a_query_naming_a_product_code_is_fused_with_the_identifier_weights():
    settings = FusionSettings(weights={"lexical": 0.5, "dense": 0.5}, identifier_weights={"lexical": 1.0, "dense": 0.0})
    assert [c.product_id for c in fuse(code_legs(), settings, "KE2-7127Q")] == ["a", "b", "c"]


def test_a_descriptive_query_is_fused_with_the_ordinary_weights():
    settings = FusionSettings(weights={"lexical": 0.5, "dense": 0.5}, identifier_weights={"lexical": 1.0, "dense": 0.0})
    assert [c.product_id for c in fuse(code_legs(), settings, "5000K bath mat")][0] != "a"


def test_a_code_querys_hits_say_the_identifier_weights_were_used():
    fused = fuse(code_legs(), FusionSettings(), "grydale 2526i")
    assert all(c.features[IDENTIFIER_QUERY] == 1.0 for c in fused)
    assert all(IDENTIFIER_QUERY not in c.features for c in fuse(code_legs(), FusionSettings(), "grey sofa"))


def test_a_code_query_whose_dense_leg_searched_around_its_product_is_fused_with_the_anchored_weights():
    settings = FusionSettings(
        identifier_weights={"lexical": 1.0, "dense": 0.0}, anchored_weights={"lexical": 0.0, "dense": 1.0}
    )
    fused = fuse(code_legs(), settings, "KE2-7127Q", anchored=True)
    assert [c.product_id for c in fused] == ["c", "b", "a"]
    assert all(c.features[CODE_ANCHOR] == 1.0 and c.features[IDENTIFIER_QUERY] == 1.0 for c in fused)


def test_a_descriptive_query_is_fused_with_the_ordinary_weights_whatever_its_dense_leg_searched():
    settings = FusionSettings(weights={"lexical": 1.0, "dense": 0.0}, anchored_weights={"lexical": 0.0, "dense": 1.0})
    fused = fuse(code_legs(), settings, "grey sofa", anchored=True)
    assert [c.product_id for c in fused] == ["a", "b", "c"] and all(CODE_ANCHOR not in c.features for c in fused)


def test_negative_anchored_weights_are_refused():
    with pytest.raises(ValueError, match="weights must be >= 0"):
        FusionSettings(anchored_weights={"lexical": -1.0})


def test_negative_identifier_weights_are_refused():
    with pytest.raises(ValueError, match="weights must be >= 0"):
        FusionSettings(identifier_weights={"lexical": 1.0, "dense": -0.5})


def test_a_weights_map_naming_one_leg_keeps_the_other_legs_default():
    """``SEARCH_RERANK_FUSION__WEIGHTS__DENSE=0.5`` left the lexical leg out, which fusion then weighted 1.0."""
    assert FusionSettings(weights={"dense": 0.5}).weights == {"lexical": 0.8, "dense": 0.5}


def test_weights_giving_every_leg_zero_are_refused():
    with pytest.raises(ValueError, match="every leg weight 0"):
        FusionSettings(weights={"lexical": 0.0, "dense": 0.0})


def test_a_zero_lexical_weight_without_the_dense_leg_is_refused():
    with pytest.raises(ValueError, match="fused alone"):
        Settings(dense={"enabled": False}, fusion={"weights": {"lexical": 0.0, "dense": 1.0}})
