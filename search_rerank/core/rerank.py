"""Cross-encoder reranking of the top of the fused list.

The reranker's score is blended with the first stage's rather than replacing
it: trained on sparse judgments, a cross-encoder learns that unjudged means
irrelevant and can rank below its own first stage (measured on real data:
nDCG@10 0.374 -> 0.277). The blend weight is chosen on dev when the model is
trained (its card records it) and can be overridden per setting or request.
Only the top ``window`` candidates are scored (cost grows linearly with it);
the rest keep their fused order below them.

A model's card names the runtime that serves it (``parameters.runtime``):
``torch`` (the CrossEncoder as saved), ``torch-int8`` (torch's dynamic int8
quantisation of its linear layers, applied at load) or ``onnx-int8`` (the
ONNX Runtime int8 export that ``search-rerank train distill`` writes beside
the weights), whichever measured fastest on CPU when it was trained.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .candidate import Candidate
from .device import inference_bf16, pick_device
from .errors import ConfigError, stop_if_past
from .fusion import minmax
from .pretokenised import PairEncoder, PretokenisedTexts, tokenizer_identity
from .retrieval import Stage
from .settings import RerankSettings

log = logging.getLogger(__name__)

DEFAULT_BLEND = 0.5  # for a model whose card chose no weight
UNTRAINED_MAX_LENGTH = 256  # tokens per pair for a model whose card names no training length
RUNTIMES = ("torch", "torch-int8", "onnx-int8")
ONNX_INT8_FILE = "model.int8.onnx"


class CrossEncoderReranker:
    """Scores (query, product text) pairs with a sentence-transformers CrossEncoder.

    Given the index version's pre-tokenised product texts (:mod:`.pretokenised`)
    made by this model's tokenizer, a request tokenises only its query.
    """

    name = Stage.RERANK

    def __init__(
        self,
        settings: RerankSettings,
        default_blend: float = DEFAULT_BLEND,
        pretokenised: PretokenisedTexts | None = None,
        runtime: str = "torch",
    ):
        if runtime not in RUNTIMES:
            raise ConfigError(f"unknown reranker runtime {runtime!r}; known: {', '.join(RUNTIMES)}")
        if settings.model is None:
            raise ConfigError("rerank.model is not set: train one with `search-rerank train reranker` or name a path")
        self.settings = settings
        self.model_name: str = settings.model
        self.default_blend = default_blend
        self.pretokenised = pretokenised
        self.runtime = runtime
        self.pairs: PairEncoder | None = None
        self.bf16 = False
        """Whether scoring runs under bf16 autocast: the torch runtime on a CPU, as ``settings.precision`` says."""
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def model(self):
        """The sentence-transformers CrossEncoder, loaded on first use."""
        self.warm_up()
        return self._model

    @property
    def max_length(self) -> int:
        return UNTRAINED_MAX_LENGTH if self.settings.max_length is None else self.settings.max_length

    def warm_up(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            model = self.load_model()
            self.pairs = self._pair_encoder(model)
            self.bf16 = self.runtime == "torch" and inference_bf16(str(model.device), self.settings.precision)
            self._model = model

    def load_model(self) -> Any:
        """The CrossEncoder in eval mode, its linear layers quantised to int8 for the ``torch-int8`` runtime."""
        from sentence_transformers import CrossEncoder

        local = os.path.isdir(self.model_name)  # local_files_only: a local model never reaches the hub
        device = "cpu" if self.runtime == "torch-int8" else pick_device(self.settings.device)
        try:
            model = CrossEncoder(self.model_name, device=device, max_length=self.max_length, local_files_only=local)
        except OSError as exc:
            raise ConfigError(
                f"cannot load reranker {self.model_name!r}: {exc}. "
                "Give a local model directory, or a hub name on a machine with internet access."
            ) from exc
        model.eval()
        if self.runtime == "torch-int8":
            quantise_linear_int8(model)
        return model

    def _pair_encoder(self, model) -> PairEncoder | None:
        """Pairs from the stored texts when this model's tokenizer made them; else None, logged once (per load)."""
        if self.pretokenised is None:
            log.info("the index version holds no pre-tokenised product texts: the reranker tokenises every pair")
            return None
        serving = tokenizer_identity(model.tokenizer, str(self.settings.model), self.max_length)
        refusal = self.pretokenised.identity.refusal(serving)
        if refusal is not None:
            log.warning("not using the pre-tokenised product texts in %s: %s", self.pretokenised.root, refusal)
            return None
        return PairEncoder(model.tokenizer, self.max_length, self.pretokenised)

    def score(
        self, query: str, texts: Sequence[str], batch_size: int | None = None, deadline: float | None = None
    ) -> np.ndarray:
        """Relevance probabilities in input order (sigmoid of the model's logit); ``deadline`` as in :meth:`run`."""
        self.warm_up()
        return probabilities(
            self._model,
            [(query, t) for t in texts],
            batch_size if batch_size is not None else self.settings.batch_size,
            bf16=self.bf16,
            deadline=deadline,
        )

    def run(
        self,
        query: str,
        candidates: Sequence[Candidate],
        texts: Mapping[str, str],
        settings: RerankSettings | None = None,
    ) -> list[Candidate]:
        """Rerank the top ``window``; ``settings`` carries per-request window, blend and batch size.

        No batch is started ``settings.timeout_s`` after the call (a :class:`~.errors.PastDeadline` instead):
        by then the pipeline, which waits that long, has answered without it."""
        settings = settings if settings is not None else self.settings
        deadline = time.monotonic() + settings.timeout_s
        window = list(candidates[: settings.window])
        if not window:
            return []
        batch_size = settings.batch_size
        self.warm_up()
        if self.pairs is not None:
            items = [(c.product_id, texts.get(c.product_id, "")) for c in window]
            probs = sigmoid(self.pairs.logits(self._model, query, items, batch_size, self.bf16, deadline))
        else:
            probs = self.score(query, [texts.get(c.product_id, "") for c in window], batch_size, deadline)
        weight = settings.blend if settings.blend is not None else self.default_blend
        return reranked(window, probs, weight, candidates[len(window) :])


