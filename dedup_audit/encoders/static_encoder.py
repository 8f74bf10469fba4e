"""The static backend: a model2vec embedding table distilled locally from the model (token
vectors averaged, no attention). Orders of magnitude faster than the transformer backends, but its
cosines are not comparable to theirs (see benchmarks/README.md, "Semantic: embedding speed")."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dedup_audit.encoders import normalize_rows
from dedup_audit.encoders.artifacts import artifact_dir, build_once
from dedup_audit.encoders.model_source import ModelSource, ensure_offline, pooling_mode
from dedup_audit.errors import MissingDependencyError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt


def _distill_static(source: ModelSource, out: Path) -> None:
    ensure_offline()
    try:
        from model2vec.distill import distill_from_model
    except ImportError as exc:
        raise MissingDependencyError(
            "the static backend needs model2vec's distiller: pip install model2vec skeletoken "
            "(or use --backend onnx-int8 / torch)"
        ) from exc
    from transformers import AutoModel, AutoTokenizer

    pooling_mode(source.path)  # rejects module stacks a static table cannot imitate
    model = AutoModel.from_pretrained(str(source.path), local_files_only=True)
    tok = AutoTokenizer.from_pretrained(str(source.path), local_files_only=True)
    # model2vec is an optional extra: typed where installed, untyped (Any) where not
    static = distill_from_model(model=model, tokenizer=tok, pca_dims=256, device="cpu")  # type: ignore[arg-type, unused-ignore]
    static.save_pretrained(str(out / "model"))
    meta = {"identity": source.identity, "pca_dims": 256}
    (out / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True), encoding="utf-8")


class StaticEncoder:
    """A model2vec static embedding table distilled from the model: token vectors averaged, no
    attention. Orders of magnitude faster, but word order is lost (see benchmarks/README.md)."""

    def __init__(self, source: ModelSource, *, cache_dir: Path, max_seq_length: int) -> None:
        self.source = source
        self.cache_dir = cache_dir
        self.max_seq_length = max_seq_length
        self._model: Any = None

    @property
    def name(self) -> str:
        return f"{self.source.identity}|static-pca256|{self.max_seq_length}"

    def _load(self) -> Any:
        if self._model is None:
            folder = build_once(
                artifact_dir(self.cache_dir, self.source, "static-pca256"),
                lambda tmp: _distill_static(self.source, tmp),
            )
            ensure_offline()
            from model2vec import StaticModel

            self._model = StaticModel.from_pretrained(str(folder / "model"))
        return self._model

    def encode(
        self, texts: Sequence[str], *, batch_size: int, progress: bool
    ) -> npt.NDArray[np.float32]:
        import numpy as np

        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        model = self._load()
        emb = model.encode(
            list(texts),
            max_length=self.max_seq_length,
            batch_size=max(batch_size, 1024),
            show_progress_bar=False,
            use_multiprocessing=False,
        )
        return normalize_rows(emb)
