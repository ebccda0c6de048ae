"""Model cards and the model registry: what a trained model is, and whether it may be served.

A fine-tuned encoder or reranker directory is only trustworthy with its
provenance: which base model, which data and labels, which seed, and whether
it beat the first stage on dev. That record is ``model_card.json`` inside the
model directory (with a ``README.md`` rendered from it for people). A
directory without a valid card is refused rather than loaded, because a model
of unknown origin silently changes every ranking it touches.

The registry is a plain folder (``settings.models_dir``, default ``models/``)
with one directory per model, named as its card names it.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    FiniteFloat,
    JsonValue,
    ValidationError,
    model_validator,
)

from . import json_text
from .errors import ConfigError

CARD_FILE = "model_card.json"
README_FILE = "README.md"
NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}"
MODEL_METRIC = "model_ndcg10"
BASELINE_METRIC = "first_stage_ndcg10"

ModelKind = Literal["encoder", "reranker", "ranker"]
"""A bi-encoder, a cross-encoder, or a learned ranker (LightGBM LambdaMART over per-candidate features)."""


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SplitSize(_Record):
    queries: int = Field(ge=0)
    pairs: int = Field(ge=0)


class TrainingData(_Record):
    """Where the labels came from, enough to rebuild the training set."""

    path: str
    name: str
    label_source: Literal["judgments", "clicks", "judgments+clicks"]
    splits: dict[str, SplitSize]


class ModelCard(_Record):
    """The provenance and dev results of one trained model.

    ``dev_metrics[MODEL_METRIC]`` is the dev nDCG@10 of the pipeline as it
    would run with this model (at ``best_blend`` where there is one), so that
    promotion compares what would actually be served against
    ``dev_metrics[BASELINE_METRIC]``, the first stage alone.
    """

    card_version: Literal[1] = 1
    kind: ModelKind
    name: str = Field(pattern=f"^{NAME_PATTERN}$")
    base_model: str = Field(min_length=1)
    created: AwareDatetime
    data: TrainingData
    parameters: dict[str, JsonValue]
    seed: int
    dev_metrics: dict[str, FiniteFloat]
    promoted: bool
    promotion_reason: str = Field(min_length=1)
    training_seconds: float = Field(ge=0)
    pairs_per_second: float = Field(ge=0)
    library_versions: dict[str, str]

    @model_validator(mode="after")
    def _promotion_is_earned(self) -> ModelCard:
        if not self.promoted:
            return self
        model, baseline = self.dev_metrics.get(MODEL_METRIC), self.dev_metrics.get(BASELINE_METRIC)
        if model is None or baseline is None:
            raise ValueError(
                f"promoted is true but dev_metrics lacks {MODEL_METRIC} or {BASELINE_METRIC}; "
                "a model is promoted only when it beats the first stage on dev"
            )
        if model <= baseline:
            raise ValueError(
                f"promoted is true but dev_metrics.{MODEL_METRIC} ({model:.4f}) does not beat "
                f"{BASELINE_METRIC} ({baseline:.4f})"
            )
        return self


def library_versions() -> dict[str, str]:
    """The versions that decide whether a saved model loads and behaves the same elsewhere."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("search-rerank", "torch", "transformers", "sentence-transformers", "faiss-cpu", "lightgbm"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            continue
    return found