class OnnxReranker(CrossEncoderReranker):
    """The same rerank stage, scored by ONNX Runtime from the int8 export in the model directory (CPU only)."""

    def __init__(
        self,
        settings: RerankSettings,
        default_blend: float = DEFAULT_BLEND,
        pretokenised: PretokenisedTexts | None = None,
    ):
        super().__init__(settings, default_blend, pretokenised, runtime="onnx-int8")

    def load_model(self) -> Any:
        return OnnxCrossEncoder(Path(self.model_name), self.max_length)


class OnnxCrossEncoder:
    """An ONNX Runtime session that answers like a CrossEncoder where the rerank stage calls one.

    ``__call__`` takes the tensors :class:`.pretokenised.PairEncoder` builds and
    ``predict`` takes text pairs, so serving, training evaluation and the
    benchmarks score it through the same code as the torch model.
    """

    device = "cpu"

    def __init__(self, directory: Path, max_length: int, file: str = ONNX_INT8_FILE):
        import onnxruntime as ort
        import torch
        from transformers import AutoTokenizer

        path = directory / file
        if not path.is_file():
            raise ConfigError(f"{path} is missing: the card says onnx-int8 serves this reranker; re-run the export")
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.tokenizer = AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
        self.max_length = max_length

    def __call__(self, features: Mapping[str, Any]) -> dict[str, Any]:
        import torch

        feed = {k: np.ascontiguousarray(v.numpy(), dtype=np.int64) for k, v in features.items() if k in self.inputs}
        return {"scores": torch.from_numpy(self.session.run(None, feed)[0])}

    def predict(self, pairs: Sequence[tuple[str, str]], batch_size: int, activation_fn=None, **_: Any) -> np.ndarray:
        """One logit per pair (``activation_fn`` applied if given); other CrossEncoder.predict options do not apply."""
        out = []
        for start in range(0, len(pairs), batch_size):
            batch = pairs[start : start + batch_size]
            features = self.tokenizer(
                [q for q, _ in batch],
                [t for _, t in batch],
                truncation=True,
                max_length=self.max_length,
                padding=True,
                return_tensors="pt",
            )
            scores = self(features)["scores"].reshape(-1)
            out.append((scores if activation_fn is None else activation_fn(scores)).numpy())
        return np.concatenate(out) if out else np.empty(0)


