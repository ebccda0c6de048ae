"""The pure exposure controller: band, dead zone and hysteresis, maximum step, bounds, guardrail, evidence, off."""

import pytest

from search_rerank.core.exposure_control import (
    ABOVE_BAND,
    AT_MAX,
    AT_MIN,
    BELOW_BAND,
    DEAD_ZONE,
    DOWN,
    GUARDRAIL,
    HOLD,
    IN_BAND,
    OFF,
    TOO_FEW,
    UP,
    Decision,
    Observation,
    decide,
)
from search_rerank.core.settings import ExposureControlSettings

SETTINGS = ExposureControlSettings(
    enabled=True,
    target_low=0.2,
    target_high=0.3,
    min_ctr_ratio=0.5,
    min_strength=0.0,
    max_strength=1.0,
    max_step=0.05,
    gain=0.5,
    hysteresis=0.02,
    min_impressions=100,
)


def seen(share, tail_ctr=0.1, head_ctr=0.1, impressions=1000):
    return Observation(impressions=impressions, tail_share=share, tail_ctr=tail_ctr, head_ctr=head_ctr)


def settled_at(strength):
    return decide(strength, seen(0.25), SETTINGS)


@pytest.mark.parametrize("share", [0.2, 0.25, 0.3])
def test_holds_inside_the_band_edges_included(share):
    decision = decide(0.4, seen(share), SETTINGS)
    assert (decision.action, decision.reason, decision.strength) == (HOLD, IN_BAND, 0.4)
    assert decision.settled


def test_moves_up_below_the_band_proportionally_to_the_distance_from_mid_band():
    decision = decide(0.4, seen(0.19), SETTINGS)
    assert (decision.action, decision.reason) == (UP, BELOW_BAND)
    assert decision.strength == pytest.approx(0.4 + 0.5 * (0.25 - 0.19))


def test_moves_down_above_the_band():
    decision = decide(0.4, seen(0.31), SETTINGS)
    assert (decision.action, decision.reason) == (DOWN, ABOVE_BAND)
    assert decision.strength == pytest.approx(0.4 - 0.5 * (0.31 - 0.25))


@pytest.mark.parametrize(("share", "expected"), [(0.0, 0.45), (1.0, 0.35)])
def test_a_far_observation_moves_by_the_maximum_step_only(share, expected):
    assert decide(0.4, seen(share), SETTINGS).strength == pytest.approx(expected)


def test_once_settled_a_share_just_outside_the_band_is_the_dead_zone():
    decision = decide(0.4, seen(0.19), SETTINGS, previous=settled_at(0.4))
    assert (decision.action, decision.reason, decision.strength) == (HOLD, DEAD_ZONE, 0.4)
    assert decision.settled


def test_once_settled_a_share_past_the_hysteresis_moves():
    decision = decide(0.4, seen(0.17), SETTINGS, previous=settled_at(0.4))
    assert (decision.action, decision.reason) == (UP, BELOW_BAND)
    assert not decision.settled


def test_without_having_settled_the_same_share_moves():
    assert decide(0.4, seen(0.19), SETTINGS, previous=decide(0.35, seen(0.1), SETTINGS)).action == UP


def test_at_the_maximum_bound_it_stops_and_says_so():
    decision = decide(1.0, seen(0.0), SETTINGS)
    assert (decision.action, decision.reason, decision.strength) == (HOLD, AT_MAX, 1.0)
    assert decision.at_bound


def test_at_the_minimum_bound_it_stops_and_says_so():
    decision = decide(0.0, seen(0.9), SETTINGS)
    assert (decision.action, decision.reason, decision.strength) == (HOLD, AT_MIN, 0.0)
    assert decision.at_bound


def test_a_step_past_a_bound_lands_on_the_bound():
    decision = decide(0.98, seen(0.0), SETTINGS)
    assert (decision.action, decision.strength, decision.at_bound) == (UP, 1.0, True)


def test_a_strength_outside_the_bounds_is_brought_inside():
    assert decide(3.0, seen(0.25), SETTINGS).strength == 1.0


def test_never_moves_while_the_guardrail_is_breached_below_the_band():
    decision = decide(0.4, seen(0.05, tail_ctr=0.04, head_ctr=0.1), SETTINGS)
    assert (decision.action, decision.reason, decision.strength) == (HOLD, GUARDRAIL, 0.4)
    assert decision.ctr_ratio == pytest.approx(0.4)


def test_never_moves_while_the_guardrail_is_breached_above_the_band():
    decision = decide(0.4, seen(0.6, tail_ctr=0.01, head_ctr=0.1), SETTINGS)
    assert (decision.action, decision.reason) == (HOLD, GUARDRAIL)


def test_a_ratio_at_the_guardrail_is_not_a_breach():
    assert decide(0.4, seen(0.05, tail_ctr=0.05, head_ctr=0.1), SETTINGS).action == UP


def test_unknown_click_through_does_not_count_as_a_breach():
    assert decide(0.4, seen(0.05, tail_ctr=None, head_ctr=0.0), SETTINGS).action == UP


def test_too_few_impressions_hold():
    decision = decide(0.4, seen(0.0, impressions=99), SETTINGS)
    assert (decision.action, decision.reason) == (HOLD, TOO_FEW)


def test_an_interval_without_a_first_page_holds():
    assert decide(0.4, Observation(impressions=1000, tail_share=None), SETTINGS).reason == TOO_FEW


def test_too_few_impressions_keep_the_hysteresis():
    assert decide(0.4, seen(0.0, impressions=1), SETTINGS, previous=settled_at(0.4)).settled


def test_off_holds_whatever_is_observed():
    off = SETTINGS.model_copy(update={"enabled": False})
    decision = decide(0.4, seen(0.0), off)
    assert (decision.action, decision.reason, decision.strength) == (HOLD, OFF, 0.4)


def test_a_decision_survives_its_record():
    decision = decide(0.4, seen(0.1), SETTINGS)
    assert Decision.from_record(decision.record()) == decision


def test_settings_refuse_an_empty_band():
    with pytest.raises(ValueError, match="target_low"):
        ExposureControlSettings(target_low=0.4, target_high=0.3)


def test_settings_refuse_crossed_bounds():
    with pytest.raises(ValueError, match="min_strength"):
        ExposureControlSettings(min_strength=0.5, max_strength=0.4)
