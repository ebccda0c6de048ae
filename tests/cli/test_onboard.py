"""``search-rerank onboard`` at toy scale: the state it keeps, resuming, promotion on dev only, its report, the
settings file it writes, and the new encoder's index built beside the served one."""

from __future__ import annotations

import csv
import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from search_rerank.cli import main
from search_rerank.cli.onboard import (
    AS_TRAINED,
    Plan,
    decide,
    estimate,
    measure,
    planned_work,
    reranker_training,
    sampled_splits,
    step_choices,
)
from search_rerank.core.model_card import load_card
from search_rerank.core.settings import Settings, load_settings
from search_rerank.data.dataset import Query
from search_rerank.data.loaders import iter_catalog, load_dataset
from search_rerank.evaluation.tune import RerankScores
from search_rerank.indexing.indexes import build_index
from search_rerank.indexing.versions import IndexVersions
from search_rerank.training.mining import judged_subset
from search_rerank.training.ranker import RankerTraining, sampled_queries
from search_rerank.training.reranker import RerankerTraining

QUICK = ["--trials", "5", "--rounds", "20"]


def settings_file(path: Path, index_dir: Path, models_dir: Path, **sections) -> Path:
    path.write_text(
        json.dumps({"index_dir": str(index_dir), "models_dir": str(models_dir), **sections}), encoding="utf-8"
    )
    return path


def onboard(settings: Path, dataset: Path, out: Path, *args: str):
    result = CliRunner().invoke(
        main, ["--settings", str(settings), "onboard", "--dataset", str(dataset), "--out", str(out), *args]
    )
    assert result.exit_code == 0, result.output
    return result


