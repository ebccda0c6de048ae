import json
from pathlib import Path

import numpy as np
import pytest

from search_rerank.core.errors import DataError
from search_rerank.data.clicks import (
    Impression,
    click_labels,
    click_query_id,
    epoch_ms,
    fit_pbm,
    read_click_log,
    read_shopper_actions,
    read_ubi,
    shopper_action,
    simulate_clicks,
)
from search_rerank.data.loaders import LoadStats

UBI_SAMPLE = (
    Path(__file__).resolve().parents[3] / "shared" / "datasets" / "esci_opensearch_sample" / "ubi_queries_events.ndjson"
)
THETA = [1.0, 0.7, 0.5, 0.4, 0.3, 0.25, 0.2, 0.15, 0.12, 0.1]


def jsonl(path: Path, *records) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records), encoding="utf-8")
    return path


def event(query_id, action, doc, ordinal, ms, **extra):
    return {
        "action_name": action,
        "query_id": query_id,
        "timestamp": ms,
        "session_id": "s1",
        "event_attributes": {"object": {"object_id": doc, "object_id_field": "asin"}, "position": {"ordinal": ordinal}},
        **extra,
    }


def shuffled_log(rng, queries=40, docs=10, per_query=150):
    """Every product appears at every rank, so position and attraction can be told apart."""
    grades = {f"q{q}": {f"q{q}-d{d}": int(rng.integers(0, 3)) for d in range(docs)} for q in range(queries)}
    rankings = [
        (query, tuple(rng.permutation(list(judged)))) for query, judged in grades.items() for _ in range(per_query)
    ]
    return grades, rankings


def ctr(impressions, query, doc):
    shown = [i for i in impressions if i.query == query and doc in i.shown]
    return sum(doc in i.clicked for i in shown) / len(shown)


# --- PBM ---------------------------------------------------------------------------


def test_pbm_recovers_position_bias_from_simulated_clicks():
    rng = np.random.default_rng(7)
    grades, rankings = shuffled_log(rng, per_query=600)
    model = fit_pbm(simulate_clicks(grades, rankings, THETA, rng))
    np.testing.assert_allclose(model.theta, THETA, atol=0.03)


def test_pbm_ranks_relevant_product_at_low_rank_above_irrelevant_one_at_top_where_ctr_does_not():
    rng = np.random.default_rng(11)
    grades, rankings = shuffled_log(rng)
    grades["target"] = {"junk": 0, "good": 2}
    fixed = ("junk", *(f"filler{i}" for i in range(8)), "good")
    attraction = {0: 0.15, 1: 0.4, 2: 0.8}
    impressions = simulate_clicks(grades, rankings + [("target", fixed)] * 1000, THETA, rng, attraction=attraction)
    assert ctr(impressions, "target", "junk") > ctr(impressions, "target", "good")
    model = fit_pbm(impressions)
    assert model.attractiveness("target", "good") > model.attractiveness("target", "junk") + 0.3


def test_product_shown_once_and_skipped_stays_near_the_prior_not_at_zero():
    once = Impression("lamp", tuple(f"d{i}" for i in range(6)), frozenset({"d0"}))
    often = [Impression("lamp", ("bad", "d1"), frozenset()) for _ in range(200)]
    model = fit_pbm([once, *often])
    assert model.attractiveness("lamp", "d5") > 0.3
    assert model.attractiveness("lamp", "bad") < 0.02


def test_pbm_fit_is_deterministic():
    rng = np.random.default_rng(3)
    grades, rankings = shuffled_log(rng, queries=5, per_query=20)
    impressions = simulate_clicks(grades, rankings, THETA, rng)
    first, second = fit_pbm(impressions), fit_pbm(impressions)
    np.testing.assert_array_equal(first.alpha, second.alpha)
    np.testing.assert_array_equal(first.theta, second.theta)


def test_pbm_groups_queries_that_differ_only_in_case_and_spacing():
    model = fit_pbm([Impression("Desk Lamp", ("a",), frozenset({"a"})), Impression(" desk  lamp", ("a",))])
    assert model.shown[model.pairs["desk lamp", "a"]] == 2


