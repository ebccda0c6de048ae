"""The model card both trainers write: one builder, so a reranker's and an encoder's provenance read alike.

Promotion is decided here and only here: a model is promoted when its dev nDCG@10 beats the baseline's
(``MODEL_METRIC`` > ``BASELINE_METRIC``), which is also what :class:`ModelCard` checks on load.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Protocol

from pydantic import JsonValue

from ..core.model_card import (
    BASELINE_METRIC,
    MODEL_METRIC,
    ModelCard,
    ModelKind,
    SplitSize,
    TrainingData,
    library_versions,
    save_card,
)


class TrainingConfig(Protocol):
    """A trainer's frozen dataclass of settings; all of it goes on the card as parameters."""

    __dataclass_fields__: ClassVar[dict[str, Any]]

    @property
    def base_model(self) -> str | None: ...

    @property
    def seed(self) -> int: ...


def save_training_card(
    out: Path,
    kind: ModelKind,
    config: TrainingConfig,
    *,
    data_path: str,
    data_name: str,
    label_source: str,
    train: SplitSize,
    dev: SplitSize,
    parameters: Mapping[str, JsonValue],
    dev_metrics: Mapping[str, float],
    promoted_because: str,
    refused_because: str,
    seconds: float,
    train_metrics: Mapping[str, Any],
    base_model: str | None = None,
) -> ModelCard:
    """Build the card of a model just saved to ``out`` (named after the directory), write it there, return it.

    ``parameters`` add run facts (steps, device, ...) to the config's own fields. ``promoted_because`` and
    ``refused_because`` are the promotion reason for either outcome, so the card always says why.
    ``base_model``: the model the weights started from, where the config does not name it (a distilled
    student starts from its teacher).
    """
    started_from = base_model if base_model is not None else config.base_model
    if started_from is None:
        raise ValueError(f"{out.name}: the card needs the model the weights started from")
    promoted = dev_metrics[MODEL_METRIC] > dev_metrics[BASELINE_METRIC]
    card = ModelCard(
        kind=kind,
        name=out.name,
        base_model=started_from,
        created=datetime.now(UTC),
        data=TrainingData.model_validate(
            {
                "path": data_path,
                "name": data_name,
                "label_source": label_source,
                "splits": {"train": train, "dev": dev},
            }
        ),
        parameters={**json.loads(json.dumps(asdict(config), default=str)), **parameters},
        seed=config.seed,
        dev_metrics=dict(dev_metrics),
        promoted=promoted,
        promotion_reason=promoted_because if promoted else refused_because,
        training_seconds=seconds,
        pairs_per_second=float(train_metrics.get("train_samples_per_second", 0.0)),
        library_versions=library_versions(),
    )
    save_card(card, out)
    return card