def save_card(card: ModelCard, directory: str | Path) -> Path:
    """Write ``model_card.json`` and the ``README.md`` rendered from it; returns the card's path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / CARD_FILE
    path.write_text(card.model_dump_json(indent=2) + "\n", encoding="utf-8")
    (directory / README_FILE).write_text(render_readme(card), encoding="utf-8")
    return path


def load_card(path: str | Path) -> ModelCard:
    """The card of a model directory (or a card file), or ConfigError naming the file and what is wrong."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"model directory {path} does not exist")
    file = path / CARD_FILE if path.is_dir() else path
    if not file.is_file():
        raise ConfigError(
            f"{file} is missing: {path} has no model card, so where it came from and whether it "
            "beat the first stage are unknown; use a model saved by `search-rerank train`"
        )
    try:
        data = json_text.loads(file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError, JsonTextError
        raise ConfigError(f"{file}: not valid JSON ({exc})") from None
    try:
        return ModelCard.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{file}: invalid model card: " + "; ".join(_describe(e) for e in exc.errors())) from None


def card_digest(directory: str | Path) -> str:
    """SHA-256 of the card file: a retrained model gets a new card, so this tells two trainings apart."""
    return hashlib.sha256((Path(directory) / CARD_FILE).read_bytes()).hexdigest()


def _describe(error: Any) -> str:
    where = ".".join(str(part) for part in error["loc"])
    if error["type"] == "missing":
        return f"field {where!r} is missing"
    if error["type"] == "extra_forbidden":
        return f"unknown field {where!r}"
    message = str(error["ctx"]["error"]) if error["type"] == "value_error" else error["msg"]
    if not where:
        return message
    return f"field {where!r}: {message} (got {repr(error['input'])[:60]})"


def render_readme(card: ModelCard) -> str:
    """The card for people; ``model_card.json`` stays the one the code reads."""
    lines = [
        f"# {card.name}",
        "",
        f"A {card.kind} {'trained with' if card.kind == 'ranker' else 'fine-tuned from'} `{card.base_model}`, "
        f"created {card.created.isoformat(timespec='seconds')}.",
        "",
        f"**Promoted: {'yes' if card.promoted else 'no'}.** {card.promotion_reason}",
        "",
        "## Training data",
        "",
        f"- dataset: {card.data.name} (`{card.data.path}`)",
        f"- labels: {card.data.label_source}",
        "",
        "| split | queries | pairs |",
        "|---|---:|---:|",
        *(f"| {split} | {size.queries} | {size.pairs} |" for split, size in card.data.splits.items()),
        "",
        "## Dev metrics",
        "",
        "| metric | value |",
        "|---|---:|",
        *(f"| {name} | {value:.4f} |" for name, value in card.dev_metrics.items()),
        "",
        "## Training",
        "",
        f"- seed: {card.seed}",
        f"- training time: {card.training_seconds:.1f} s ({card.pairs_per_second:.1f} pairs/s)",
        *(f"- {name}: `{json.dumps(value)}`" for name, value in card.parameters.items()),
        "",
        "## Libraries",
        "",
        *(f"- {name} {version}" for name, version in card.library_versions.items()),
        "",
        f"_Rendered from `{CARD_FILE}`, which is what search-rerank reads: edit that file, not this one._",
        "",
    ]
    return "\n".join(lines)


# --- registry ----------------------------------------------------------------------


@dataclass(frozen=True)
class ModelEntry:
    """A registry directory, with its card or why it has no usable one."""

    name: str
    path: Path
    card: ModelCard | None
    problem: str | None


def list_models(root: str | Path) -> list[ModelEntry]:
    """Every directory in the registry, broken ones included, so that a bad card is seen before it is needed."""
    root = Path(root)
    if not root.is_dir():
        return []
    entries = []
    for directory in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        try:
            entries.append(ModelEntry(directory.name, directory, _registered_card(directory), None))
        except ConfigError as exc:
            entries.append(ModelEntry(directory.name, directory, None, str(exc)))
    return entries


def resolve_model(name_or_path: str, root: str | Path, kind: ModelKind) -> tuple[str, ModelCard]:
    """The directory to load and its card, for a registry name or a directory path.

    A bare name (letters, digits, ``._-``) is looked up in the registry at
    ``root``; anything else is a path (write ``./name`` for a directory in the
    working directory). Refused, with the reason: an unknown name, a missing
    directory, a missing or invalid card, a card for the other kind of model.
    """
    root = Path(root)
    if re.fullmatch(NAME_PATTERN, name_or_path):
        directory = root / name_or_path
        if not directory.is_dir():
            names = ", ".join(entry.name for entry in list_models(root)) or "none"
            raise ConfigError(
                f"no model named {name_or_path!r} in the registry {root} (models there: {names}); "
                f"give a registered name or a directory path such as ./{name_or_path}"
            )
        card = _registered_card(directory)
    else:
        directory = Path(name_or_path).expanduser()
        if directory.is_file():
            raise ConfigError(f"{directory} is a file; give the model directory that holds it and its {CARD_FILE}")
        card = load_card(directory)
    if card.kind != kind:
        raise ConfigError(
            f"{directory} holds a {card.kind} model ({card.name!r}) but a {kind} is needed here; "
            f"train one with `search-rerank train {kind}` or pick another model"
        )
    return str(directory), card


def _registered_card(directory: Path) -> ModelCard:
    """Registry lookups go by directory name, so a card naming another model would be found under a wrong name."""
    card = load_card(directory)
    if card.name != directory.name:
        raise ConfigError(
            f"{directory / CARD_FILE}: the card names the model {card.name!r} but its registry "
            f"directory is {directory.name!r}; rename the directory or fix the card's name"
        )
    return card