def test_simulator_refuses_a_ranking_longer_than_theta():
    with pytest.raises(ValueError, match="needs 3 theta values"):
        simulate_clicks({}, [("q", ("a", "b", "c"))], [1.0, 0.5], np.random.default_rng(0))


# --- labels --------------------------------------------------------------------------


def test_click_labels_grade_simulated_products_like_their_true_grades():
    rng = np.random.default_rng(5)
    grades, rankings = shuffled_log(rng)
    qrels, queries = click_labels(simulate_clicks(grades, rankings, THETA, rng), min_impressions=10)
    agree = total = 0
    for query, judged in grades.items():
        labels = qrels[click_query_id(query)]
        assert queries[click_query_id(query)] == query
        for doc, grade in judged.items():
            agree += labels[doc] == grade
            total += 1
    assert agree / total > 0.9


def test_pairs_seen_fewer_than_min_impressions_are_unjudged_not_irrelevant():
    impressions = [Impression("sofa", ("a", "b"), frozenset({"a"}))] * 5 + [Impression("sofa", ("a", "c"))]
    qrels, _ = click_labels(impressions, min_impressions=5)
    assert set(qrels[click_query_id("sofa")]) == {"a", "b"}


def test_query_with_no_pair_reaching_min_impressions_has_no_labels_and_no_text():
    qrels, queries = click_labels([Impression("rare", ("a",), frozenset({"a"}))], min_impressions=2)
    assert qrels == {} and queries == {}


def test_click_labels_refuse_thresholds_out_of_order():
    with pytest.raises(ValueError, match="thresholds"):
        click_labels([Impression("q", ("a",))], thresholds=(0.5, 0.2))


def test_click_query_ids_have_no_spaces_and_ignore_case():
    assert click_query_id("Desk Lamp") == click_query_id("desk lamp")
    assert " " not in click_query_id("desk lamp")


# --- plain JSONL ---------------------------------------------------------------------


def test_plain_log_keeps_display_order_and_clicks(tmp_path):
    path = jsonl(
        tmp_path / "clicks.jsonl", {"query": "lamp", "shown": ["b", "a", "c"], "clicked": ["c"], "session": "s9"}
    )
    assert read_click_log(path) == [Impression("lamp", ("b", "a", "c"), frozenset({"c"}), session="s9")]


def test_plain_log_click_on_product_not_shown_is_reported_with_its_line(tmp_path):
    path = jsonl(
        tmp_path / "clicks.jsonl",
        {"query": "lamp", "shown": ["a"], "clicked": []},
        {"query": "lamp", "shown": ["a"], "clicked": ["z"]},
    )
    with pytest.raises(DataError, match=r"clicks\.jsonl:2: clicked \['z'\] not in shown"):
        read_click_log(path)


def test_plain_log_product_shown_twice_is_reported(tmp_path):
    path = jsonl(tmp_path / "clicks.jsonl", {"query": "lamp", "shown": ["a", "b", "a"], "clicked": []})
    with pytest.raises(DataError, match=r":1: shown lists \['a'\] more than once"):
        read_click_log(path)


def test_plain_log_unknown_field_is_reported_not_ignored(tmp_path):
    path = jsonl(tmp_path / "clicks.jsonl", {"query": "lamp", "shown": ["a"], "clicks": ["a"]})
    with pytest.raises(DataError, match=r":1: unknown field\(s\) \['clicks'\]"):
        read_click_log(path)


def test_plain_log_skip_bad_counts_bad_lines_and_keeps_the_rest(tmp_path):
    path = jsonl(
        tmp_path / "clicks.jsonl",
        {"query": "lamp", "shown": ["a"], "clicked": ["a"]},
        "{not json",
        {"query": "", "shown": ["a"], "clicked": []},
    )
    stats = LoadStats()
    assert len(read_click_log(path, skip_bad=True, stats=stats)) == 1
    assert stats.skipped == 2 and ":2: invalid JSON" in stats.errors[0]


# --- UBI -----------------------------------------------------------------------------


