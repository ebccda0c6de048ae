"""Shopper profiles: weights per action, decay, bounds, TTL, and the session/long-term mix."""

import json

import numpy as np
import pytest

from search_rerank.core.product import Product
from search_rerank.core.profile import (
    VECTOR_FIELD,
    ShopperProfile,
    apply_event,
    decayed,
    facet_values,
    mix,
    price_band,
    session_key,
    user_key,
)
from search_rerank.core.settings import PersonalisationSettings

SETTINGS = PersonalisationSettings(half_life_s=100.0, session_half_life_s=10.0, ttl_s=1000.0)


def product(pid="p1", brand="Acme", color="Red", price=100.0, **attributes):
    return Product(
        id=pid,
        title=f"thing {pid}",
        brand=brand,
        category=("Furniture", "Sofas"),
        attributes={"color": color, **attributes},
        price=price,
    )


def test_facet_values_read_category_brand_attributes_and_price_band_lowercased():
    values = facet_values(product(material="Oak", style="Modern", size="Large"))
    assert values == {
        "category": ("furniture > sofas",),
        "brand": ("acme",),
        "color": ("red",),
        "material": ("oak",),
        "style": ("modern",),
        "size": ("large",),
        "price_band": ("64-128",),
    }


def test_facet_values_read_the_british_spelling_of_colour():
    p = Product(id="x", title="x", attributes={"colour": "Blue"})
    assert facet_values(p)["color"] == ("blue",)


def test_price_band_is_one_band_per_doubling_and_none_without_a_price():
    assert price_band(100.0) == price_band(127.0) == "64-128"
    assert price_band(128.0) == "128-256"
    assert price_band(None) is None


def test_apply_event_weighs_a_purchase_more_than_a_click():
    clicked = apply_event(None, "user:u", product(brand="A"), "click", 0.0, None, SETTINGS)
    both = apply_event(clicked, "user:u", product(pid="p2", brand="B"), "purchase", 0.0, None, SETTINGS)
    assert both.affinities["brand"] == {"a": 1.0, "b": 5.0}
    assert both.events == 2.0


def test_apply_event_leaves_the_given_profile_unchanged():
    first = apply_event(None, "user:u", product(), "click", 0.0, None, SETTINGS)
    apply_event(first, "user:u", product(brand="B"), "purchase", 10.0, None, SETTINGS)
    assert first.affinities["brand"] == {"acme": 1.0} and first.events == 1.0


def test_apply_event_with_an_impression_only_ages_the_profile():
    first = apply_event(None, "user:u", product(), "click", 0.0, None, SETTINGS)
    after = apply_event(first, "user:u", product(brand="Other"), "impression", 100.0, None, SETTINGS)
    assert after.affinities["brand"] == {"acme": pytest.approx(0.5)}
    assert after.events == pytest.approx(0.5)


def test_apply_event_halves_old_weights_after_one_half_life():
    first = apply_event(None, "user:u", product(brand="Old"), "click", 0.0, None, SETTINGS)
    later = apply_event(first, "user:u", product(brand="New"), "click", 100.0, None, SETTINGS)
    assert later.affinities["brand"] == {"old": pytest.approx(0.5), "new": 1.0}


def test_a_late_event_adds_what_is_left_of_it_by_the_profiles_time():
    """Events arrive out of order (a front end's clock, a queued event): one from before the profile's last
    update counts as much as it would have had it come in order, as ``profiles build`` (which replays in time
    order) counts it."""
    old, new = product(brand="Old"), product(pid="p2", brand="New")
    in_order = apply_event(
        apply_event(None, "user:u", old, "click", 0.0, None, SETTINGS), "user:u", new, "click", 200.0, None, SETTINGS
    )
    late = apply_event(
        apply_event(None, "user:u", new, "click", 200.0, None, SETTINGS), "user:u", old, "click", 0.0, None, SETTINGS
    )
    assert late.affinities["brand"] == pytest.approx(in_order.affinities["brand"]) == {"old": 0.25, "new": 1.0}
    assert late.events == pytest.approx(in_order.events) and late.updated_at == in_order.updated_at == 200.0


def test_apply_event_uses_the_half_life_it_is_given_for_sessions():
    first = apply_event(None, "session:s", product(brand="Old"), "click", 0.0, None, SETTINGS, half_life_s=10.0)
    later = apply_event(first, "session:s", product(brand="New"), "click", 10.0, None, SETTINGS, half_life_s=10.0)
    assert later.affinities["brand"]["old"] == pytest.approx(0.5)


def test_apply_event_keeps_only_the_strongest_values_per_facet():
    settings = SETTINGS.model_copy(update={"max_values_per_facet": 2})
    profile = None
    for i, (brand, action) in enumerate([("A", "purchase"), ("B", "click"), ("C", "add_to_cart")]):
        profile = apply_event(profile, "user:u", product(pid=f"p{i}", brand=brand), action, 0.0, None, settings)
    assert profile is not None and set(profile.affinities["brand"]) == {"a", "c"}


