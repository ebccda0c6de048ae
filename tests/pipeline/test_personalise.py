"""The personalisation stage: a bounded, explained nudge towards the shopper's taste, skipped when it cannot help."""

import numpy as np
import pytest

from search_rerank.core.candidate import Candidate
from search_rerank.core.personalise import DISABLED, NO_PROFILE, bounded_order, personalise, skip_reason
from search_rerank.core.product import Product
from search_rerank.core.profile import ShopperProfile
from search_rerank.core.settings import PersonalisationSettings

SETTINGS = PersonalisationSettings(
    facet_weights={"brand": 0.2}, vector_weight=0.0, cap=0.3, max_rise=10, min_events=3, depth=50, relevance_power=0.0
)


def catalogue(n=6):
    """p0..p5 close together at the top (p5 of the loved brand), and a far weaker p6 that sets the scale."""
    products = {f"p{i}": Product(id=f"p{i}", title=f"p{i}", brand="Loved" if i == n - 1 else f"B{i}") for i in range(n)}
    products[f"p{n}"] = Product(id=f"p{n}", title="weak", brand="Weak")
    candidates = [Candidate(f"p{i}", 1.0 - 0.02 * i) for i in range(n)] + [Candidate(f"p{n}", 0.0)]
    return products, candidates


def loves(brand="loved", events=5.0, vector=None):
    return ShopperProfile(key="user:u", affinities={"brand": {brand: 1.0}}, vector=vector, events=events)


def ids(candidates):
    return [c.product_id for c in candidates]


def test_personalise_lifts_the_product_of_the_loved_brand():
    products, candidates = catalogue()
    out = personalise(candidates, products, {}, loves(), SETTINGS)
    assert ids(out)[0] == "p5"


def test_personalise_records_the_added_term_per_hit():
    products, candidates = catalogue()
    out = {c.product_id: c for c in personalise(candidates, products, {}, loves(), SETTINGS)}
    assert out["p5"].features["personal"] == pytest.approx(0.2)
    assert out["p0"].features["personal"] == 0.0


def test_personalise_caps_the_added_term():
    products, candidates = catalogue()
    settings = SETTINGS.model_copy(update={"facet_weights": {"brand": 5.0}, "cap": 0.1})
    out = {c.product_id: c for c in personalise(candidates, products, {}, loves(), settings)}
    assert out["p5"].features["personal"] == pytest.approx(0.1)


def test_personalise_moves_no_product_up_more_than_max_rise():
    products, candidates = catalogue()
    settings = SETTINGS.model_copy(update={"max_rise": 2, "facet_weights": {"brand": 5.0}, "cap": 5.0})
    out = personalise(candidates, products, {}, loves(), settings)
    assert ids(out).index("p5") == 3


@pytest.mark.parametrize("max_rise", [0, 1, 3, 50])
def test_bounded_order_is_a_permutation_in_which_no_item_rises_more_than_max_rise(max_rise):
    scores = np.random.default_rng(max_rise).random(40)
    order = bounded_order(scores, max_rise)
    assert sorted(order) == list(range(40))
    assert all(i - position <= max_rise for position, i in enumerate(order))


def test_bounded_order_is_the_order_by_score_when_that_respects_the_bound():
    assert bounded_order(np.array([0.2, 0.9, 0.5, 0.1]), 1) == [1, 2, 0, 3]


def test_bounded_order_holds_back_an_item_until_the_first_position_it_may_take():
    assert bounded_order(np.array([0.1, 0.2, 0.9]), 1) == [1, 2, 0]


def test_personalise_adds_the_cosine_with_the_profile_vector():
    products, candidates = catalogue()
    vectors = {pid: np.array([1.0, 0.0]) for pid in products}
    vectors["p3"] = np.array([0.0, 1.0])
    settings = SETTINGS.model_copy(update={"facet_weights": {}, "vector_weight": 0.3})
    out = personalise(candidates, products, vectors, loves(vector=np.array([0.0, 1.0])), settings)
    assert ids(out)[0] == "p3"
    assert out[0].features["personal_cosine"] == pytest.approx(1.0)


def test_personalise_keeps_the_order_below_the_window():
    products, candidates = catalogue()
    settings = SETTINGS.model_copy(update={"depth": 3})
    out = personalise(candidates, products, {}, loves(), settings)
    assert ids(out) == ids(candidates)
    assert [c.score for c in out] == sorted((c.score for c in out), reverse=True)


def test_personalise_leaves_a_cold_shoppers_list_unchanged():
    products, candidates = catalogue()
    assert personalise(candidates, products, {}, loves(events=2.0), SETTINGS) == candidates


def test_skip_reason_names_anonymous_cold_and_disabled():
    assert skip_reason(None, SETTINGS) == NO_PROFILE
    assert "cold shopper" in (skip_reason(loves(events=2.0), SETTINGS) or "")
    assert skip_reason(loves(), SETTINGS.model_copy(update={"enabled": False})) == DISABLED
    assert skip_reason(loves(), SETTINGS) is None


def test_personalise_scales_the_term_by_relevance():
    products, candidates = catalogue()
    settings = SETTINGS.model_copy(update={"relevance_power": 1.0})
    out = {c.product_id: c for c in personalise(candidates, products, {}, loves(), settings)}
    assert out["p5"].features["personal"] == pytest.approx(0.2 * 0.9)


def colour_catalogue():
    """p0 blue, p1 red (slightly weaker), both named by a query for "blue"."""
    products = {
        "p0": Product(id="p0", title="blue sofa", attributes={"color": ["Blue"]}),
        "p1": Product(id="p1", title="red sofa", attributes={"color": ["Red"]}),
        "p2": Product(id="p2", title="weak", attributes={"color": ["Green"]}),
    }
    return products, [Candidate("p0", 1.0), Candidate("p1", 0.98), Candidate("p2", 0.0)]


def likes_red():
    return ShopperProfile(key="user:u", affinities={"color": {"red": 1.0}}, events=5.0)


def test_personalise_ignores_a_facet_the_query_names():
    products, candidates = colour_catalogue()
    settings = SETTINGS.model_copy(update={"facet_weights": {"color": 0.2}})
    out = personalise(candidates, products, {}, likes_red(), settings, query="Blue sofa")
    assert ids(out)[:2] == ["p0", "p1"]


def test_personalise_applies_a_facet_the_query_does_not_name():
    products, candidates = colour_catalogue()
    settings = SETTINGS.model_copy(update={"facet_weights": {"color": 0.2}})
    out = personalise(candidates, products, {}, likes_red(), settings, query="bluest sofa")
    assert ids(out)[:2] == ["p1", "p0"]