def test_ubi_sample_pairs_query_records_with_their_events():
    if not UBI_SAMPLE.exists():
        pytest.skip(f"shared sample {UBI_SAMPLE} is missing")
    impressions = read_ubi(UBI_SAMPLE)
    futon = next(i for i in impressions if i.query_id == "33198ee9-5912-453c-9173-3f92fd3cb1be")
    assert futon.query == "futon frames full size without mattress"
    assert futon.shown == ("B07CVR21VN", "B074WGMRCC", "B073WRF565", "B07MH1HW8Q", "B082KPGZNK")
    ps4 = next(i for i in impressions if i.query_id == "6610ec99-2271-4fe6-a4ca-d03546b0112d")
    assert ps4.query == "ps4" and "B08GPZW3FB" in ps4.clicked


def test_ubi_sample_rerendered_result_lists_become_separate_impressions():
    if not UBI_SAMPLE.exists():
        pytest.skip(f"shared sample {UBI_SAMPLE} is missing")
    lists = [i for i in read_ubi(UBI_SAMPLE) if i.query_id == "44338e41-deda-4646-b0bf-bb6d6d2ec8b2"]
    assert [len(i.shown) for i in lists] == [9, 19]  # the second render logged no impression at ordinal 17
    assert lists[1].shown[:3] == ("B07F822FND", "B00BEV049Q", "B07P9WN6PT")
    assert lists[1].clicked == {"B07F822FND", "B07FM8BNBC", "B07V1W8XV9", "B07KN5JP3H"}


def test_ubi_separate_files_shown_in_ordinal_order_not_file_order(tmp_path):
    queries = jsonl(tmp_path / "queries.ndjson", {"query_id": "q1", "user_query": "desk lamp"})
    events = jsonl(
        tmp_path / "events.ndjson",
        event("q1", "impression", "b", 2, 10),
        event("q1", "impression", "a", 1, 10),
        event("q1", "click", "b", 2, 20),
        event("q1", "add_to_cart", "b", 2, 30),
    )
    assert read_ubi(queries, events) == [
        Impression("desk lamp", ("a", "b"), frozenset({"b"}), query_id="q1", session="s1")
    ]


def test_ubi_events_a_forgotten_shopper_sent_before_the_forget_give_no_training_impressions(tmp_path):
    events = jsonl(
        tmp_path / "events.ndjson",
        event("q1", "impression", "a", 0, 10, user_query="lamp", user_id="u1"),
        event("q1", "click", "a", 0, 20, user_query="lamp", user_id="u1"),
        event("q2", "click", "b", 0, 30, user_query="desk", user_id="u2", session_id="s2"),
        {"action_name": "forget_shopper", "user_id": "u1", "timestamp": 40},
        event("q3", "click", "c", 0, 50, user_query="chair", user_id="u1", session_id="s3"),
    )
    assert [i.query_id for i in read_ubi(events)] == ["q2", "q3"]


def test_ubi_a_forget_keeps_the_events_of_a_session_another_shopper_went_on_with(tmp_path):
    # A session id many shoppers send ("undefined", a kiosk's): each forget took every one of them out.
    events = jsonl(
        tmp_path / "events.ndjson",
        event("q1", "click", "a", 0, 10, user_query="lamp", user_id="erin", session_id="shared"),
        event("q2", "click", "b", 0, 20, user_query="desk", user_id="frank", session_id="shared"),
        {"action_name": "forget_shopper", "user_id": "erin", "timestamp": 30},
    )
    assert [i.query_id for i in read_ubi(events)] == ["q2"]


def test_ubi_a_forget_leaves_out_the_events_of_a_session_its_shopper_owned(tmp_path):
    # Before the shopper signed in (no user id) and after they signed out: the session was theirs.
    events = jsonl(
        tmp_path / "events.ndjson",
        event("q1", "click", "a", 0, 10, user_query="lamp", session_id="hers"),
        event("q2", "click", "b", 0, 20, user_query="desk", user_id="erin", session_id="hers"),
        event("q3", "click", "c", 0, 25, user_query="rug", session_id="hers"),
        {"action_name": "forget_shopper", "user_id": "erin", "timestamp": 30},
    )
    assert read_ubi(events) == []


def test_ubi_click_without_impression_counts_as_shown_at_its_ordinal(tmp_path):
    events = jsonl(
        tmp_path / "events.ndjson",
        event("q1", "impression", "b", 4, 10),
        event("q1", "click", "a", 1, 20, user_query="lamp"),
    )
    [impression] = read_ubi(events)
    assert impression.shown == ("a", "b") and impression.clicked == {"a"}


