"""k-nearest-neighbour search over unit vectors (inner product == cosine) with FAISS.

Index choice (see benchmarks/README.md, "FAISS recall"):

- up to `FLAT_MAX_VECTORS` vectors: exact search (IndexFlatIP). Exact kNN over 50k x 384 floats
  is a few seconds on 2 cores, so small and medium datasets never trade recall for speed.
- above it: HNSW (IndexHNSWFlat, inner product, M=32, efSearch >= 128), whose recall@k against
  flat is measured in benchmarks/faiss_recall.py.
- with faiss GPU support and a visible GPU: flat search on the GPU at every size (brute force on a
  GPU beats HNSW well past a million vectors and stays exact).

Search results are returned as plain (i, j, cosine) triples so detectors stay index-agnostic.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from dedup_audit.errors import MissingDependencyError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

FLAT_MAX_VECTORS = 50_000
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128
_QUERY_BATCH = 4096


def _faiss() -> Any:
    try:
        import faiss
    except ImportError as exc:
        raise MissingDependencyError(
            "semantic detection needs FAISS: pip install faiss-cpu (or faiss-gpu on CUDA hosts)"
        ) from exc
    return faiss


def gpu_available(faiss: Any) -> bool:
    """True when this faiss build has GPU support and sees at least one GPU."""
    try:
        return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0
    except Exception:
        return False


def choose_kind(n: int, kind: str = "auto", *, gpu: bool = False) -> str:
    """'flat' or 'hnsw' for `n` base vectors (see the module docstring for the rule)."""
    if kind != "auto":
        return kind
    if gpu:
        return "flat"
    return "flat" if n <= FLAT_MAX_VECTORS else "hnsw"


def build_index(base: npt.NDArray[np.float32], kind: str = "auto") -> Any:
    """An index over `base` (unit rows). kind: auto | flat | hnsw."""
    import numpy as np

    faiss = _faiss()
    base = np.ascontiguousarray(base, dtype=np.float32)
    d = base.shape[1]
    gpu = gpu_available(faiss)
    kind = choose_kind(len(base), kind, gpu=gpu)
    if kind == "flat":
        index = faiss.IndexFlatIP(d)
        if gpu:
            res = faiss.StandardGpuResources()
            index = faiss.index_cpu_to_gpu(res, 0, index)
            index.referenced_resources = res  # keep the resources alive with the index
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(d, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    else:
        raise ValueError(f"unknown index kind {kind!r}")
    index.add(base)
    return index


def search(
    index: Any, queries: npt.NDArray[np.float32], k: int
) -> Iterator[tuple[int, npt.NDArray[np.float32], npt.NDArray[np.int64]]]:
    """(first query row, scores, ids) per batch of queries; ids are -1 where fewer than k exist."""
    import numpy as np

    queries = np.ascontiguousarray(queries, dtype=np.float32)
    k = max(1, min(k, index.ntotal))
    if hasattr(index, "hnsw"):
        index.hnsw.efSearch = max(HNSW_EF_SEARCH, 2 * k)
    for start in range(0, len(queries), _QUERY_BATCH):
        scores, ids = index.search(queries[start : start + _QUERY_BATCH], k)
        yield start, scores, ids


def knn_self(
    emb: npt.NDArray[np.float32], k: int, min_score: float, *, kind: str = "auto"
) -> list[tuple[int, int, float]]:
    """Pairs (i, j, cosine) with i < j, j among i's k nearest neighbours (itself excluded) or
    vice versa, cosine >= min_score; each pair once with its best score, sorted by (i, j)."""
    if len(emb) < 2:
        return []
    index = build_index(emb, kind)
    best: dict[tuple[int, int], float] = {}
    # k + 1: the query itself is normally its own first neighbour.
    for start, scores, ids in search(index, emb, k + 1):
        for row in range(len(ids)):
            i = start + row
            for s, j in zip(scores[row].tolist(), ids[row].tolist(), strict=True):
                if j < 0 or j == i or s < min_score:
                    continue
                key = (i, j) if i < j else (j, i)
                if s > best.get(key, -2.0):
                    best[key] = s
    return [(a, b, best[(a, b)]) for a, b in sorted(best)]


def knn_cross(
    queries: npt.NDArray[np.float32],
    base: npt.NDArray[np.float32],
    k: int,
    min_score: float,
    *,
    kind: str = "auto",
) -> list[tuple[int, int, float]]:
    """(query row, base row, cosine) for each query's k nearest base vectors with cosine >=
    min_score, sorted by (query, base)."""
    if len(queries) == 0 or len(base) == 0:
        return []
    index = build_index(base, kind)
    out: list[tuple[int, int, float]] = []
    for start, scores, ids in search(index, queries, k):
        for row in range(len(ids)):
            for s, j in zip(scores[row].tolist(), ids[row].tolist(), strict=True):
                if j >= 0 and s >= min_score:
                    out.append((start + row, j, s))
    return sorted(out)
