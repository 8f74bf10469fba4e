"""Backend and device choice: turns a SemanticConfig into one uncached encoder.

Kept apart from the backends so the `auto` rules (torch on a GPU, the measured CPU default
otherwise) and the backend/device compatibility checks are in one place, and so choosing a backend
imports only that backend's module.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from dedup_audit.encoders import BACKENDS, CPU_DEFAULT_BACKEND
from dedup_audit.encoders.model_source import resolve_model
from dedup_audit.errors import ConfigError

if TYPE_CHECKING:
    from dedup_audit.config import SemanticConfig
    from dedup_audit.encoders import Encoder


def resolve_device(device: str) -> str:
    """cpu | cuda; `auto` picks cuda when torch sees a GPU."""
    if device != "auto":
        if device == "cuda":
            import torch

            if not torch.cuda.is_available():
                raise ConfigError("--device cuda: torch sees no CUDA GPU; use --device cpu or auto")
        return device
    try:
        import torch
    except ImportError:
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_backend(backend: str, device: str) -> tuple[str, str]:
    """(backend, device) after `auto`: torch on a GPU, the measured CPU default otherwise."""
    if backend not in BACKENDS:
        raise ConfigError(f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "auto":
        dev = resolve_device(device)
        return ("torch", dev) if dev == "cuda" else (CPU_DEFAULT_BACKEND, "cpu")
    if backend == "torch":
        return backend, resolve_device(device)
    if device == "cuda":
        raise ConfigError(
            f"--backend {backend} runs on CPU only; use --backend torch for --device cuda"
        )
    return backend, "cpu"


def build_encoder(cfg: SemanticConfig, *, cache_dir: Path) -> Encoder:
    """The uncached encoder for `cfg` (see `dedup_audit.encoders.get_encoder`)."""
    source = resolve_model(cfg.model)
    backend, device = resolve_backend(cfg.backend, cfg.device)
    if cfg.max_seq_length < 1:
        raise ConfigError(f"--max-seq-length must be >= 1, got {cfg.max_seq_length}")
    if backend == "torch":
        from dedup_audit.encoders.torch_encoder import TorchEncoder

        return TorchEncoder(source, device=device, max_seq_length=cfg.max_seq_length)
    from dedup_audit.encoders.onnx_encoder import OnnxEncoder

    return OnnxEncoder(
        source,
        cache_dir=cache_dir,
        quantized=backend == "onnx-int8",
        max_seq_length=cfg.max_seq_length,
    )
