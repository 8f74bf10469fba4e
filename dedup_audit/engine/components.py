"""Connected components of duplicate edges: scipy on one machine, or large-star/small-star
(Kiveris et al., "Connected Components in MapReduce and Beyond", 2014) as per-partition
functions that a distributed engine runs round after round.

Both give every node the smallest node of its component as its label, so which one ran never
shows in the clusters (`clusters.build_clusters` numbers clusters by their smallest member).

A round is `large_star_block` on the edges grouped by node (both directions), then
`small_star_block` on the edges grouped by their larger end; the edge set stops changing
exactly when every component is a star around its smallest node (O(log n) rounds).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

if TYPE_CHECKING:
    import numpy.typing as npt

EDGES = pa.schema([("u", pa.int64()), ("v", pa.int64())])


def scipy_labels(
    a: npt.NDArray[np.int64], b: npt.NDArray[np.int64], n: int
) -> npt.NDArray[np.int64]:
    """Per node 0..n-1, the smallest node of its component (one machine, scipy)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(a), np.int8), (a, b)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    smallest = np.full(labels.max() + 1 if n else 0, n, np.int64)
    np.minimum.at(smallest, labels, np.arange(n, dtype=np.int64))
    return smallest[labels]


def _table(u: npt.NDArray[np.int64], v: npt.NDArray[np.int64]) -> pa.Table:
    return pa.table({"u": pa.array(u, pa.int64()), "v": pa.array(v, pa.int64())}, schema=EDGES)


def both_directions(block: pa.Table) -> pa.Table:
    """Edges (u, v) -> (u, v) and (v, u), self-loops dropped: keyed by either end."""
    u = np.asarray(block["u"], np.int64)
    v = np.asarray(block["v"], np.int64)
    ok = u != v
    u, v = u[ok], v[ok]
    return _table(np.concatenate([u, v]), np.concatenate([v, u]))


def larger_end(block: pa.Table) -> pa.Table:
    """Edges -> keyed by their larger end (u > v), self-loops dropped."""
    u = np.asarray(block["u"], np.int64)
    v = np.asarray(block["v"], np.int64)
    ok = u != v
    return _table(np.maximum(u, v)[ok], np.minimum(u, v)[ok])


def _groups(
    u: npt.NDArray[np.int64], v: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Distinct edges sorted by (u, v), and per edge the smallest of u and u's neighbours."""
    if not len(u):
        return u, v, u
    pairs = np.unique(np.stack([u, v], axis=1), axis=0)
    u, v = pairs[:, 0], pairs[:, 1]
    starts = np.flatnonzero(np.concatenate(([True], u[1:] != u[:-1])))
    low = np.minimum(np.minimum.reduceat(v, starts), u[starts])
    return u, v, np.repeat(low, np.diff(np.concatenate((starts, [len(u)]))))


def large_star_block(block: pa.Table) -> pa.Table:
    """[all edges of each node u, both directions] -> (v, m(u)) for every neighbour v > u,
    m(u) the smallest of u and its neighbours."""
    u, v, low = _groups(np.asarray(block["u"], np.int64), np.asarray(block["v"], np.int64))
    big = v > u
    return _table(v[big], low[big])


def small_star_block(block: pa.Table) -> pa.Table:
    """[edges keyed by their larger end u] -> (x, m(u)) for u and each smaller neighbour x,
    m(u) the smallest of them (self-loops dropped)."""
    u, v, low = _groups(np.asarray(block["u"], np.int64), np.asarray(block["v"], np.int64))
    if not len(u):
        return _table(u, v)
    first = np.concatenate(([True], u[1:] != u[:-1]))
    x = np.concatenate([v, u[first]])
    m = np.concatenate([low, low[first]])
    ok = x != m
    return _table(x[ok], m[ok])


def checksum_block(block: pa.Table) -> pa.Table:
    """[all edges of each node, both directions] -> one row: (distinct undirected edges, a
    64-bit sum of their hashes). Each edge is counted at its smaller end only."""
    u, v, _ = _groups(np.asarray(block["u"], np.int64), np.asarray(block["v"], np.int64))
    keep = u < v
    mixed = (u[keep].astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) ^ (
        v[keep].astype(np.uint64) * np.uint64(0xC2B2AE3D27D4EB4F)
    )
    total = int(mixed.sum(dtype=np.uint64)) if len(mixed) else 0
    return pa.table(
        {"edges": pa.array([int(keep.sum())], pa.int64()), "hash": pa.array([total], pa.uint64())}
    )


def labels_from_stars(
    u: npt.NDArray[np.int64], v: npt.NDArray[np.int64], n: int
) -> npt.NDArray[np.int64]:
    """Per node 0..n-1, its label once the edges are stars around each component's smallest
    node (isolated nodes label themselves)."""
    labels = np.arange(n, dtype=np.int64)
    lo, hi = np.minimum(u, v), np.maximum(u, v)
    np.minimum.at(labels, hi, lo)
    return labels


def local_labels(
    a: npt.NDArray[np.int64], b: npt.NDArray[np.int64], n: int, *, max_rounds: int = 200
) -> npt.NDArray[np.int64]:
    """large-star/small-star in one process, one partition: the reference for the adapters."""
    edges = _table(a, b)
    seen = None
    for _ in range(max_rounds):
        grouped = both_directions(edges)
        mark = checksum_block(grouped).to_pylist()[0]
        if mark == seen:
            break
        seen = mark
        edges = small_star_block(larger_end(large_star_block(grouped)))
    return labels_from_stars(np.asarray(edges["u"]), np.asarray(edges["v"]), n)
