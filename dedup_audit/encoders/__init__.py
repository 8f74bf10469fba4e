"""Text encoders for the semantic detector: a small protocol, backends and a cached factory.

Detectors depend only on the `Encoder` protocol, so tests plug in a fake and the heavy libraries
(torch, sentence-transformers, onnxruntime) load only when an embedding is really computed.

Modules: ``model_source`` (which model, offline), ``factory`` (backend/device choice),
``torch_encoder`` and ``onnx_encoder`` (the backends), ``artifacts`` (locally
built model files) and ``cache`` (embeddings on disk).

Backends (all built from the same local sentence-transformers folder, never downloaded):

- ``torch``: sentence-transformers fp32, the reference; the only one that runs on CUDA.
- ``onnx`` / ``onnx-int8``: the same network exported locally to ONNX (and int8 dynamic
  quantization) and run by onnxruntime on CPU.
- ``auto``: ``torch`` on a GPU, otherwise the CPU default chosen in benchmarks/README.md
  ("Semantic: embedding speed").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from dedup_audit.config import SemanticConfig

BACKENDS: tuple[str, ...] = ("auto", "torch", "onnx", "onnx-int8")

CPU_DEFAULT_BACKEND = "onnx"
"""What `backend="auto"` picks without a GPU, from benchmarks/embed_speed.py (benchmarks/README.md,
"Semantic: embedding speed"): the fp32 ONNX export is ~1.8x torch on 2 cores with identical
duplicate decisions; int8 is ~3.5x but flips ~30% of the edges at cosine 0.9. A static
(model2vec) table was removed: no threshold mapping made its decisions agree with fp32 across
data sets (benchmarks/README.md, "Semantic: the static backend")."""


@runtime_checkable
class Encoder(Protocol):
    """Turns texts into L2-normalised float32 vectors, so inner product == cosine similarity."""

    @property
    def name(self) -> str:
        """Identity of the model and backend: part of the embedding cache key, shown in reports."""
        ...

    def encode(
        self, texts: Sequence[str], *, batch_size: int, progress: bool
    ) -> npt.NDArray[np.float32]:
        """An (n, d) float32 array, row i the unit-length embedding of texts[i]."""
        ...


def normalize_rows(x: Any) -> npt.NDArray[np.float32]:
    """`x` as an (n, d) float32 array of unit rows: every backend ends with this, so the
    protocol's promise (inner product == cosine) holds whatever the library returned."""
    import numpy as np

    arr = np.asarray(x, dtype=np.float32)
    if arr.ndim != 2:
        arr = arr.reshape(len(arr), -1)
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    return (arr / np.maximum(norms, 1e-12)).astype(np.float32)


def get_encoder(cfg: SemanticConfig) -> Encoder:
    """The encoder `cfg` describes, wrapped in the on-disk embedding cache.

    Raises ConfigError for an unknown backend, a model folder that does not exist, or a backend
    that cannot run on the requested device; MissingDependencyError when the default model
    package (or a backend's library) is not installed.
    """
    from dedup_audit.encoders.cache import CachedEncoder, default_cache_dir
    from dedup_audit.encoders.factory import build_encoder

    cache_dir = default_cache_dir(cfg.cache_dir)
    inner = build_encoder(cfg, cache_dir=cache_dir)
    return CachedEncoder(inner, cache_dir)


__all__ = ["BACKENDS", "CPU_DEFAULT_BACKEND", "Encoder", "get_encoder", "normalize_rows"]