def test_apply_event_starts_again_after_the_ttl():
    first = apply_event(None, "user:u", product(brand="Old"), "purchase", 0.0, None, SETTINGS)
    later = apply_event(first, "user:u", product(brand="New"), "click", 5000.0, None, SETTINGS)
    assert later.affinities["brand"] == {"new": 1.0} and later.events == 1.0


def test_apply_event_keeps_the_weighted_mean_of_product_vectors():
    a, b = np.array([1.0, 0.0], dtype=np.float32), np.array([0.0, 1.0], dtype=np.float32)
    first = apply_event(None, "user:u", product(), "click", 0.0, a, SETTINGS)
    second = apply_event(first, "user:u", product(pid="p2"), "add_to_cart", 0.0, b, SETTINGS)
    assert second.vector is not None
    np.testing.assert_allclose(second.vector, [0.25, 0.75])


def test_a_profile_survives_its_record_round_trip():
    profile = apply_event(None, "user:u", product(), "click", 3.0, np.ones(4, np.float32), SETTINGS, user_id="u")
    again = ShopperProfile.from_record(profile.to_record())
    assert again.to_record() == profile.to_record()


def test_decayed_ages_the_event_count_and_weights():
    profile = apply_event(None, "user:u", product(), "purchase", 0.0, None, SETTINGS)
    aged = decayed(profile, 200.0, 100.0)
    assert aged.events == pytest.approx(0.25) and aged.affinities["brand"]["acme"] == pytest.approx(1.25)


def test_mix_blends_session_and_shopper_shares_by_session_weight():
    session = apply_event(None, session_key("s"), product(brand="A"), "click", 0.0, None, SETTINGS)
    shopper = apply_event(None, user_key("u"), product(brand="B"), "purchase", 0.0, None, SETTINGS)
    mixed = mix(session, shopper, SETTINGS.model_copy(update={"session_weight": 0.75}), at=0.0)
    assert mixed is not None
    assert mixed.affinities["brand"] == {"a": pytest.approx(0.75), "b": pytest.approx(0.25)}
    assert mixed.events == 1.0


def test_mix_counts_a_signed_in_shoppers_session_events_once():
    session = shopper = None
    for at in (0.0, 1.0):
        session = apply_event(session, session_key("s"), product(), "click", at, None, SETTINGS, half_life_s=1e9)
        shopper = apply_event(shopper, user_key("u"), product(), "click", at, None, SETTINGS, half_life_s=1e9)
    mixed = mix(session, shopper, SETTINGS.model_copy(update={"half_life_s": 1e9, "session_half_life_s": 1e9}), 1.0)
    assert mixed is not None and mixed.events == pytest.approx(2.0)


def test_mix_of_one_side_is_that_side_aged():
    shopper = apply_event(None, user_key("u"), product(), "click", 0.0, None, SETTINGS)
    mixed = mix(None, shopper, SETTINGS, at=100.0)
    assert mixed is not None and mixed.events == pytest.approx(0.5)


def test_mix_of_nothing_or_expired_profiles_is_none():
    shopper = apply_event(None, user_key("u"), product(), "click", 0.0, None, SETTINGS)
    assert mix(None, None, SETTINGS, at=0.0) is None
    assert mix(None, shopper, SETTINGS, at=5000.0) is None


def test_settings_refuse_an_unknown_facet():
    with pytest.raises(ValueError, match="colour"):
        PersonalisationSettings(facet_weights={"colour": 1.0})


def test_a_profiles_record_keeps_its_vector_exactly_in_a_quarter_of_the_json_of_a_list_of_floats():
    vector = np.random.default_rng(0).normal(size=384).astype(np.float32)
    profile = apply_event(None, "user:u", product(), "click", 3.0, vector, SETTINGS, user_id="u")
    record = profile.to_record()
    again = ShopperProfile.from_record(json.loads(json.dumps(record)))
    assert again.vector is not None and again.vector.dtype == np.float32
    np.testing.assert_array_equal(again.vector, profile.vector)
    as_list = {**record, "vector": [float(x) for x in vector]}
    as_list.pop(VECTOR_FIELD)
    assert len(json.dumps(record)) * 3 < len(json.dumps(as_list))


def test_a_record_written_with_the_vector_as_a_list_of_floats_still_reads():
    profile = apply_event(None, "user:u", product(), "click", 3.0, np.arange(4, dtype=np.float32), SETTINGS)
    record = profile.to_record()
    old = {**{k: v for k, v in record.items() if k != VECTOR_FIELD}, "vector": [0.0, 1.0, 2.0, 3.0]}
    again = ShopperProfile.from_record(old)
    assert again.vector is not None
    np.testing.assert_array_equal(again.vector, np.arange(4, dtype=np.float32))
