"""The product's own end-to-end search on a GPU, and the same on the CPU for the ratio (issue 14, item 5).

One command, no network: generates a catalog with the product's generator,
builds the index (index build docs/s), then for each device measures the
whole search (retrieve, fuse, rerank, long-tail boost) one query at a time at
windows 50/100/200 (p50/p99, the per-stage p50 beside it) and the QPS under
``--clients`` concurrent clients at window 100. On CUDA the reranker is the
GPU path (:mod:`search_rerank.backends.gpu_rerank`: fp16, shape buckets
warmed at start, micro-batching); on the CPU the plain cross-encoder.

    python benchmarks/gpu.py --model DIR --products 20000 --queries 300      # GPU machine, with the bundle
    python benchmarks/gpu.py --devices cpu --products 300 --queries 20 --seconds 5   # proves it runs, anywhere

``--model`` is a cross-encoder directory (the bundle's fp16 MiniLM, see
benchmarks/gpu_bundle.sh); without it the packaged MiniLM is used. Writes
``gpu_*`` / ``cpu_e2e_*`` keys into benchmarks/results/rerank_latency.json
(merged, other keys kept) unless ``--no-write``; prints the figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from search_rerank.core.settings import Settings  # noqa: E402
from search_rerank.data.generate import GeneratorConfig, generate  # noqa: E402
from search_rerank.data.loaders import iter_catalog  # noqa: E402
from search_rerank.indexing.indexes import build_index, open_pipeline  # noqa: E402
from search_rerank.indexing.versions import IndexVersions  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "rerank_latency.json"
WINDOWS = (50, 100, 200)


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q))


def settings_for(work: Path, model: str, device: str, encoder: str | None) -> Settings:
    return Settings(
        index_dir=work / "index",
        dense={"device": device, **({} if encoder is None else {"model": encoder, "require_card": False})},
        rerank={"model": model, "require_card": False, "device": device, "max_length": 128, "batch_size": 256},
    )


def one_at_a_time(pipeline, settings: Settings, queries: list[str], window: int) -> dict[str, float]:
    per_window = settings.model_copy(update={"rerank": settings.rerank.model_copy(update={"window": window})})
    for q in queries[:3]:
        pipeline.run(q, settings=per_window)  # first calls are not serving cost
    totals, stages = [], {}
    for q in queries:
        started = time.perf_counter()
        result = pipeline.run(q, settings=per_window)
        totals.append((time.perf_counter() - started) * 1000)
        for stage, ms in result.ranking.timings_ms.items():
            stages.setdefault(stage, []).append(ms)
    return {
        "p50_ms": pct(totals, 50),
        "p99_ms": pct(totals, 99),
        **{f"{stage}_p50_ms": statistics.median(v) for stage, v in stages.items()},
    }


def concurrent_qps(pipeline, settings: Settings, queries: list[str], clients: int, seconds: float) -> dict[str, float]:
    """Closed loop: each client sends its next query when the last returns; errors are counted, not raised."""
    stop = time.monotonic() + seconds
    done, errors, latencies = [0], [0], []
    lock = threading.Lock()

    def client(offset: int) -> None:
        i = offset
        while time.monotonic() < stop:
            started = time.perf_counter()
            try:
                pipeline.run(queries[i % len(queries)], settings=settings)
            except Exception:
                with lock:
                    errors[0] += 1
                continue
            with lock:
                done[0] += 1
                latencies.append((time.perf_counter() - started) * 1000)
            i += clients

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    return {
        "qps": done[0] / elapsed,
        "errors": errors[0],
        "p50_ms": pct(latencies, 50) if latencies else 0.0,
        "p99_ms": pct(latencies, 99) if latencies else 0.0,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("/tmp/gpu-bench"))
    ap.add_argument("--model", help="cross-encoder directory (default: the packaged MiniLM with a new head)")
    ap.add_argument("--encoder", help="bi-encoder for the dense leg (default: the packaged MiniLM)")
    ap.add_argument("--devices", default="cuda,cpu", help="comma-separated; cuda is skipped when none is available")
    ap.add_argument("--products", type=int, default=20_000)
    ap.add_argument("--queries", type=int, default=300, help="timed one at a time per window")
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=30.0, help="per concurrent run")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()

    import torch

    from search_rerank.backends.encoder import resolve_model_path
    from search_rerank.core.settings import PACKAGED_MINILM

    model = args.model if args.model is not None else resolve_model_path(PACKAGED_MINILM)
    devices = [d for d in args.devices.split(",") if d != "cuda" or torch.cuda.is_available()]
    data = args.work / f"data-{args.products}"
    if not (data / "manifest.json").exists():
        generate(data, GeneratorConfig(products=args.products, queries=max(args.queries * 4, 100), seed=13))
    log = [json.loads(line) for line in (data / "queries.jsonl").open(encoding="utf-8")]
    queries = [q["text"] for q in log][: args.queries]
    figures: dict[str, object] = {
        "gpu_available": torch.cuda.is_available(),
        "gpu_name": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "e2e_products": args.products,
        "e2e_queries": len(queries),
        "e2e_clients": args.clients,
    }
    for device in devices:
        prefix = "gpu" if device == "cuda" else "cpu_e2e"
        settings = settings_for(args.work / device, model, device, args.encoder)
        if IndexVersions(settings.index_dir).serving_dir() is None:
            report = build_index(iter_catalog(data / "corpus.jsonl"), settings)
            figures[f"{prefix}_index_docs_per_s"] = report.products / max(report.seconds.get("total", 0.0), 1e-9)
            figures[f"{prefix}_index_parts_docs_per_s"] = report.docs_per_second()
        pipeline = open_pipeline(settings)
        pipeline.warm_up()  # on CUDA, load_reranker served the GPU path: every shape bucket is warmed here
        for window in WINDOWS:
            measured = one_at_a_time(pipeline, settings, queries, window)
            figures.update({f"{prefix}_w{window}_{k}": v for k, v in measured.items()})
            print(device, window, json.dumps(measured), flush=True)
        w100 = settings.model_copy(update={"rerank": settings.rerank.model_copy(update={"window": 100})})
        loaded = concurrent_qps(pipeline, w100, queries, args.clients, args.seconds)
        figures.update({f"{prefix}_w100_{args.clients}clients_{k}": v for k, v in loaded.items()})
        print(device, "concurrent", json.dumps(loaded), flush=True)
        pipeline.close()
    if "gpu_w100_p50_ms" in figures and "cpu_e2e_w100_p50_ms" in figures:
        figures["gpu_w100_speedup_p50"] = figures["cpu_e2e_w100_p50_ms"] / figures["gpu_w100_p50_ms"]  # type: ignore[operator]
    print(json.dumps(figures, indent=2))
    if not args.no_write:
        existing = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        RESULTS.write_text(json.dumps({**existing, **figures}, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
