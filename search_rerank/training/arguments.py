"""The Hugging Face trainer arguments the three model trainers share (encoder, reranker, distilled student).

Why one place: all three select the checkpoint with the best dev metric,
evaluated every ``eval_steps``, seed the data order, and train in mixed
precision where the device has it natively; a fix to one (a new precision, a
logging change) must reach all of them.
"""

from __future__ import annotations

from typing import Any, Protocol

from ..core.device import training_precision


class TrainingConfig(Protocol):
    """What the three trainers' frozen config dataclasses have in common (read-only, hence properties)."""

    @property
    def epochs(self) -> float: ...
    @property
    def batch_size(self) -> int: ...
    @property
    def learning_rate(self) -> float: ...
    @property
    def warmup_ratio(self) -> float: ...
    @property
    def seed(self) -> int: ...
    @property
    def precision(self) -> str: ...


class EvaluatedTraining(TrainingConfig, Protocol):
    """A trainer's config that evaluates on dev and stops early: the cross-encoder trainers'."""

    @property
    def eval_steps(self) -> int: ...
    @property
    def patience(self) -> int: ...


def trainer_arguments(
    config: TrainingConfig, checkpoints: str, device: str, eval_steps: int, metric: str, progress: bool
) -> dict[str, Any]:
    """Keyword arguments for ``SentenceTransformerTrainingArguments`` or ``CrossEncoderTrainingArguments``:
    evaluate every ``eval_steps`` and keep the checkpoint with the highest ``metric`` (an evaluator key)."""
    bf16, fp16 = training_precision(device, config.precision)
    return {
        "output_dir": checkpoints,
        "num_train_epochs": config.epochs,
        "per_device_train_batch_size": config.batch_size,
        "learning_rate": config.learning_rate,
        "warmup_steps": config.warmup_ratio,
        "seed": config.seed,
        "data_seed": config.seed,
        "eval_strategy": "steps",
        "eval_steps": eval_steps,
        "save_strategy": "steps",
        "save_steps": eval_steps,
        "save_total_limit": 2,
        "load_best_model_at_end": True,
        "metric_for_best_model": f"eval_{metric}",
        "greater_is_better": True,
        "logging_steps": max(1, eval_steps // 4),
        "report_to": "none",
        "disable_tqdm": not progress,
        "bf16": bf16,
        "fp16": fp16,
        "use_cpu": device == "cpu",
    }


def precision_name(args: Any) -> str:
    """What a card records of the precision the trainer ran in."""
    return "bf16" if args.bf16 else "fp16" if args.fp16 else "fp32"
