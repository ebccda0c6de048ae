"""The shop's real run: a Kaggle Home Depot directory at the real download's sizes, through the product's commands.

Why: the issue's filer runs ``index --catalog DIR``, ``evaluate``, ``tune`` and ``onboard`` on the real
"Home Depot Product Search Relevance" download (train.csv 74,067 rows, test.csv 166,693 with solution.csv,
product_descriptions.csv 124,428, attributes.csv 2,044,803), and only a seven-row fixture was ever read. This
script writes a directory of that layout and those row counts from the generator's hard profile, as Kaggle
ships it (ISO-8859-1, comma separated, quoted commas, quotes and newlines inside descriptions, a degree sign
and a half as one byte, rows of attributes.csv with every cell empty), then runs the commands as a shop
would, as subprocesses, and records each one's wall time, peak RSS (``/usr/bin/time -v``), its longest
silence (the most seconds between two writes to its terminal: a progress display that says nothing for
minutes reads as a hang) and the nDCG@10 figures it printed.

The mapping, none of it tuned to a result: product ``i`` of the generated catalogue is ``product_uid``
100001 + i with its generated title; its brand is "MFG Brand Name", its colour, material, size and features
(the catalogue's own arrays) are attribute rows and bullets, filled up with further bullets to the file's
row count; its description is those facts in sentences (a few of them over 5,000 characters, as on the real
site). The hard profile's pooled judgments (a handful per query, grades 0 to 2) are the rows of train.csv
and then of test.csv, to their row counts, each grade written as a mean of three raters (2: 3, 2.67 or
2.33; 1: 2.33, 2 or 1.67; 0: 1, 1.33 or 1.67; a few four-rater means such as 2.5 and 2.75), so the
loader's cuts see the noise real raters leave. A share of test rows is ``Ignored`` in solution.csv
(relevance -1). The figures are the generator's, not Kaggle's: they show what the commands cost and
whether they finish at this size, not the nDCG@10 the real download gives.

    python benchmarks/homedepot_scale.py                 # the real sizes, data under /tmp/hdscale
    python benchmarks/homedepot_scale.py --scale 0.05 --no-write   # a twentieth, to time before the full run

Writes benchmarks/results/homedepot_scale.json and the "Home Depot layout at the real sizes" section of
docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from report import ROOT, table, write_results, write_section  # noqa: E402

from search_rerank.data.generate import (  # noqa: E402
    FEATURES,
    MATERIALS,
    ROOMS,
    SIZES,
    GeneratorConfig,
    generate,
    make_catalog,
)
from search_rerank.data.taxonomy import COLOURS, TYPES  # noqa: E402
from search_rerank.training.cost import UNITS as UNIT_WORDS  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "homedepot_scale.json"
REAL = {"train": 74_067, "test": 166_693, "products": 124_428, "attributes": 2_044_803, "terms": 11_795 + 22_427}
"""The download's row counts (and its distinct search terms: train.csv's and test.csv's)."""
FIRST_UID = 100_001
RATERS = {2: ("3", "3", "2.67", "2.33", "2.75"), 1: ("2.33", "2", "2", "1.67", "2.5"), 0: ("1", "1.33", "1.67", "1.25")}
"""Means of three (or four) raters' 1/2/3 for a generated grade: the noise a real panel leaves around it."""
NAMED = ("MFG Brand Name", "Color Family", "Material", "Product Width (in.)", "Product Depth (in.)")
BULLETS = 22
IGNORED_SHARE = 0.3
EMPTY_EVERY = 100_000
"""One row of attributes.csv with every cell empty per this many rows, as the real file has."""
STEPS = ("index", "evaluate", "tune", "onboard", "estimate", "estimate-uncapped")
ESTIMATES = ("estimate", "estimate-uncapped")
"""``onboard --estimate`` with the onboarding's own options, and with none: the plan checked against the
recorded run, and what the defaults would cost on this machine."""
NDCG_LINE = re.compile(r"[^\n]*nDCG@10[^\n]*")


