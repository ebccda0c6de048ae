"""Which torch device a model runs on: one rule for the bi-encoder, the reranker and both trainers.

torch is imported inside :func:`pick_device`, not at module level, so that importing ``core`` stays cheap
for code paths that never load a model.
"""

from __future__ import annotations

from .errors import ConfigError

DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
"""Training precisions: ``auto`` picks per device (see ``training.encoder.training_precision``)."""


def pick_device(setting: str) -> str:
    """The torch device for a ``device`` setting; asking for CUDA without one fails at start-up, not mid-request."""
    if setting not in DEVICES:
        raise ConfigError(f"unknown device {setting!r}; valid: 'auto', 'cpu', 'cuda'")
    if setting == "cpu":
        return setting
    import torch

    if setting == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not torch.cuda.is_available():
        raise ConfigError(
            "device is 'cuda' but torch sees no CUDA device; set device to 'auto' or 'cpu', "
            "or install a CUDA build of torch on a machine with a GPU"
        )
    return setting
