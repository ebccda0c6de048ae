"""Which torch device a model runs on: one rule for the bi-encoder, the reranker and both trainers.

torch is imported inside :func:`pick_device`, not at module level, so that importing ``core`` stays cheap
for code paths that never load a model.
"""

from __future__ import annotations

from .errors import ConfigError

DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
"""Training precisions: ``auto`` picks per device (see :func:`training_precision`)."""


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


def check_precision(precision: str) -> None:
    """Refuse a training precision that is not one of ``PRECISIONS`` (configs call it at construction, so a typo
    fails before minutes of mining, not after)."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")


def training_precision(device: str, precision: str = "auto") -> tuple[bool, bool]:
    """(bf16, fp16) for the trainer's mixed precision: the weights stay fp32, the matrix products run in half.

    ``auto``: bf16 where the hardware does it natively, a GPU with bf16 (no
    loss scaling needed) or a CPU with AVX512-BF16 or AMX (oneDNN's bf16
    kernels: on this project's 2-core AMD EPYC 1.3 times the pairs per CPU
    second of fp32 with the settings interleaved, 1.85 times the pairs/s run
    back to back at a lower load; the dev metric moved by less than 0.001),
    else fp16 on CUDA and fp32 on a CPU without bf16, where emulating it
    would be slower.
    """
    import torch

    check_precision(precision)
    if precision == "fp32":
        return False, False
    if precision == "fp16":
        if device != "cuda":
            raise ConfigError("fp16 training needs a CUDA device (loss scaling); use bf16 or fp32 on the CPU")
        return False, True
    if precision == "bf16":
        return True, False
    if device == "cuda":
        bf16 = torch.cuda.is_bf16_supported()
        return bf16, not bf16
    return native_cpu_bf16(), False


def native_cpu_bf16() -> bool:
    """Whether this CPU does bf16 matrix products natively (AVX512-BF16 or AMX, through oneDNN)."""
    import torch

    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def inference_bf16(device: str, precision: str = "auto") -> bool:
    """Whether a cross-encoder on ``device`` scores under bf16 autocast (the weights stay fp32).

    CPU only: the GPU reranker (:mod:`..backends.gpu_rerank`) casts its
    weights to half itself. ``auto`` is bf16 where the CPU has it natively,
    as for training. On this project's 2-core Intel Xeon (AMX) the demo's
    reranker served a window of 30 pairs of 64 tokens 1.93 times as fast at
    p50 as in fp32, and test nDCG@10 moved by +0.0001 (p 0.50: 3 of 124
    queries changed; ``benchmarks/rerank_precision.py``, docs/BENCHMARKS.md);
    where bf16 would be emulated it is slower,
    so ``auto`` stays fp32.
    """
    check_precision(precision)
    if device != "cpu":
        return False
    return precision == "bf16" or (precision == "auto" and native_cpu_bf16())