def bullets(cat: Any, i: int) -> list[str]:
    """The facts of product ``i`` as the site's bullet points, in Latin-1's reach (a degree sign, a half)."""
    t = TYPES[int(cat.type[i])]
    feats = [FEATURES[int(f)] for f in (cat.feature1[i], cat.feature2[i]) if f >= 0]
    lines = [
        f"Made of durable {MATERIALS[int(cat.material[i])]}, finished in {COLOURS[int(cat.colour[i])]}",
        f"Size: {SIZES[int(cat.size[i])]}; ideal for the {ROOMS[int(cat.room[i])]}",
        *(f"Features {feature}" for feature in feats),
        "Rated for use from -20°F to 120°F",
        'Fits standard ½ in. fittings, "no tools needed"',
        f"Department: {' > '.join(t.path[:-1])}",
        f"Model # {cat.model_text(i)}",
        "Backed by a limited warranty, see store for details",
    ]
    return [*lines, *(f"{lines[n % len(lines)]} (detail {n})" for n in range(len(lines), BULLETS))]


def attribute_rows(cat: Any, i: int, count: int) -> list[tuple[str, str, str]]:
    uid = str(FIRST_UID + i)
    width = 1 + (int(cat.model_number[i]) % 480) / 8
    named = [
        cat.brand_names[int(cat.brand[i])],
        COLOURS[int(cat.colour[i])].title(),
        MATERIALS[int(cat.material[i])].title(),
        f"{width:g}",
        f"{width / 2:g}",
    ]
    rows = [(uid, name, value) for name, value in zip(NAMED, named)]
    rows += [(uid, f"Bullet{n + 1:02d}", text) for n, text in enumerate(bullets(cat, i))]
    return rows[:count]