def test_ubi_clicks_with_no_impression_logged_were_shown_in_the_order_of_the_query_response_hit_ids(tmp_path):
    """The service (and OpenSearch's UBI plugin) log each search's hits; a front end may send only clicks."""
    path = jsonl(
        tmp_path / "ubi.ndjson",
        {"query_id": "q1", "user_query": "lamp", "query_response_hit_ids": ["a", "b", "c"]},
        event("q1", "click", "b", 1, 20),
    )
    assert read_ubi(path) == [Impression("lamp", ("a", "b", "c"), frozenset({"b"}), query_id="q1", session="s1")]


@pytest.mark.parametrize("query_id", [None, ""])
def test_ubi_events_of_no_search_label_nothing_and_stop_nothing(tmp_path, query_id):
    """A click on a product page or a recommendation has no search (``query_id`` absent or empty, as the UBI
    schema and POST /ubi/events allow): it labels no query, and training reads on past it."""
    no_search = event("q1", "click", "z", 0, 30)
    if query_id is None:
        del no_search["query_id"]
    else:
        no_search["query_id"] = query_id
    path = jsonl(
        tmp_path / "ubi.ndjson",
        {"query_id": "q1", "user_query": "lamp", "query_response_hit_ids": ["a", "b", "c"]},
        no_search,
        event("q1", "click", "b", 1, 20),
    )
    assert read_ubi(path) == [Impression("lamp", ("a", "b", "c"), frozenset({"b"}), query_id="q1", session="s1")]


SENT_BY_A_FRONT_END = {"received_at": "2026-01-01T00:00:00.000Z"}
"""What POST /ubi_queries adds to a query record a front end sent."""


def test_ubi_a_front_ends_query_record_read_first_does_not_replace_the_hits_its_search_logged(tmp_path):
    """A record a front end sent (POST /ubi_queries logs it with received_at) in a file read before the search's:
    the search's hits stand, and the search is one impression."""
    sent = jsonl(
        tmp_path / "ubi.1.ndjson",
        {"query_id": "q1", "user_query": "lamp?", "query_response_hit_ids": ["x", "y"]} | SENT_BY_A_FRONT_END,
    )
    searched = jsonl(
        tmp_path / "ubi.2.ndjson",
        {"query_id": "q1", "user_query": "lamp", "query_response_hit_ids": ["a", "b", "c"]},
        event("q1", "click", "b", 1, 20),
    )
    assert read_ubi(sent, searched) == [
        Impression("lamp", ("a", "b", "c"), frozenset({"b"}), query_id="q1", session="s1")
    ]


def test_ubi_a_front_ends_query_record_gives_the_text_and_hits_of_a_search_no_other_record_logged(tmp_path):
    """A search made elsewhere than through the service: the front end's record is all there is."""
    path = jsonl(
        tmp_path / "ubi.ndjson",
        {"query_id": "q1", "user_query": "lamp", "query_response_hit_ids": ["a", "b"]} | SENT_BY_A_FRONT_END,
        event("q1", "click", "b", 1, 20),
    )
    assert read_ubi(path) == [Impression("lamp", ("a", "b"), frozenset({"b"}), query_id="q1", session="s1")]


def unranked(record: dict) -> dict:
    """The event as the UBI JavaScript client sends it unless told a rank: a position without an ordinal."""
    record["event_attributes"]["position"] = {"xy": {"x": 10, "y": 300}}
    return record


def test_ubi_click_without_a_rank_takes_its_products_place_in_the_searchs_logged_hits(tmp_path):
    path = jsonl(
        tmp_path / "ubi.ndjson",
        {"query_id": "q1", "user_query": "lamp", "query_response_hit_ids": ["a", "b", "c"]},
        unranked(event("q1", "click", "c", None, 20)),
    )
    assert read_ubi(path) == [Impression("lamp", ("a", "b", "c"), frozenset({"c"}), query_id="q1", session="s1")]