def state_of(out: Path) -> dict:
    return json.loads((out / "state.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def onboarded(built_index, tmp_path_factory):
    """Tune and the ranker on a generated catalogue (BM25 only), the encoder and reranker steps skipped."""
    built = built_index(products=400, queries=150, seed=4, dense={"enabled": False})
    root = tmp_path_factory.mktemp("onboarded")
    file = settings_file(root / "base.json", built.settings.index_dir, root / "models", dense={"enabled": False})
    out = root / "out"
    result = onboard(file, built.data, out, "--skip", "encoder", "--skip", "reranker", *QUICK)
    return file, built.data, out, result


def test_the_state_file_records_every_finished_step_with_its_metrics(onboarded):
    _, _, out, _ = onboarded
    state = state_of(out)
    assert list(state["steps"]) == ["baseline", "tune", "encoder", "reranker", "ranker"]
    assert state["steps"]["encoder"]["status"] == state["steps"]["reranker"]["status"] == "skipped"
    for name in ("baseline", "tune", "ranker"):
        step = state["steps"][name]
        assert step["status"] in ("promoted", "not promoted")
        assert set(step["dev"]["metrics"]) >= {"nDCG@10", "R@100"} and "nDCG@10" in step["test"]["metrics"]
        assert 0 <= step["dev"]["significance"]["p_value"] <= 1
    assert state["steps"]["ranker"]["models"] == {"ranker": "onboard-out-ranker"}
    assert state["onboard_minutes"] > 0


def test_a_rerun_skips_the_finished_steps(onboarded):
    file, data, out, _ = onboarded
    before = state_of(out)["steps"]
    model = Path(json.loads(file.read_text())["models_dir"]) / "onboard-out-ranker" / "model_card.json"
    trained = model.stat().st_mtime_ns
    result = onboard(file, data, out, *QUICK)
    assert result.output.count("finished in an earlier run") == 5
    assert state_of(out)["steps"] == before
    assert model.stat().st_mtime_ns == trained


def test_a_stopped_run_resumes_at_the_first_unfinished_step(onboarded, tmp_path):
    file, data, out, _ = onboarded
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    state = state_of(copy)
    del state["steps"]["ranker"]  # as if stopped while training the ranker
    (copy / "state.json").write_text(json.dumps(state), encoding="utf-8")
    result = onboard(file, data, copy, *QUICK)
    assert result.output.count("finished in an earlier run") == 4
    assert "step 4/4: ranker" in result.output
    assert state_of(copy)["steps"]["ranker"]["status"] in ("promoted", "not promoted")


def test_an_onboarding_into_another_out_trains_models_of_its_own(onboarded, tmp_path):
    """The first onboarding's onboarded.toml serves models_dir/onboard-out-ranker: a second one (graded judgments
    added, a new --out) names its models for its own --out, and leaves the first's as they were."""
    file, data, _, _ = onboarded
    first = Path(json.loads(file.read_text())["models_dir"]) / "onboard-out-ranker" / "model_card.json"
    trained = first.stat().st_mtime_ns
    second = tmp_path / "second"
    onboard(file, data, second, "--skip", "encoder", "--skip", "reranker", "--skip", "tune", *QUICK)
    assert state_of(second)["steps"]["ranker"]["models"] == {"ranker": "onboard-second-ranker"}
    assert first.stat().st_mtime_ns == trained


def test_a_prefix_naming_another_onboardings_models_is_refused_before_any_step(onboarded, tmp_path):
    """Trained over, the first onboarding's onboarded.toml would serve a model nothing measured, and its report
    would describe one that is gone."""
    file, data, _, _ = onboarded
    model = Path(json.loads(file.read_text())["models_dir"]) / "onboard-out-ranker" / "model_card.json"
    trained = model.stat().st_mtime_ns
    args = ["--dataset", str(data), "--out", str(tmp_path / "second"), "--skip", "encoder", "--skip", "reranker"]
    result = CliRunner().invoke(main, ["--settings", str(file), "onboard", *args, "--name-prefix", "onboard-out"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"{model.parent} holds a model this onboarding did not train" in " ".join(result.output.split())
    assert "--name-prefix" in result.output and "step 0/4" not in result.output
    assert model.stat().st_mtime_ns == trained


def test_a_rerun_from_other_settings_is_refused(onboarded, tmp_path):
    file, data, out, _ = onboarded
    other = tmp_path / "other.json"
    other.write_text(json.dumps({**json.loads(file.read_text()), "longtail": {"enabled": False}}), encoding="utf-8")
    result = CliRunner().invoke(main, ["--settings", str(other), "onboard", "--dataset", str(data), "--out", str(out)])
    assert result.exit_code == 1 and "started from other settings" in result.output


def test_the_report_has_a_table_per_measured_step_and_an_embedded_plot(onboarded):
    _, _, out, _ = onboarded
    page = (out / "report.html").read_text(encoding="utf-8")
    for step in ("baseline", "tune", "ranker"):
        assert f"<h2>{step}: " in page
    assert page.count("<th>wins / losses / ties</th>") == 3
    assert 'src="data:image/png;base64,' in page


def test_the_plan_is_printed_first_and_the_report_gives_each_steps_planned_work(onboarded):
    _, _, out, result = onboarded
    assert result.output.index("onboarding plan") < result.output.index("step 0/4: baseline")
    page = (out / "report.html").read_text(encoding="utf-8")
    state = state_of(out)
    assert "encoder" not in state["estimate"]["steps"]  # skipped
    ranker = state["estimate"]["steps"]["ranker"]["work"]
    assert "queries retrieved" in ranker and f"Planned: {ranker}." in page


def test_each_step_reports_how_much_of_its_top_10_the_labels_judge(onboarded):
    _, _, out, _ = onboarded
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.count("<th>Judged@10</th>") == 3 and page.count("<th>nDCG(judged_only=True)@10</th>") == 3
    for step in state_of(out)["steps"].values():
        if "dev" in step:
            assert 0.0 <= step["dev"]["metrics"]["Judged@10"] <= 1.0


def test_the_ranker_step_records_and_reports_the_long_tail_choice_it_made_on_dev(onboarded):
    _, _, out, _ = onboarded
    choices = state_of(out)["steps"]["ranker"]["dev_choices"]
    assert set(choices["nDCG@10"]) == {"as trained", "long-tail boost off"}
    assert choices["chosen"] == max(choices["nDCG@10"], key=choices["nDCG@10"].get)
    assert "Variants decided on dev" in (out / "report.html").read_text(encoding="utf-8")


def test_the_unjudged_top_10_of_bm25_and_every_step_is_written_to_grade(onboarded):
    _, dataset, out, _ = onboarded
    queries, qrels = load_dataset(dataset).split("dev")
    by_text = {queries[qid].text: qid for qid in qrels}
    with (out / "to_grade-dev.csv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows and all(row["grade"] == "" for row in rows)
    assert all(row["product_id"] not in qrels[by_text[row["query"]]] for row in rows)
    state = state_of(out)
    listed = {(by_text[row["query"]], row["product_id"]) for row in rows}
    for record in [state["bm25"], *(step for step in state["steps"].values() if "dev" in step)]:
        unjudged = record["dev"]["unjudged"]
        assert {(qid, pid) for qid, pids in unjudged.items() for pid in pids} <= listed


def test_the_settings_file_loads_as_the_promoted_settings(onboarded):
    file, _, out, _ = onboarded
    state = state_of(out)
    served = load_settings(out / "onboarded.toml")
    assert isinstance(served, Settings)
    assert served.index_dir == Path(json.loads(file.read_text())["index_dir"]).resolve()
    promoted = state["steps"]["ranker"]["status"] == "promoted"
    assert served.ltr.model == ("onboard-out-ranker" if promoted else None)
    if state["steps"]["tune"]["status"] == "promoted":
        assert served.lexical.candidates == state["steps"]["tune"]["changes"]["lexical"]["candidates"]


# Every query names one product's unique code, which only that product's title holds: BM25 alone puts the one
# relevant product first (nDCG@10 = 1 on every split), so no step can beat the baseline on dev.
CODES = [f"code{i:03d}" for i in range(90)]


@pytest.fixture(scope="module")
def solved(tmp_path_factory):
    root = tmp_path_factory.mktemp("solved")
    data = root / "data"
    (data / "qrels").mkdir(parents=True)
    with (data / "corpus.jsonl").open("w", encoding="utf-8") as corpus:
        for i, code in enumerate(CODES):
            corpus.write(json.dumps({"_id": f"p{i}", "title": f"steel bracket {code}", "price": i + 1}) + "\n")
    with (data / "queries.jsonl").open("w", encoding="utf-8") as queries:
        for i, code in enumerate(CODES):
            queries.write(json.dumps({"_id": f"q{i}", "text": f"bracket {code}"}) + "\n")
    for split, ids in (("train", range(0, 50)), ("dev", range(50, 70)), ("test", range(70, 90))):
        lines = ["query-id\tcorpus-id\tscore", *(f"q{i}\tp{i}\t2" for i in ids)]
        (data / "qrels" / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    sections = {"dense": {"enabled": False}, "longtail": {"enabled": False}}
    build_index(iter_catalog(data), Settings(index_dir=root / "idx", **sections), progress=False)
    return settings_file(root / "base.json", root / "idx", root / "models", **sections), data


def test_a_step_that_does_not_beat_the_previous_on_dev_is_not_promoted(solved, tmp_path):
    file, data = solved
    onboard(file, data, tmp_path / "out", "--skip", "encoder", "--skip", "reranker", "--skip", "ranker", *QUICK)
    state = state_of(tmp_path / "out")
    assert state["steps"]["baseline"]["dev"]["metrics"]["nDCG@10"] == pytest.approx(1.0)
    tune = state["steps"]["tune"]
    assert tune["status"] == "not promoted" and "does not beat baseline's 1.0000" in tune["reason"]
    assert load_settings(tmp_path / "out" / "onboarded.toml").lexical.candidates == Settings().lexical.candidates


def test_measure_queries_measures_every_step_on_the_same_sample_of_dev_and_test(solved, tmp_path):
    """At the Home Depot download's size a step measured with a CPU reranker costs some 17 minutes per split (6,400
    queries at about 0.16 s): a shop caps it, and every step is paired on the same queries."""
    file, data = solved
    skip = ["--skip", "encoder", "--skip", "reranker", "--skip", "ranker"]
    onboard(file, data, tmp_path / "out", *skip, *QUICK, "--measure-queries", "8")
    steps = state_of(tmp_path / "out")["steps"]
    for split in ("dev", "test"):
        sampled = set(steps["baseline"][split]["per_query"])
        assert len(sampled) == 8 and set(steps["tune"][split]["per_query"]) == sampled


def test_measure_queries_caps_the_dev_queries_the_ranker_is_chosen_on(solved, tmp_path):
    """The ranker's trainer kept every dev query's candidates and features: 6 GB for the 6,400 dev queries of a
    Home Depot-sized dataset, with ``--ranker-queries 300``."""
    file, data = solved
    skip = ["--skip", "tune", "--skip", "encoder", "--skip", "reranker"]
    onboard(file, data, tmp_path / "out", *skip, *QUICK, "--measure-queries", "8")
    models = Path(json.loads(file.read_text())["models_dir"])
    card = json.loads((models / "onboard-out-ranker" / "model_card.json").read_text(encoding="utf-8"))
    assert card["data"]["splits"]["dev"]["queries"] == 8


def test_a_rerun_measuring_another_number_of_queries_is_refused(solved, tmp_path):
    """Its finished steps were measured on another sample: a new step could not be paired with them."""
    file, data = solved
    # The baseline alone: a ranker trained into the module's models folder would refuse the next test's onboarding.
    skip = ["--skip", "tune", "--skip", "encoder", "--skip", "reranker", "--skip", "ranker"]
    onboard(file, data, tmp_path / "out", *skip, *QUICK)
    args = ["onboard", "--dataset", str(data), "--out", str(tmp_path / "out"), "--measure-queries", "8"]
    result = CliRunner().invoke(main, ["--settings", str(file), *args])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "--measure-queries" in result.output and "every judged query" in " ".join(result.output.split())


def test_a_rerun_sampling_with_another_seed_is_refused(solved, tmp_path):
    """The seed fixes which queries ``--measure-queries`` samples: a new step measured on another sample could not
    be paired with the finished ones (the paired test looked up queries the last promoted step never ran)."""
    file, data = solved
    skip = ["--skip", "tune", "--skip", "encoder", "--skip", "reranker", "--skip", "ranker"]
    onboard(file, data, tmp_path / "out", *skip, *QUICK, "--measure-queries", "8")
    args = ["onboard", "--dataset", str(data), "--out", str(tmp_path / "out"), "--measure-queries", "8"]
    result = CliRunner().invoke(main, ["--settings", str(file), *args, *skip, "--seed", "14"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "--seed 13" in " ".join(result.output.split())


def test_the_encoder_step_retunes_fusion_for_the_new_dense_leg(built_index, tiny_bert_dir, tmp_path):
    dense = {"model": str(tiny_bert_dir), "device": "cpu", "batch_size": 16}
    built = built_index(products=120, queries=60, seed=6, dense=dense)
    file = settings_file(tmp_path / "base.json", built.settings.index_dir, tmp_path / "models", dense=dense)
    out = tmp_path / "out"
    skips = ["--skip", "tune", "--skip", "reranker", "--skip", "ranker"]
    onboard(file, built.data, out, *skips, "--max-pairs", "32", "--epochs", "1", "--trials", "3")
    changes = state_of(out)["steps"]["encoder"]["changes"]
    assert {"fusion", "lexical", "dense"} <= set(changes) and "candidates" in changes["dense"]
    assert (out / "encoder" / "report.html").is_file()


def test_the_encoder_step_indexes_beside_the_served_index_and_leaves_it_untouched(built_index, tiny_bert_dir, tmp_path):
    dense = {"model": str(tiny_bert_dir), "device": "cpu", "batch_size": 16}
    built = built_index(products=120, queries=60, seed=6, dense=dense)
    served = IndexVersions(built.settings.index_dir).current()
    file = settings_file(tmp_path / "base.json", built.settings.index_dir, tmp_path / "models", dense=dense)
    out = tmp_path / "out"
    skips = ["--skip", "tune", "--skip", "reranker", "--skip", "ranker"]
    onboard(file, built.data, out, *skips, "--max-pairs", "32", "--epochs", "1")
    step = state_of(out)["steps"]["encoder"]
    assert step["changes"]["dense"]["model"] == "onboard-out-encoder"
    assert step["changes"]["index_dir"] == str((out / "index").resolve())
    assert IndexVersions(out / "index").current() is not None
    assert IndexVersions(built.settings.index_dir).current() == served
    assert step["card"]["name"] == "onboard-out-encoder" and "test" in step


def test_a_dev_gain_within_noise_is_not_promoted():
    promoted, reason = decide(0.4078, ("baseline", 0.4062), None, p_value=0.84, promotion_p=0.1)
    assert not promoted and "within dev's noise" in reason


def test_a_dev_gain_beyond_noise_is_promoted():
    promoted, reason = decide(0.4300, ("baseline", 0.4062), None, p_value=0.14, promotion_p=0.1)
    assert promoted and "one-sided p = 0.070" in reason


@pytest.fixture(scope="module")
def ranker(built_index, trained_ranker, tmp_path_factory):
    """A learned ranker trained on a generated catalogue (BM25 only), and the settings it was trained under."""
    built = built_index(products=400, queries=150, seed=4, dense={"enabled": False})
    settings = Settings(
        index_dir=built.settings.index_dir, models_dir=tmp_path_factory.mktemp("models"), dense={"enabled": False}
    )
    data = built.dataset()
    quick = RankerTraining(max_rounds=20, early_stopping_rounds=5, min_data_in_leaf=5)
    card = trained_ranker(settings, data.split("train"), data.split("dev"), Path(settings.models_dir) / "r", quick)
    return settings, card, data.split("dev")


@pytest.fixture(scope="module")
def overwhelmed(ranker):
    """The ranker step's choices under a long-tail boost strong enough to reorder everything, and dev."""
    settings, card, dev = ranker
    overwhelming = settings.override(longtail={"enabled": True, "method": "boost", "strength": 10.0, "gate": 0.0})
    return step_choices(overwhelming, "ranker", {"ltr": {"model": "r", "enabled": True}}, card), dev


def test_a_long_tail_boost_that_costs_the_ranker_dev_ndcg_is_turned_off(overwhelmed):
    choices, dev = overwhelmed
    found = measure({label: measured for label, (_, measured) in choices.items()}, {"dev": dev})
    assert found.chosen == "long-tail boost off"
    assert choices[found.chosen][0]["longtail"] == {"enabled": False}
    assert found.dev_choices[found.chosen] > found.dev_choices[AS_TRAINED]


def test_the_choice_dev_prefers_is_the_one_measured_on_test(overwhelmed):
    choices, dev = overwhelmed
    found = measure({label: measured for label, (_, measured) in choices.items()}, {"dev": dev, "test": dev})
    assert found.served["test"]["metrics"] == found.served["dev"]["metrics"]
    assert found.served["dev"]["metrics"]["nDCG@10"] == found.dev_choices[found.chosen]


def test_the_ranker_step_leaves_a_disabled_long_tail_boost_alone(ranker):
    settings, card, _ = ranker
    off = settings.override(longtail={"enabled": False})
    assert list(step_choices(off, "ranker", {"ltr": {"model": "r", "enabled": True}}, card)) == [AS_TRAINED]


def test_a_step_measured_with_a_reranker_keeps_its_scores_for_the_steps_after_it(ranker, tiny_cross_encoder_dir):
    settings, _, dev = ranker
    reranking = settings.override(
        rerank={"model": str(tiny_cross_encoder_dir), "require_card": False, "device": "cpu", "window": 10},
        ltr={"enabled": False},  # the reranker's order is the one served
    )
    kept = RerankScores()
    first = measure({AS_TRAINED: reranking}, {"dev": dev}, kept)
    scored = dict(kept.scores)
    # Kept probabilities of 0 and 1 in turn (the tiny model's lie within 1e-4 of each other) reorder the next
    # measure's windows only if it reads them rather than scoring the pairs again.
    kept.scores.update({pair: float(n % 2) for n, pair in enumerate(sorted(scored))})
    again = measure({AS_TRAINED: reranking}, {"dev": dev}, kept)
    assert scored and kept.scores.keys() == scored.keys()
    assert again.served["dev"]["per_query"] != first.served["dev"]["per_query"]


def test_measure_queries_decides_the_rerankers_blend_on_the_dev_sample_every_step_is_measured_on(tmp_path):
    """Deciding on a sample of its own cost the Home Depot layout's onboarding 16 minutes before the same model
    was measured on other queries."""
    queries = {f"q{i}": Query(f"q{i}", f"query {i}") for i in range(2000)}
    dev = (queries, {qid: {"p": 1} for qid in queries})
    plan = Plan(dataset=tmp_path, out=tmp_path, skip=frozenset(), measure_queries=500, seed=5)
    config = reranker_training(plan)
    measured, _ = sampled_queries(dev, plan.measure_queries, plan.seed)
    assert judged_subset(*dev, config.decision_queries, config.seed).keys() == measured.keys()


def test_a_measured_sample_smaller_than_the_trainers_evaluations_decides_on_those(tmp_path):
    """Those are the queries its last evaluation scored: the decision reads it and scores nothing more."""
    plan = Plan(dataset=tmp_path, out=tmp_path, skip=frozenset(), measure_queries=8)
    assert reranker_training(plan).decision_queries == RerankerTraining.dev_queries


def test_without_measure_queries_the_reranker_decides_on_its_own_cap_of_dev_queries(solved, tmp_path):
    _, data = solved
    config = reranker_training(Plan(dataset=data, out=tmp_path, skip=frozenset()))
    assert config.decision_queries == RerankerTraining.decision_queries


@pytest.fixture(scope="module")
def estimated(built_index, tiny_bert_dir, tiny_cross_encoder_dir, tmp_path_factory):
    """An estimate with every step to run, timed with the tiny models, and the plan that asked for it."""
    dense = {"model": str(tiny_bert_dir), "device": "cpu", "batch_size": 16}
    built = built_index(products=120, queries=60, seed=6, dense=dense)
    root = tmp_path_factory.mktemp("estimated")
    file = settings_file(root / "base.json", built.settings.index_dir, root / "models", dense=dense)
    settings = load_settings(file)
    plan = Plan(
        dataset=built.data,
        out=root / "out",
        skip=frozenset(),
        trials=7,
        max_pairs=32,
        epochs=0.5,
        reranker_base=str(tiny_cross_encoder_dir),
    )
    data = load_dataset(built.data)
    splits = sampled_splits(data, None, plan.seed)
    return estimate(plan, settings, data, splits, {"steps": {}}, measure=True), plan, settings, data, splits


def test_an_estimate_counts_each_steps_work_with_the_plans_caps(estimated):
    record, plan, *_ = estimated
    steps = record["steps"]
    assert list(steps) == ["baseline", "tune", "encoder", "reranker", "ranker"]
    assert "16 reranker pairs trained" in steps["reranker"]["work"]  # --max-pairs 32, --epochs 0.5
    assert "16 encoder triplets trained" in steps["encoder"]["work"]
    assert "reranker pairs scored" in steps["ranker"]["work"]  # the reranker it trains is in place by then
    assert "ranker row-rounds boosted" in steps["ranker"]["work"]


def test_an_estimate_times_every_kind_of_work_on_this_machine(estimated):
    record = estimated[0]
    rates = record["rates"]
    assert rates["device"] == "cpu"
    units = ("retrieve", "rank", "score", "train_pairs", "train_triplets", "encode", "boost")
    assert all(rates[unit] > 0 for unit in units)
    assert all(step["minutes"] > 0 for step in record["steps"].values())


def test_an_estimate_leaves_out_the_finished_and_skipped_steps(estimated):
    _, plan, settings, data, splits = estimated
    plan = replace(plan, skip=frozenset({"encoder"}))
    finished = {"steps": {"baseline": {}, "tune": {}}}
    assert list(planned_work(plan, settings, data, splits, finished)) == ["reranker", "ranker"]


def test_a_ranker_after_a_reranker_trained_in_an_earlier_run_counts_scoring_the_measured_queries_again(estimated):
    """The reranker step's scores of them are kept only within one run."""
    _, plan, settings, data, splits = estimated
    trained = settings.override(rerank={"model": "onboard-out-reranker", "window": 10})
    measured = sum(len(splits[split][1]) for split in ("dev", "test"))
    learned = len(data.split("train")[1])
    ranker = planned_work(plan, trained, data, splits, {"steps": {"reranker": {}}})["ranker"]
    assert ranker.score == 10 * (learned + measured)
    fresh = planned_work(plan, settings, data, splits, {"steps": {}})["ranker"]
    assert fresh.score == settings.rerank.window * learned


def test_onboard_estimate_prints_and_writes_the_plan_and_runs_nothing(estimated, tiny_cross_encoder_dir, tmp_path):
    _, plan, settings, *_ = estimated
    file = settings_file(
        tmp_path / "base.json", settings.index_dir, tmp_path / "models", dense=settings.dense.model_dump()
    )
    out = tmp_path / "out"
    result = onboard(
        file, plan.dataset, out, "--estimate", "--max-pairs", "32", "--reranker-base-model", str(tiny_cross_encoder_dir)
    )
    assert "onboarding plan on cpu" in result.output
    assert [path.name for path in out.iterdir()] == ["estimate.json"]
    assert json.loads((out / "estimate.json").read_text(encoding="utf-8"))["minutes"] > 0


def test_an_estimate_whose_models_cannot_be_loaded_still_gives_the_work(estimated, tmp_path):
    """The step that needs the model says so when it starts; the plan is not the place to fail."""
    _, plan, settings, *_ = estimated
    file = settings_file(
        tmp_path / "base.json", settings.index_dir, tmp_path / "models", dense=settings.dense.model_dump()
    )
    out = tmp_path / "out"
    result = onboard(file, plan.dataset, out, "--estimate", "--reranker-base-model", str(tmp_path / "missing"))
    assert "could not be timed" in result.output
    record = json.loads((out / "estimate.json").read_text(encoding="utf-8"))
    assert "minutes" not in record and "reranker pairs trained" in record["steps"]["reranker"]["work"]


def test_a_resumed_run_keeps_what_was_planned_for_the_steps_finished_before(onboarded, tmp_path):
    file, data, out, _ = onboarded
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    planned = state_of(copy)["estimate"]["steps"]
    onboard(file, data, copy, "--skip", "encoder", "--skip", "reranker", *QUICK)
    assert state_of(copy)["estimate"]["steps"] == planned


def test_a_dataset_judged_on_dev_and_test_alone_onboards_when_no_step_trains(solved, tmp_path):
    """The plan reads the train split only for a step that trains."""
    file, data = solved
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    (copy / "qrels" / "train.tsv").unlink()
    skips = ["--skip", "encoder", "--skip", "reranker", "--skip", "ranker"]
    onboard(file, copy, tmp_path / "out", *skips, "--trials", "3")
    assert list(state_of(tmp_path / "out")["estimate"]["steps"]) == ["baseline", "tune"]


def test_the_plan_bounds_what_the_encoder_step_then_trains_and_encodes(built_index, tiny_bert_dir, tmp_path):
    """Checked against the trained model's card, not against the plan's own formulas."""
    dense = {"model": str(tiny_bert_dir), "device": "cpu", "batch_size": 16}
    built = built_index(products=120, queries=60, seed=6, dense=dense)
    file = settings_file(tmp_path / "base.json", built.settings.index_dir, tmp_path / "models", dense=dense)
    out = tmp_path / "out"
    plan = Plan(dataset=built.data, out=out, skip=frozenset({"tune", "reranker", "ranker"}), max_pairs=32)
    data = load_dataset(built.data)
    planned = planned_work(plan, load_settings(file), data, sampled_splits(data, None, plan.seed), {"steps": {}})
    onboard(file, built.data, out, "--skip", "tune", "--skip", "reranker", "--skip", "ranker", "--max-pairs", "32")
    card = load_card(tmp_path / "models" / "onboard-out-encoder")
    steps, interval = card.parameters["steps"], card.parameters["eval_steps"]
    evaluations = 1 + max(1, steps // interval)  # the starting model's, and those in training (one at its end)
    assert card.data.splits["train"].pairs <= planned["encoder"].train_triplets
    assert card.parameters["dev_pool"] * evaluations + len(data.products) <= planned["encoder"].encode
