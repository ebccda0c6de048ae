"""Distil a trained reranker into a smaller, faster student for CPU serving.

The student keeps the first N transformer layers of its base (by default the
teacher itself, which is the packaged MiniLM fine-tuned, so the layers start
where the teacher's representation does) and is trained to reproduce the
teacher's *logits* (MSE) on the pairs serving will actually score: each train
query's first-stage candidates. Labels are not needed beyond the teacher, so
every candidate, judged or not, is a training pair.

Checkpoints are selected on dev exactly as the teacher's were
(:class:`.reranker.DevRerankEvaluator`), and the teacher is scored by the same
evaluator, so the card compares like with like. After training the student is
exported for ONNX Runtime with dynamic int8 quantisation, and the fp32 torch
model, torch's dynamic int8 quantisation and the ONNX int8 session are timed
at the serving window on CPU; the card records every timing and names the
fastest as the runtime serving uses (:func:`..core.rerank.make_reranker`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..core.device import inference_bf16, pick_device
from ..core.model_card import BASELINE_METRIC, MODEL_METRIC, ModelCard, SplitSize, card_digest
from ..core.rerank import ONNX_INT8_FILE, OnnxCrossEncoder, pair_logits, quantise_linear_int8
from ..data.dataset import Query
from ..data.qrels import Qrels
from .card import save_training_card
from .mining import first_stage_lists, judged_subset, mine_capped
from .model_folder import staged
from .reranker import BLENDS, DEV_DEPTH, DevRerankEvaluator, decision_evaluator, fit_cross_encoder

ONNX_FP32_FILE = "model.onnx"
EVAL_KEYS = (MODEL_METRIC, "best_blend", BASELINE_METRIC, "rerank_only_ndcg10")


@dataclass(frozen=True)
class DistillTraining:
    # Chosen from three runs on the demo's teacher (docs/BENCHMARKS.md, issue 14): 2 layers ended 0.054 below the
    # teacher on dev, 3 layers 0.035, 4 layers (two epochs at 2e-4) 0.003, and 4 int8 layers still serve a window
    # of 50 in about a third of the teacher's time.
    layers: int = 4
    base_model: str | None = None  # None: the teacher's own first ``layers`` layers
    epochs: float = 2.0
    batch_size: int = 32
    learning_rate: float = 2e-4
    warmup_ratio: float = 0.1
    max_length: int | None = None  # None: the teacher's training length
    depth: int = 50  # first-stage candidates per train query, each a (query, product) pair
    eval_steps: int = 200
    patience: int = 2
    window: int = 50
    dev_queries: int = 150
    decision_queries: int = 1000  # as the reranker's: the served blend and the promotion decided on more queries
    blends: tuple[float, ...] = BLENDS
    max_pairs: int | None = None
    latency_queries: int = 10  # dev queries timed per runtime at ``window``
    seed: int = 13
    precision: str = "auto"  # see core.device.training_precision


def window_latency(score: Callable[[list[tuple[str, str]]], Any], batches: Sequence[list[tuple[str, str]]]) -> dict:
    """p50/p99 ms of scoring each window of pairs, after one untimed call (first-call setup is not serving cost)."""
    score(batches[0])
    times = []
    for pairs in batches:
        started = time.perf_counter()
        score(pairs)
        times.append((time.perf_counter() - started) * 1000)
    return {"p50_ms": float(np.percentile(times, 50)), "p99_ms": float(np.percentile(times, 99))}


def export_onnx_int8(model: Any, directory: Path, max_length: int) -> Path:
    """Write the student as ONNX (dynamic batch and length) and its dynamic int8 quantisation; returns the latter."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    hf = model[0].model.eval()
    sample = model.tokenizer(
        ["a query", "a longer query with more words"],
        ["short", "a product text long enough to pad the other row"],
        truncation=True,
        max_length=max_length,
        padding=True,
        return_tensors="pt",
    )
    names = ["input_ids", "attention_mask", "token_type_ids"]
    fp32 = directory / ONNX_FP32_FILE
    with torch.inference_mode():
        torch.onnx.export(
            hf.cpu(),
            tuple(sample[n] for n in names),
            str(fp32),
            input_names=names,
            output_names=["logits"],
            dynamic_axes={**{n: {0: "batch", 1: "length"} for n in names}, "logits": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
    int8 = directory / ONNX_INT8_FILE
    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8)
    fp32.unlink()  # only the int8 session is served; the fp32 graph is 4x its size
    return int8


def runtime_latencies(directory: Path, max_length: int, batches: Sequence[list[tuple[str, str]]], batch_size: int):
    """CPU p50/p99 per runtime for the saved student at one window per batch; the fastest p50 serves it."""
    from sentence_transformers.cross_encoder import CrossEncoder

    def torch_model(int8: bool):
        model = CrossEncoder(str(directory), device="cpu", max_length=max_length, local_files_only=True)
        model.eval()
        if int8:
            quantise_linear_int8(model)
        return model

    models = {
        "torch": torch_model(False),
        "torch-int8": torch_model(True),
        "onnx-int8": OnnxCrossEncoder(directory, max_length),
    }

    def scorer(model: Any, bf16: bool) -> Callable[[list[tuple[str, str]]], Any]:
        return lambda pairs: pair_logits(model, pairs, batch_size, bf16)

    # torch is timed as serving runs it by default (rerank.precision "auto": bf16 where the CPU has it natively)
    timings = {
        runtime: window_latency(scorer(model, runtime == "torch" and inference_bf16("cpu")), batches)
        for runtime, model in models.items()
    }
    return timings, min(timings, key=lambda r: timings[r]["p50_ms"])


def train_distilled(
    pipeline,
    teacher_dir: str | Path,
    teacher_card: ModelCard,
    train: tuple[Mapping[str, Query], Qrels],
    dev: tuple[Mapping[str, Query], Qrels],
    out_dir: str | Path,
    config: DistillTraining = DistillTraining(),
    *,
    data_path: str = "",
    data_name: str = "",
    label_source: str = "judgments",
    progress: bool = True,
) -> ModelCard:
    """Train the student on the teacher's logits, select on dev, export and time it; save model and card."""
    import torch
    from datasets import Dataset
    from sentence_transformers.cross_encoder import CrossEncoder
    from sentence_transformers.cross_encoder.losses import MSELoss
    from transformers import set_seed

    set_seed(config.seed)
    started = time.perf_counter()
    teacher_dir = str(teacher_dir)
    trained_length = teacher_card.parameters.get("max_length")
    max_length = config.max_length if config.max_length is not None else int(trained_length or 128)  # type: ignore[arg-type]
    device = pick_device("auto")

    train_q, _ = train
    dev_q = judged_subset(*dev, config.dev_queries, config.seed)

    def listed(queries: Mapping[str, Query]) -> list[tuple[str, str]]:
        lists = first_stage_lists(pipeline, queries, config.depth, progress)
        return [(qid, c.product_id) for qid, cs in sorted(lists.items()) for c in cs[: config.depth]]

    pairs = mine_capped(train_q, None, config.max_pairs, config.seed, listed, lambda pair: pair[0])
    if not pairs:
        from ..core.errors import ConfigError

        raise ConfigError("no training pairs: the first stage returned nothing for the train queries")
    dev_lists = first_stage_lists(pipeline, dev_q, DEV_DEPTH, progress)
    wanted = {pid for _, pid in pairs} | {c.product_id for cs in dev_lists.values() for c in cs[: config.window]}
    texts = {pid: product.embedding_text() for pid, product in pipeline.store.get(sorted(wanted)).items()}
    evaluator = DevRerankEvaluator(dev[1], dev_lists, texts, dev_q, config.window, config.blends)
    text_pairs = [(train_q[qid].text, texts.get(pid, "")) for qid, pid in pairs]

    teacher = CrossEncoder(teacher_dir, device=device, max_length=max_length, local_files_only=True)
    teacher.eval()
    targets = pair_logits(teacher, text_pairs, 64)

    student = CrossEncoder(
        config.base_model if config.base_model is not None else teacher_dir,
        num_labels=1,
        max_length=max_length,
        device=device,
        local_files_only=True,
        config_kwargs={"num_hidden_layers": config.layers},
    )
    data = Dataset.from_dict(
        {"query": [q for q, _ in text_pairs], "text": [t for _, t in text_pairs], "label": targets.tolist()}
    )
    fitted = fit_cross_encoder(student, data, MSELoss(student), evaluator, config, device, progress, EVAL_KEYS)
    final = fitted.best
    decider = decision_evaluator(pipeline, dev, evaluator, texts, config.decision_queries, config.seed, progress)
    with torch.inference_mode():
        if final is None or decider is not evaluator:  # no evaluation kept, or decided on more queries
            final = decider(student)
        teacher_dev = decider(teacher)
    training_seconds = time.perf_counter() - started

    with staged(Path(out_dir)) as out:  # the student, its ONNX graph and card, put in place whole
        student.save(str(out))
        export_onnx_int8(student.to("cpu"), out, max_length)
        timed = sorted(dev_lists)[: config.latency_queries]
        batches = [
            [(dev_q[qid].text, texts.get(c.product_id, "")) for c in dev_lists[qid][: config.window]] for qid in timed
        ]
        batches = [b for b in batches if b] or [text_pairs[: config.window]]
        student_ms, runtime = runtime_latencies(out, max_length, batches, config.window)
        teacher.to("cpu")
        teacher_ms = window_latency(lambda p: pair_logits(teacher, p, config.window), batches)

        metrics = {
            **final,
            "teacher_model_ndcg10": teacher_dev[MODEL_METRIC],
            "teacher_rerank_only_ndcg10": teacher_dev["rerank_only_ndcg10"],
        }
        return save_training_card(
            out,
            "reranker",
            config,
            base_model=config.base_model if config.base_model is not None else teacher_card.base_model,
            data_path=data_path,
            data_name=data_name,
            label_source=label_source,
            train=SplitSize(queries=len({q for q, _ in pairs}), pairs=len(pairs)),
            dev=decider.size(),
            parameters={
                "max_length": max_length,
                "steps": fitted.steps,
                "device": device,
                "precision": fitted.precision,
                "runtime": runtime,
                "teacher": teacher_card.name,
                "teacher_path": teacher_dir,
                "teacher_card_sha256": card_digest(teacher_dir),
                "student_parameters": int(sum(p.numel() for p in student.parameters())),
                "teacher_parameters": int(sum(p.numel() for p in teacher.parameters())),
                "cpu_latency_window": config.window,
                "cpu_torch_threads": torch.get_num_threads(),
                "cpu_latency_ms": {"teacher": teacher_ms, **student_ms},
            },
            dev_metrics=metrics,
            promoted_because=f"dev nDCG@10 {final[MODEL_METRIC]:.4f} at blend {final['best_blend']} beats the first "
            f"stage's {final[BASELINE_METRIC]:.4f} (teacher {teacher_dev[MODEL_METRIC]:.4f})",
            refused_because=f"dev nDCG@10 does not beat the first stage's {final[BASELINE_METRIC]:.4f} at any blend; "
            "serving it would make results worse",
            seconds=training_seconds,
            train_metrics=fitted.metrics,
        )