def test_ubi_click_without_a_rank_joins_the_list_of_an_impression_of_its_product(tmp_path):
    path = jsonl(
        tmp_path / "ubi.ndjson",
        {"query_id": "q1", "user_query": "lamp"},
        event("q1", "impression", "a", 0, 10),
        event("q1", "impression", "b", 1, 10),
        unranked(event("q1", "click", "b", None, 20)),
    )
    assert read_ubi(path) == [Impression("lamp", ("a", "b"), frozenset({"b"}), query_id="q1", session="s1")]


def test_ubi_event_without_a_rank_whose_product_no_search_or_impression_showed_is_left_out_and_counted(
    tmp_path, caplog
):
    path = jsonl(
        tmp_path / "ubi.ndjson",
        {"query_id": "q1", "user_query": "lamp", "query_response_hit_ids": ["a"]},
        event("q1", "impression", "a", 0, 10),
        unranked(event("q1", "click", "z", None, 20)),
        unranked(event("q1", "impression", "y", None, 20)),
    )
    assert read_ubi(path) == [Impression("lamp", ("a",), frozenset(), query_id="q1", session="s1")]
    assert "dropped 2 event(s) without a rank" in caplog.text


def hit(index: str, record: dict) -> dict:
    """A record as elasticdump, or a _search of the UBI indexes, exports it."""
    return {"_index": index, "_id": "x", "_score": 1.0, "_source": record}


def test_ubi_indexes_exported_as_search_hits_give_the_impressions_of_their_records(tmp_path):
    path = jsonl(
        tmp_path / "ubi.ndjson",
        hit("ubi_queries", {"query_id": "q1", "user_query": "lamp"}),
        hit("ubi_events", event("q1", "impression", "a", 0, 10)),
        hit("ubi_events", event("q1", "click", "a", 0, 20)),
    )
    assert read_ubi(path) == [Impression("lamp", ("a",), frozenset({"a"}), query_id="q1", session="s1")]


def test_ubi_events_exported_as_search_hits_give_the_shoppers_actions(tmp_path):
    path = jsonl(tmp_path / "ubi.ndjson", hit("ubi_events", event("q1", "click", "a", 0, 1733788889378, user_id="u1")))
    [action], _ = read_shopper_actions(path, ["click"])
    assert (action.user_id, action.product_id) == ("u1", "a")


def test_shopper_action_with_an_unreadable_received_at_names_that_field_not_the_timestamp(tmp_path):
    record = event("q1", "click", "a", 0, 1733788889378, user_id="u1", received_at="yesterday")
    path = jsonl(tmp_path / "ubi.ndjson", record)
    with pytest.raises(DataError, match=r"ubi\.ndjson:1: received_at must be ISO 8601 .* got 'yesterday'"):
        read_shopper_actions(path, ["click"])


def test_ubi_bulk_format_lines_are_numbered_as_in_the_file(tmp_path):
    bad = event("q1", "click", "a", 0, 5)
    bad["event_attributes"]["position"] = "first"
    path = jsonl(
        tmp_path / "ubi.ndjson",
        {"index": {"_index": "ubi_queries"}},
        {"query_id": "q1", "user_query": "lamp"},
        {"index": {"_index": "ubi_events"}},
        bad,
    )
    with pytest.raises(DataError, match=r"ubi\.ndjson:4: event_attributes\.position: expected an object"):
        read_ubi(path)


def test_ubi_skip_bad_counts_the_bad_event_and_keeps_the_others(tmp_path):
    path = jsonl(
        tmp_path / "ubi.ndjson",
        {"query_id": "q1", "user_query": "lamp"},
        event("q1", "impression", "a", 0, 1),
        event("q1", "impression", "b", "first", 1),
    )
    stats = LoadStats()
    assert [i.shown for i in read_ubi(path, skip_bad=True, stats=stats)] == [("a",)]
    assert stats.skipped == 1 and stats.errors[0].startswith(f"{path}:3: impression event: ")


def test_ubi_unreadable_timestamp_is_reported_with_its_line(tmp_path):
    path = jsonl(
        tmp_path / "ubi.ndjson",
        {"query_id": "q1", "user_query": "lamp"},
        event("q1", "impression", "a", 0, "last tuesday"),
    )
    with pytest.raises(
        DataError, match=r":2: timestamp must be ISO 8601 or epoch milliseconds since 1970, got 'last tuesday'"
    ):
        read_ubi(path)