def description(cat: Any, i: int, long: bool) -> str:
    """Sentences of the product's facts; ``long``: the safety and care text some listings carry, 5,000+ chars."""
    text = ". ".join(bullets(cat, i)[:7]) + "."
    if long:
        care = 'Read all instructions, "before use".\nKeep away from children, pets, and open flame. '
        text += " " + care * (5_200 // len(care) + 1)
    return text


def csv_lines(rows: Sequence[Sequence[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode("latin-1")


def scaled(args: argparse.Namespace) -> dict[str, int]:
    return {key: max(10, round(value * args.scale)) for key, value in REAL.items()}


def write_download(out: Path, sizes: dict[str, int], seed: int) -> dict[str, Any]:
    """The four CSV files (and solution.csv) at ``sizes``; returns what was written."""
    # 5% more queries than the download has terms: a few pools come up short of 8 judgments
    queries = round(sizes["terms"] * 1.05)
    config = GeneratorConfig(products=sizes["products"], queries=queries, seed=seed, profile="hard", pooled=8)
    gen = out.parent / f"gen-{out.name}"
    if not (gen / "manifest.json").is_file():
        generate(gen, config)
    cat = make_catalog(config)
    titles = [json.loads(line)["title"] for line in (gen / "corpus.jsonl").open(encoding="utf-8")]
    texts = {}
    for line in (gen / "queries.jsonl").open(encoding="utf-8"):
        record = json.loads(line)
        texts[record["_id"]] = record["text"]
    judged: dict[str, list[tuple[int, int]]] = {}
    for split in ("train", "dev", "test"):
        with (gen / "qrels" / f"{split}.tsv").open(encoding="utf-8") as qrels:
            next(qrels)
            for line in qrels:
                qid, pid, grade = line.split("\t")
                judged.setdefault(qid, []).append((int(pid[1:]), int(grade)))
    rng = np.random.default_rng([seed, 47])
    out.mkdir(parents=True, exist_ok=True)
    rows: Iterator[tuple[str, int, int]] = ((qid, p, g) for qid in sorted(judged) for p, g in judged[qid])
    row_id = 0
    with (out / "train.csv").open("wb") as train:
        train.write(b"id,product_uid,product_title,search_term,relevance\n")
        for qid, p, g in rows:
            row_id += 1
            mean = RATERS[g][int(rng.integers(len(RATERS[g])))]
            train.write(csv_lines([(str(row_id), str(FIRST_UID + p), titles[p], texts[qid], mean)]))
            if row_id == sizes["train"]:
                break
    test_rows = 0
    with (out / "test.csv").open("wb") as test, (out / "solution.csv").open("wb") as solution:
        test.write(b"id,product_uid,product_title,search_term\n")
        solution.write(b"id,relevance,Usage\n")
        for qid, p, g in rows:
            row_id += 1
            test_rows += 1
            test.write(csv_lines([(str(row_id), str(FIRST_UID + p), titles[p], texts[qid])]))
            usage = "Ignored" if rng.random() < IGNORED_SHARE else "Public" if rng.random() < 0.3 else "Private"
            mean = "-1" if usage == "Ignored" else RATERS[g][int(rng.integers(len(RATERS[g])))]
            solution.write(csv_lines([(str(row_id), mean, usage)]))
            if test_rows == sizes["test"]:
                break
    products = len(titles)
    longs = set(rng.choice(products, size=max(1, products // 100), replace=False).tolist())
    with (out / "product_descriptions.csv").open("wb") as descriptions:
        descriptions.write(b"product_uid,product_description\n")
        for i in range(products):
            descriptions.write(csv_lines([(str(FIRST_UID + i), description(cat, i, i in longs))]))
    per_product = np.full(products, sizes["attributes"] // products)
    per_product[: sizes["attributes"] % products] += 1
    written = 0
    with (out / "attributes.csv").open("wb") as attributes:
        attributes.write(b"product_uid,name,value\n")
        for i in range(products):
            for row in attribute_rows(cat, i, int(per_product[i])):
                attributes.write(csv_lines([row]))
                written += 1
                if written % EMPTY_EVERY == 0:
                    attributes.write(b",,\n")
    return {"train_rows": row_id - test_rows, "test_rows": test_rows, "products": products, "attribute_rows": written}


def run_command(name: str, argv: list[str], env: dict[str, str], logs: Path) -> dict[str, Any]:
    """Run one command under ``/usr/bin/time -v``: its wall time, peak RSS, longest silence and nDCG@10 lines."""
    log = logs / f"{name}.log"
    stats = logs / f"{name}.time"
    command = ["/usr/bin/time", "-v", "-o", str(stats), sys.executable, "-m", "search_rerank", *argv]
    print(f"[{name}] {' '.join(argv)}", flush=True)
    started = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    assert process.stdout is not None
    last, silence = started, 0.0
    output = bytearray()
    with log.open("wb") as out:
        while chunk := os.read(process.stdout.fileno(), 65536):
            now = time.monotonic()
            silence, last = max(silence, now - last), now
            output += chunk
            out.write(chunk)
            out.flush()
    rc = process.wait()
    wall = time.monotonic() - started
    silence = max(silence, time.monotonic() - last)
    text = output.decode("utf-8", "replace").replace("\r", "\n")
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", stats.read_text())
    figures = {
        "argv": argv,
        "rc": rc,
        "wall_s": round(wall, 1),
        "peak_rss_mib": round(int(peak.group(1)) / 1024) if peak else None,
        "longest_silence_s": round(silence, 1),
        "ndcg_lines": list(dict.fromkeys(line.strip() for line in NDCG_LINE.findall(text)))[-12:],
        "tail": text.strip().splitlines()[-15:],
    }
    print(f"[{name}] rc {rc}, {wall:.0f} s, peak {figures['peak_rss_mib']} MiB, silent at most {silence:.0f} s")
    (logs / f"{name}.json").write_text(json.dumps(figures, indent=2))
    return figures


def commands(args: argparse.Namespace, data: Path, work: Path) -> dict[str, list[str]]:
    onboard = ["--trials", str(args.onboard_trials), "--max-pairs", str(args.max_pairs)]
    onboard += ["--ranker-queries", str(args.ranker_queries), "--epochs", str(args.epochs)]
    onboard += ["--measure-queries", str(args.measure_queries)] if args.measure_queries else []
    onboard += [option for step in args.onboard_skip for option in ("--skip", step)]
    every = {
        "index": ["index", "--catalog", str(data)],
        "evaluate": ["evaluate", "--dataset", str(data), "--split", "test", "--json", str(work / "evaluate.json")],
        "tune": ["tune", "--dataset", str(data), "--out", str(work / "tune"), "--trials", str(args.trials)],
        "onboard": ["onboard", "--dataset", str(data), "--out", str(work / "onboard"), *onboard],
        "estimate": ["onboard", "--dataset", str(data), "--out", str(work / "estimate"), *onboard, "--estimate"],
        "estimate-uncapped": [
            "onboard",
            "--dataset",
            str(data),
            "--out",
            str(work / "estimate-uncapped"),
            "--estimate",
        ],
    }
    return {name: every[name] for name in args.steps}


def evaluate_rows(work: Path) -> list[list[object]]:
    """nDCG@10 per configuration from evaluate's JSON report, when it wrote one."""
    path = work / "evaluate.json"
    if not path.is_file():
        return []
    report = json.loads(path.read_text())
    rows = report.get("rows") or report.get("configurations") or []
    found = []
    for row in rows if isinstance(rows, list) else []:
        name = row.get("name") or row.get("config")
        metrics = row.get("metrics", row)
        if name and "nDCG@10" in metrics:
            found.append([name, metrics["nDCG@10"]])
    return found


def tune_code_shares(work: Path) -> list[str]:
    """What tune made of the code queries' lexical shares, one line per kind, from its tuning.json."""
    from search_rerank.evaluation.tuning_report import code_share_lines

    path = work / "tune" / "tuning.json"
    return code_share_lines(json.loads(path.read_text())) if path.is_file() else []


def evaluate_warnings(work: Path) -> list[str]:
    """What evaluate's JSON report says of each configuration ranking below its BM25 leg, as it printed it."""
    path = work / "evaluate.json"
    if not path.is_file():
        return []
    return [str(warning["message"]) for warning in json.loads(path.read_text()).get("below_bm25", [])]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.strip().split("\n")[0])
    ap.add_argument("--scale", type=float, default=1.0, help="share of the download's row counts to write")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--work", type=Path, default=Path("/tmp/hdscale"))
    ap.add_argument("--steps", nargs="*", default=list(STEPS))
    ap.add_argument("--trials", type=int, default=10, help="tune's trials")
    ap.add_argument("--onboard-trials", type=int, default=5)
    ap.add_argument("--max-pairs", type=int, default=3000)
    ap.add_argument("--ranker-queries", type=int, default=300)
    ap.add_argument("--epochs", type=float, default=0.2)
    ap.add_argument("--measure-queries", type=int, default=500, help="onboard's; 0: every judged query")
    ap.add_argument("--onboard-skip", nargs="*", default=["encoder"], help="onboard's --skip (encoder: one more index)")
    ap.add_argument("--fresh", action="store_true", help="rewrite the files and rebuild the index")
    ap.add_argument("--no-write", action="store_true", help="print, do not touch docs/ or results/")
    args = ap.parse_args()
    sizes = scaled(args)
    work = args.work / f"scale-{args.scale:g}"
    data = work / "homedepot"
    if args.fresh and work.exists():
        shutil.rmtree(work)
    started = time.monotonic()
    if not (data / "attributes.csv").is_file():
        written = write_download(data, sizes, args.seed)
        written["write_s"] = round(time.monotonic() - started, 1)
        (work / "written.json").write_text(json.dumps(written))
    written = json.loads((work / "written.json").read_text())
    written["megabytes"] = {p.name: round(p.stat().st_size / 2**20, 1) for p in sorted(data.glob("*.csv"))}
    print(json.dumps(written))
    env = dict(os.environ, PYTHONPATH=str(ROOT), SEARCH_RERANK_INDEX_DIR=str(work / "index"))
    env["SEARCH_RERANK_MODELS_DIR"] = str(work / "models")
    logs = work / "logs"
    logs.mkdir(exist_ok=True)
    for name, argv in commands(args, data, work).items():
        run_command(name, argv, env, logs)
    # Every command's latest figures, those of earlier invocations too: each can be rerun alone.
    runs = {name: finished(path) for name in STEPS if (path := logs / f"{name}.json").is_file()}
    loaded = load_figures(data)
    figures = {"scale": args.scale, "written": written, "loaded": loaded, "commands": runs}
    figures |= {"evaluate": evaluate_rows(work), "evaluate_warnings": evaluate_warnings(work)}
    figures["onboard"] = onboard_rows(work)
    figures["estimates"] = {
        name: json.loads(path.read_text()) for name in ESTIMATES if (path := work / name / "estimate.json").is_file()
    }
    figures["tune_code_shares"] = tune_code_shares(work)
    print(json.dumps(figures, indent=2))
    if not args.no_write:
        write_results(RESULTS, figures)
        write_section("homedepot-scale", "Home Depot layout at the real sizes", report(figures))


def finished(path: Path) -> dict[str, Any]:
    """A command's figures and when it finished (its figures' file was written then): a command rerun alone
    reports beside the others' latest, and the settings shipped may have changed between them."""
    when = datetime.datetime.fromtimestamp(path.stat().st_mtime, datetime.UTC)
    return {**json.loads(path.read_text()), "finished": when.strftime("%Y-%m-%d %H:%M")}


def load_figures(data: Path) -> dict[str, Any]:
    """What the loader makes of the directory: products, queries and judged queries per split."""
    from search_rerank.data.loaders import load_dataset

    dataset = load_dataset(data)
    return {
        "products": len(dataset.products),
        "queries": len(dataset.queries),
        "judged_queries": {split: len(qrels) for split, qrels in dataset.qrels.items()},
    }


def onboard_rows(work: Path) -> list[list[object]]:
    """Per onboarding step: status, dev and test nDCG@10, minutes (from its state file)."""
    path = work / "onboard" / "state.json"
    if not path.is_file():
        return []
    rows = []
    for step, record in json.loads(path.read_text())["steps"].items():
        dev, test = (record.get(split, {}).get("metrics", {}).get("nDCG@10") for split in ("dev", "test"))
        rows.append([step, record["status"], dev if dev is not None else "–", test if test is not None else "–"])
        rows[-1].append(f"{record.get('seconds', 0) / 60:.1f}")
    return rows


def estimate_rows(figures: dict[str, Any]) -> list[list[object]]:
    """Per onboarding step: the estimate with the run's options, the run's own minutes, and the estimate and
    work without caps."""
    capped = figures["estimates"].get("estimate", {}).get("steps", {})
    uncapped = figures["estimates"].get("estimate-uncapped", {}).get("steps", {})
    ran = {row[0]: row[-1] for row in figures["onboard"]}
    rows = []
    for step in dict.fromkeys([*uncapped, *capped]):
        guess = capped.get(step, {}).get("minutes")
        free = uncapped.get(step, {})
        rows.append(
            [
                step,
                "–" if guess is None else f"{guess:.1f}",
                ran.get(step, "–") if step in capped else "–",
                f"{free['minutes']:.1f}" if "minutes" in free else "–",
                free.get("work", "–"),
            ]
        )
    return rows


def _option(runs: dict[str, Any], command: str, option: str) -> str | None:
    """The value ``command`` ran with for ``option``, as its line gave it."""
    argv = runs.get(command, {}).get("argv", [])
    return argv[argv.index(option) + 1] if option in argv[:-1] else None


def report(figures: dict[str, Any]) -> str:
    written, loaded, runs = figures["written"], figures["loaded"], figures["commands"]
    rows = [
        [f"`{name}`", run["finished"], run["rc"], f"{run['wall_s'] / 60:.1f}", run["peak_rss_mib"]]
        + [round(run["longest_silence_s"])]
        for name, run in runs.items()
    ]
    parts = [
        f"Written in {written['write_s'] / 60:.1f} min: train.csv {written['train_rows']:,} rows, test.csv "
        f"{written['test_rows']:,} (solution.csv beside it), product_descriptions.csv {written['products']:,}, "
        f"attributes.csv {written['attribute_rows']:,} "
        f"({', '.join(f'{k} {v} MB' for k, v in written['megabytes'].items())}). The loader reads "
        f"{loaded['products']:,} products (those of train.csv and test.csv) and {loaded['queries']:,} queries, judged: "
        + ", ".join(f"{split} {n:,}" for split, n in loaded["judged_queries"].items())
        + ".",
        table(["command", "finished (UTC)", "exit", "wall (min)", "peak RSS (MiB)", "longest silence (s)"], rows),
        "Each command's full line: "
        + "; ".join(f"`search-rerank {' '.join(run['argv'])}`" for run in runs.values()).replace("/tmp/hdscale/", ""),
    ]
    parts.append(
        "Each command ran as a subprocess of this script, peak RSS from `/usr/bin/time -v`; *longest silence* is the "
        "most seconds between two writes to its terminal. The script keeps each command's figures under its work "
        "folder, so a command rerun alone (`--steps onboard`) reports beside the others' latest (*finished* says when "
        "each ran: commands that ran on different days may have measured different shipped defaults, and "
        "docs/TUNING.md dates each change of one). The first "
        "full-size run of this script (2026-12-06, before the fixes it led to) found: measuring an onboarding step "
        "with a CPU reranker ranked every dev and test query (6 a second: 17 minutes per 6,400-query split) with "
        "nothing on the screen, as did the reranker's 1,000-query dev decision (2.3 minutes); both now show a "
        "progress bar. Nothing capped it: `onboard --measure-queries N` now measures, tunes and chooses the ranker "
        "on one seeded sample of N dev and N test queries, which also caps the ranker trainer's memory (the same "
        "onboarding without the cap peaked at 7,090 MiB; `train ranker` alone held 6.0 GB for 6,406 dev queries). "
        "Encoder training warned of 'indexing errors' on 5,000-character descriptions; it no longer does. The "
        "generated judgments touch half the catalogue (the download's touch all 124,428 products), so `index` "
        "encodes half the products the real download would make it encode. The onboarding run before session 50's "
        "changes took 58.4 minutes, the reranker step 45.7 of them: its training retrieved all 19,024 train "
        "queries' lists (9.7 minutes) to keep 3,000 pairs, and its blend was decided on 1,000 dev queries of its "
        "own (16 minutes) before the step was measured on the 500 of the sample (7 minutes for dev); now the "
        "first stage runs for the queries a capped draw picks, the decision is made on the measured sample, and "
        "its probabilities are kept for measuring. That run's reranker, trained on another sample of 3,000 pairs "
        "for 38 steps, scored test 0.387 after the reranker step and 0.429 after the ranker; on the same 500 "
        "test queries the first run after those changes (2026-12-06, the anchored share at 0.5: 0.380 after the "
        "reranker, promoted, and 0.421 after the ranker) trailed it by 0.006 (paired p 0.008) and 0.008 (p 0.15), "
        "while on dev they were level (-0.0009, p 0.74; -0.0002, p 0.98): one run of each cannot tell the new "
        "draw of pairs from another sample of the old. Rerun on 2026-12-07 with the anchored share at 0.9 (the "
        "table below): the baseline rose (test 0.369 to 0.377, dev 0.406 to 0.419), `tune` and the reranker were "
        "not promoted (dev -0.0027, p 0.36; +0.0016, p 0.59), and the ranker, over the baseline's lists, scored "
        "test 0.417."
    )
    if figures["evaluate"]:
        parts.append("`evaluate`, test split:\n\n" + table(["configuration", "nDCG@10"], figures["evaluate"]))
        scores = dict(figures["evaluate"])
        if {"bm25", "hybrid-linear"} <= scores.keys() and scores["hybrid-linear"] < scores["bm25"]:
            parts.append(
                f"The shipped linear fusion ranks below its BM25 leg here ({scores['hybrid-linear']:.3f} against "
                f"{scores['bm25']:.3f}); the next section measures what the rows miss "
                "(`benchmarks/homedepot_labels.py`), and `tune` on dev is a shop's way out. `evaluate` warns:\n\n"
                + "\n>\n".join(f"> {message}" for message in figures.get("evaluate_warnings", []))
            )
    if figures["onboard"]:
        parts.append(
            "`onboard` (test is reported, dev decides"
            + (
                f"; each split a sample of {sample} queries"
                if (sample := _option(runs, "onboard", "--measure-queries"))
                else ""
            )
            + "):\n\n"
            + table(["step", "status", "dev nDCG@10", "test nDCG@10", "minutes"], figures["onboard"])
        )
    if figures["estimates"]:
        rates = next(iter(figures["estimates"].values())).get("rates", {})
        shown = ", ".join(
            f"{rates[unit]:,} {words}" for unit, words in UNIT_WORDS.items() if rates.get(unit) is not None
        )
        totals = {name: record.get("minutes", 0) for name, record in figures["estimates"].items()}
        parts.append(
            "`onboard --estimate` (the plan printed before the first step) with the onboarding's options, beside "
            "the minutes each step of that run took, and with no options: the defaults' work (at most: hard "
            "negatives, dev evaluations and boosting rounds counted as if none ran short; the pairs the ranker's "
            "comparison with linear blends brings into the reranker's window not counted) and minutes on this "
            f"machine. Rates it measured, per second: {shown}. Totals: "
            + ", ".join(f"{name} {minutes:.0f} min" for name, minutes in totals.items())
            + ".\n\n"
            + table(
                ["step", "estimated (min)", "took (min)", "uncapped: estimated (min)", "uncapped: work"],
                estimate_rows(figures),
            )
        )
    # The command's verdict and, after it, what it made of the code queries' shares (one line per kind, from its
    # tuning.json: the terminal wraps them wherever its width says).
    lines = runs.get("tune", {}).get("ndcg_lines", [])
    tuned = [line for line in lines if line.startswith("nDCG@10 delta")] + figures.get("tune_code_shares", [])
    if tuned:
        parts.append("`tune` on dev: " + "; ".join(tuned))
    return "\n\n".join(parts)


if __name__ == "__main__":
    main()
