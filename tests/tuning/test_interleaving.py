import json
from collections import Counter

import numpy as np
from click.testing import CliRunner

from search_rerank.cli import main
from search_rerank.core.interleaving import team_draft
from search_rerank.data.clicks import simulate_clicks
from search_rerank.evaluation.interleaving import credit, read_interleaved_ubi, summarise

THETA = [1.0, 0.8, 0.6, 0.5, 0.4, 0.35, 0.3, 0.25, 0.2, 0.15]


def test_team_draft_takes_each_product_once_with_its_team():
    merged = team_draft(["a", "b", "c"], ["b", "d", "a"], seed=1)
    assert sorted(merged.ids) == ["a", "b", "c", "d"]
    assert set(merged.teams) <= {"A", "B"}


def test_team_draft_keeps_the_teams_balanced():
    merged = team_draft([f"a{i}" for i in range(10)], [f"b{i}" for i in range(10)], seed=2, length=10)
    assert merged.teams.count("A") == merged.teams.count("B") == 5


def test_team_draft_keeps_each_rankers_order_within_its_team():
    a, b = [f"a{i}" for i in range(6)], [f"b{i}" for i in range(6)]
    merged = team_draft(a, b, seed=3)
    assert [p for p, t in zip(merged.ids, merged.teams) if t == "A"] == a


def test_team_draft_is_a_function_of_the_seed():
    a, b = list("abcdef"), list("fedcba")
    assert team_draft(a, b, seed=4) == team_draft(a, b, seed=4)
    assert len({team_draft(a, b, seed=s).teams for s in range(20)}) > 1


def test_identical_rankings_interleave_to_the_same_list():
    assert team_draft(list("abcd"), list("abcd"), seed=5).ids == tuple("abcd")


def test_credit_goes_to_the_team_with_more_clicks():
    teams = {"a": "A", "b": "B", "c": "B"}
    assert credit(teams, {"b", "c"}) == 1
    assert credit(teams, {"a"}) == -1
    assert credit(teams, set()) == 0


def interleaved_clicks(rng, better="B", queries=60, repeats=10):
    """Per query one relevant product: the better ranker puts it first, the worse one last."""
    outcomes, log = [], []
    for q in range(queries):
        relevant = f"q{q}-rel"
        others = [f"q{q}-d{i}" for i in range(9)]
        good, bad = [relevant, *others], [*others, relevant]
        a, b = (bad, good) if better == "B" else (good, bad)
        for r in range(repeats):
            merged = team_draft(a, b, rng, length=10)
            clicks = simulate_clicks({f"q{q}": {relevant: 3}}, [(f"q{q}", merged.ids)], THETA, rng)[0]
            outcomes.append(credit(merged.team_of(), clicks.clicked))
            log.append((f"s{q}-{r}", merged, clicks.clicked))
    return outcomes, log


def test_the_known_better_ranking_wins_on_simulated_clicks():
    outcomes, _ = interleaved_clicks(np.random.default_rng(6))
    result = summarise(outcomes, resamples=2000)
    assert result.b_wins > result.a_wins and result.p_value < 0.01


def test_equal_rankers_show_no_significant_preference():
    rng = np.random.default_rng(7)
    ranking = [f"d{i}" for i in range(10)]
    outcomes = []
    for _ in range(300):
        merged = team_draft(ranking, list(reversed(ranking)), rng, length=10)
        clicks = simulate_clicks({"q": {p: 1 for p in ranking}}, [("q", merged.ids)], [0.5] * 10, rng)[0]
        outcomes.append(credit(merged.team_of(), clicks.clicked))
    assert summarise(outcomes, resamples=2000).p_value > 0.05


def ubi_log(path, log):
    lines = []
    for query_id, merged, clicked in log:
        for rank, (product, team) in enumerate(zip(merged.ids, merged.teams)):
            lines.append(
                {
                    "action_name": "impression",
                    "query_id": query_id,
                    "event_attributes": {"object": {"object_id": product}, "position": {"ordinal": rank}, "team": team},
                }
            )
        lines += [
            {"action_name": "click", "query_id": query_id, "event_attributes": {"object": {"object_id": product}}}
            for product in sorted(clicked)
        ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


def test_interleaving_report_reads_teams_and_clicks_from_ubi_and_names_the_winner(tmp_path):
    _, log = interleaved_clicks(np.random.default_rng(8), better="A")
    path = ubi_log(tmp_path / "ubi.ndjson", log)
    result = CliRunner().invoke(main, ["interleaving-report", str(path), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["impressions"] == len(log) and report["preference_b"] < 0 and report["p_value"] < 0.01


def write_events(path, *events):
    path.write_text("".join(json.dumps(event) + "\n" for event in events), encoding="utf-8")
    return path


SHOWN_BY_A = {
    "action_name": "impression",
    "query_id": "s",
    "event_attributes": {"object": {"object_id": "p"}, "team": "A"},
}
CLICKED = {"action_name": "click", "query_id": "s", "event_attributes": {"object": {"object_id": "p"}}}


def test_a_click_of_no_search_is_passed_over_and_counted(tmp_path):
    no_search = {"action_name": "click", "query_id": "", "event_attributes": {"object": {"object_id": "p"}}}
    path = write_events(tmp_path / "ubi.ndjson", SHOWN_BY_A, no_search, CLICKED)
    passed_over = Counter()
    assert read_interleaved_ubi(path, passed_over=passed_over) == [({"p": "A"}, {"p"})]
    assert passed_over == {"no query_id": 1}


def test_an_impression_with_a_front_ends_own_team_is_passed_over_and_counted(tmp_path):
    own_team = {
        "action_name": "impression",
        "query_id": "t",
        "event_attributes": {"object": {"object_id": "q"}, "team": "red"},
    }
    path = write_events(tmp_path / "ubi.ndjson", own_team, SHOWN_BY_A, CLICKED)
    passed_over = Counter()
    assert read_interleaved_ubi(path, passed_over=passed_over) == [({"p": "A"}, {"p"})]
    assert passed_over == {"event_attributes.team not one of A, B": 1}


def test_interleaving_report_says_how_many_events_it_passed_over(tmp_path):
    no_search = {"action_name": "click", "query_id": "", "event_attributes": {"object": {"object_id": "p"}}}
    path = write_events(tmp_path / "ubi.ndjson", SHOWN_BY_A, CLICKED, no_search)
    result = CliRunner().invoke(main, ["interleaving-report", str(path), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["passed_over"] == {"no query_id": 1}


def test_interleaving_report_without_team_tags_says_what_is_missing(tmp_path):
    path = tmp_path / "ubi.ndjson"
    path.write_text(
        json.dumps({"action_name": "impression", "query_id": "s", "event_attributes": {"object": {"object_id": "p"}}})
        + "\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(main, ["interleaving-report", str(path)])
    assert result.exit_code == 1 and "event_attributes.team" in result.output


def test_a_numeric_product_id_in_the_log_is_read_as_the_catalog_reads_it(tmp_path):
    shown = {
        "action_name": "impression",
        "query_id": "s",
        "event_attributes": {"object": {"object_id": 7}, "team": "A"},
    }
    clicked = {"action_name": "click", "query_id": "s", "event_attributes": {"object": {"object_id": 7}}}
    path = tmp_path / "ubi.ndjson"
    path.write_text(json.dumps(shown) + "\n" + json.dumps(clicked) + "\n", encoding="utf-8")
    assert read_interleaved_ubi(path) == [({"7": "A"}, {"7"})]
