"""LSH banding: band keys -> candidate pairs, bucket by bucket, with no per-bucket Python.

Two texts are candidates when they share a band key in at least one band (datasketch's
MinHashLSH rule). A bucket of m members proposes all m(m-1)/2 pairs up to `DENSE_BUCKET`
members; a larger bucket (templated prompts: thousands of rows sharing one long tool
description) is linked as a star from its first member plus a chain of neighbours (2m pairs),
which still joins every member that resembles either, and is counted so the report can say
where pairs were sampled rather than enumerated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

DENSE_BUCKET = 256

_TRIU: dict[int, tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]] = {}


def _triu(size: int) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    if size not in _TRIU:
        _TRIU[size] = np.triu_indices(size, 1)
    return _TRIU[size]


def band_pairs(keys: npt.NDArray[np.uint64]) -> tuple[npt.NDArray[np.int64], int]:
    """Candidate pairs of one band as sorted-unique int64 codes lo * n + hi over positions
    0..n-1 of `keys`, plus the number of dense buckets. A stable sort keeps bucket members in
    ascending position, so lo < hi."""
    n = len(keys)
    if n < 2:
        return np.empty(0, np.int64), 0
    order = np.argsort(keys, kind="stable")
    sk = keys[order]
    starts = np.flatnonzero(np.concatenate(([True], sk[1:] != sk[:-1])))
    sizes = np.diff(np.concatenate((starts, [n])))
    codes: list[npt.NDArray[np.int64]] = []
    dense = 0
    multi = sizes >= 2
    for size in np.unique(sizes[multi]).tolist():
        st = starts[sizes == size]
        if size > DENSE_BUCKET:
            for s in st.tolist():
                members = order[s : s + size].astype(np.int64)
                dense += 1
                codes.append(members[0] * n + members[1:])
                codes.append(members[1:-1] * n + members[2:])
            continue
        i, j = _triu(size)
        lo = order[st[:, None] + i[None, :]].astype(np.int64).ravel()
        hi = order[st[:, None] + j[None, :]].astype(np.int64).ravel()
        codes.append(lo * n + hi)
    if not codes:
        return np.empty(0, np.int64), dense
    return sorted_unique(np.concatenate(codes)), dense


def sorted_unique(x: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """np.unique by sorting (numpy 2's hash-based unique is several times slower on int64)."""
    if len(x) < 2:
        return x
    x = np.sort(x)
    return x[np.concatenate(([True], x[1:] != x[:-1]))]


def candidates(
    keys: npt.NDArray[np.uint64], *, progress: object = None
) -> tuple[npt.NDArray[np.int64], int]:
    """All position pairs (lo < hi) sharing a key in at least one band, as sorted unique codes
    lo * n + hi (8 bytes a candidate: templated data proposes tens of millions), and the
    dense-bucket count. `keys` is (n, bands) for n texts in ascending order."""
    bands = keys.shape[1]
    merged = np.empty(0, np.int64)
    pending: list[npt.NDArray[np.int64]] = []
    held = 0
    dense = 0
    for band in range(bands):
        codes, d = band_pairs(np.ascontiguousarray(keys[:, band]))
        dense += d
        pending.append(codes)
        held += len(codes)
        if held > max(len(merged), MERGE_EVERY):  # bound memory: most bands repeat pairs
            merged = sorted_unique(np.concatenate([merged, *pending]))
            pending, held = [], 0
        if progress is not None:
            progress.update(1)  # type: ignore[attr-defined]
    if pending:
        merged = sorted_unique(np.concatenate([merged, *pending]))
    return merged, dense


MERGE_EVERY = 4_000_000
"""Candidate codes held from several bands before they are merged into the sorted set."""