def quantise_linear_int8(model: Any) -> None:
    """torch's dynamic int8 quantisation of a CrossEncoder's linear layers, in place (CPU only)."""
    import torch

    transformer = model[0]
    transformer.model = torch.ao.quantization.quantize_dynamic(transformer.model, {torch.nn.Linear}, dtype=torch.qint8)


def make_reranker(
    settings: RerankSettings,
    runtime: str = "torch",
    default_blend: float = DEFAULT_BLEND,
    pretokenised: PretokenisedTexts | None = None,
) -> CrossEncoderReranker:
    """The reranker for the runtime a model's card names."""
    if runtime == "onnx-int8":
        return OnnxReranker(settings, default_blend, pretokenised)
    return CrossEncoderReranker(settings, default_blend, pretokenised, runtime=runtime)


def probabilities(
    model, pairs: Sequence[tuple[str, str]], batch_size: int, bf16: bool = False, deadline: float | None = None
) -> np.ndarray:
    """Sigmoid of a CrossEncoder's one logit per (query, text) pair: what serving and training evaluation both use."""
    return sigmoid(pair_logits(model, pairs, batch_size, bf16, deadline))


def pair_logits(
    model, pairs: Sequence[tuple[str, str]], batch_size: int, bf16: bool = False, deadline: float | None = None
) -> np.ndarray:
    """A CrossEncoder's raw logit per (query, text) pair: what distillation regresses on, and serving squashes.

    ``bf16``: under CPU bf16 autocast (see :func:`.device.inference_bf16`). With a ``deadline`` (monotonic) the
    model is given a batch at a time, longest texts first as it orders them itself, and no batch is started
    after it (see :func:`.errors.stop_if_past`)."""
    if not pairs:
        return np.empty(0)
    import torch

    def predict(chunk: list[tuple[str, str]]) -> np.ndarray:
        logits = model.predict(
            chunk,
            batch_size=batch_size,
            show_progress_bar=False,
            activation_fn=torch.nn.Identity(),
            convert_to_numpy=True,
        )
        return np.asarray(logits, dtype=np.float64).reshape(-1)

    pairs = list(pairs)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        if deadline is None:
            return predict(pairs)
        order = np.argsort([-len(q) - len(t) for q, t in pairs], kind="stable")
        out = np.empty(len(pairs), dtype=np.float64)
        for start in range(0, len(order), batch_size):
            stop_if_past(deadline, "rerank")
            chosen = order[start : start + batch_size]
            out[chosen] = predict([pairs[i] for i in chosen])
    return out


def sigmoid(logits) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64).reshape(-1)))


def blend(window: Sequence[Candidate], rerank_scores: np.ndarray, weight: float) -> list[Candidate]:
    """Final score = weight * reranker probability + (1 - weight) * min-max first-stage score."""
    if not window:
        return []
    first = minmax(np.array([c.score for c in window], dtype=np.float64))
    out = [
        c.with_score(weight * float(r) + (1 - weight) * float(f), rerank=float(r))
        for c, r, f in zip(window, rerank_scores, first)
    ]
    return sorted(out, key=lambda c: (-c.score, c.product_id))


BELOW_WINDOW_STEP = 1e-6
"""How far apart candidates past the window are scored: enough to keep their order, too little to stretch the
list's score range (see :func:`below_window`)."""


def below_window(rest: Sequence[Candidate], floor: float) -> list[Candidate]:
    """Candidates past the window keep their order, scored just below ``floor``, the lowest reranked score.

    Just below, not far below: stages after the reranker scale relevance
    within the list (the long-tail gate and MMR min-max it), and scores of
    -1, -2, ... -70 once squeezed a whole reranked window into the top 1% of
    that range, so the long-tail gate (``relevance >= 0.8``) let every
    reranked product through and the boost re-sorted the window by
    popularity (demo dev nDCG@10 0.78 -> 0.65). Unreranked candidates now sit
    at the bottom of the range, as the least relevant the list knows of.
    """
    return [c.with_score(floor - BELOW_WINDOW_STEP * (i + 1)) for i, c in enumerate(rest)]


def reranked(
    window: Sequence[Candidate], rerank_scores: np.ndarray, weight: float, rest: Sequence[Candidate]
) -> list[Candidate]:
    """A reranker's answer: the window blended (see :func:`blend`), then the rest in their order below it."""
    top = blend(window, rerank_scores, weight)
    return top + below_window(rest, top[-1].score if top else 0.0)
