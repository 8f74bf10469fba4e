"""The torch backend: sentence-transformers fp32, the reference every other backend is measured
against and the only one that runs on CUDA."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from dedup_audit.encoders import normalize_rows
from dedup_audit.encoders.model_source import ModelSource, ensure_offline
from dedup_audit.errors import MissingDependencyError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt


class TorchEncoder:
    """sentence-transformers fp32: the reference backend, and the one that runs on CUDA."""

    def __init__(self, source: ModelSource, *, device: str, max_seq_length: int) -> None:
        self.source = source
        self.device = device
        self.max_seq_length = max_seq_length
        self._model: Any = None

    @property
    def name(self) -> str:
        return f"{self.source.identity}|torch|{self.max_seq_length}"

    def _load(self) -> Any:
        if self._model is None:
            ensure_offline()
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:
                raise MissingDependencyError(
                    "semantic detection needs sentence-transformers: pip install sentence-transformers"
                ) from exc
            self._model = SentenceTransformer(
                str(self.source.path), device=self.device, local_files_only=True
            )
            self._model.max_seq_length = self.max_seq_length
        return self._model

    def encode(
        self, texts: Sequence[str], *, batch_size: int, progress: bool
    ) -> npt.NDArray[np.float32]:
        import sys

        import numpy as np

        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        model = self._load()
        emb = model.encode(
            list(texts),
            batch_size=batch_size,
            show_progress_bar=progress and sys.stderr.isatty(),
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        return normalize_rows(emb)