def test_ubi_events_of_a_query_with_no_text_anywhere_are_dropped(tmp_path):
    path = jsonl(tmp_path / "ubi.ndjson", {"query_id": "q1", "user_query": " "}, event("q1", "impression", "a", 0, 1))
    assert read_ubi(path) == []


def test_ubi_record_that_is_neither_query_nor_event_is_reported(tmp_path):
    path = jsonl(tmp_path / "ubi.ndjson", {"query_id": "q1", "user_query": "lamp"}, {"user": "x"})
    with pytest.raises(DataError, match=r":2: neither a UBI query record"):
        read_ubi(path)


def test_a_shopper_action_keeps_only_ids_a_search_and_a_forget_can_name():
    """An event naming a shopper by an id search and forget refuse would key a profile no one could reach."""
    record = {
        "action_name": "click",
        "user_id": "alice@example.com",
        "event_attributes": {"object": {"object_id": "p1"}, "session_id": "s-1"},
        "timestamp": 1_000,
    }
    action = shopper_action(record, ["click"])
    assert action is not None and (action.user_id, action.session_id) == (None, "s-1")
    assert shopper_action({**record, "event_attributes": {"object": {"object_id": "p1"}}}, ["click"]) is None


def test_epoch_milliseconds_written_as_a_string_are_read_as_opensearch_reads_them():
    """OpenSearch's default date mapping (strict_date_optional_time||epoch_millis) stores "1733788889378"."""
    assert epoch_ms("1733788889378") == 1733788889378.0
    assert epoch_ms("1730010112300") == 1730010112300.0  # digits Python's fromisoformat reads as 1730-01-01


def test_a_time_without_a_zone_is_utc_as_opensearch_reads_it():
    assert epoch_ms("2024-12-10T00:01:29.378") == epoch_ms("2024-12-10T00:01:29.378Z") == 1733788889378.0


@pytest.mark.parametrize(
    "timestamp",
    [float("nan"), float("inf"), "0001-01-01T00:00:00", -1, 10**400],
    ids=["nan", "inf", "year-1", "before-1970", "400-digits"],
)
def test_a_time_that_cannot_age_a_profile_is_refused(timestamp):
    with pytest.raises(ValueError, match="timestamp must be"):
        epoch_ms(timestamp)


@pytest.mark.parametrize("spelt", ["addToCart", "add-to-cart", "AddToCart", "ADD_TO_CART"])
def test_a_shopper_action_spelt_in_another_case_or_with_other_separators_is_the_settings_action(spelt):
    record = {
        "action_name": spelt,
        "user_id": "u1",
        "event_attributes": {"object": {"object_id": "p1"}},
        "timestamp": 1,
    }
    action = shopper_action(record, ["click", "add_to_cart", "purchase"])
    assert action is not None and action.action == "add_to_cart"


def test_ubi_clicks_in_upper_case_label_their_search(tmp_path):
    path = jsonl(
        tmp_path / "ubi.ndjson",
        event("q1", "Impression", "a", 0, 10, user_query="lamp"),
        event("q1", "Impression", "b", 1, 10),
        event("q1", "CLICK", "b", 1, 20),
    )
    [impression] = read_ubi(path)
    assert impression.shown == ("a", "b") and impression.clicked == {"b"}


def test_shopper_actions_of_a_folder_are_read_from_the_service_ubi_files_in_it(tmp_path):
    """``profiles build --ubi logs/``: the folder the service writes each worker's file in, rotated ones too."""
    logs = tmp_path / "logs"
    logs.mkdir()
    jsonl(logs / "ubi.101.ndjson", event("q1", "click", "a", 0, 1733788889378, user_id="u1"))
    jsonl(logs / "ubi.101.ndjson.1", event("q2", "click", "b", 0, 1733788889379, user_id="u1"))
    jsonl(logs / "notes.ndjson", "not a UBI file")
    actions, _ = read_shopper_actions(logs, ["click"])
    assert [a.product_id for a in actions] == ["a", "b"]


def test_a_folder_with_no_ubi_files_is_refused_saying_what_to_give(tmp_path):
    with pytest.raises(DataError, match=r"a folder with no UBI log files \(ubi\.\*\.ndjson\*\); give a file or a glob"):
        read_shopper_actions(tmp_path, ["click"])
