"""Grouping records by identical text (equal 128-bit hash), the way every engine step wants it:
groups in order of their first record, members ascending."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt


def group_by_hash(
    hashes: npt.NDArray[np.uint64], idx: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(records, starts): record ids `idx` (with `hashes[k]` the (h0, h1) hash of `idx[k]`)
    grouped by equal hash; group g is records[starts[g]:starts[g + 1]]. One lexsort, no Python
    loop per record."""
    if not len(idx):
        return np.empty(0, np.int64), np.zeros(1, np.int64)
    order = np.lexsort((idx, hashes[:, 1], hashes[:, 0]))
    sh = hashes[order]
    new = np.concatenate(([True], np.any(sh[1:] != sh[:-1], axis=1)))
    group = np.cumsum(new) - 1
    sorted_idx = idx[order]
    firsts = sorted_idx[new]
    rank = np.argsort(firsts, kind="stable")  # groups in order of their first record
    pos = np.empty_like(rank)
    pos[rank] = np.arange(len(rank))
    g = pos[group]
    records = sorted_idx[np.lexsort((sorted_idx, g))].astype(np.int64)
    counts = np.bincount(g, minlength=len(rank))
    return records, np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
