"""Matching one corpus against another with the same sketches and banding: `--against`
reference sets and `--index` (an older corpus saved with `--save-index`).

A `SketchTable` (from `table_from_view`) holds the sketches of one side's distinct texts (one row per distinct text)
plus which records each row stands for. Matching joins the query's band keys against the
other side's (sorted once, then `searchsorted` per band: no hash tables, no per-record
Python), verifies every candidate by exact Jaccard of the shingle sets, and joins exact hashes
the same way. A pair exactly at the threshold is a candidate with probability >= 0.98, the
same banding as deduplication inside one corpus.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from dedup_audit.engine.bands import DENSE_BUCKET, sorted_unique
from dedup_audit.engine.groups import group_by_hash
from dedup_audit.engine.kernels import Sketches, SketchParams, intersect

if TYPE_CHECKING:
    import numpy.typing as npt

_PAIR = np.dtype([("h0", "<u8"), ("h1", "<u8")])


@dataclass
class SketchTable:
    """Distinct texts of one side: table row r is sketch `rows[r]` of `sketches` and stands for
    records `records[starts[r]:starts[r + 1]]` (ascending). Rows with no shingles take part in
    exact matching only. `rows` avoids copying a spilled store: the table only points into it."""

    params: SketchParams
    sketches: Sketches
    rows: npt.NDArray[np.int64]
    records: npt.NDArray[np.int64]
    starts: npt.NDArray[np.int64]

    def exact(self) -> npt.NDArray[np.uint64]:
        return np.asarray(self.sketches.exact)[self.rows]

    def counts(self) -> npt.NDArray[np.int64]:
        return self.sketches.counts[self.rows]

    def compact(self) -> SketchTable:
        """The same table with its own contiguous sketches (what an index file stores)."""
        return SketchTable(
            self.params,
            _take(self.sketches, self.rows),
            np.arange(len(self.rows), dtype=np.int64),
            self.records,
            self.starts,
        )

    def __len__(self) -> int:
        return len(self.starts) - 1

    def members(self, row: int) -> list[int]:
        return self.records[self.starts[row] : self.starts[row + 1]].tolist()


def gather(
    flat: npt.NDArray[np.uint64], offsets: npt.NDArray[np.int64], rows: npt.NDArray[np.int64]
) -> npt.NDArray[np.uint64]:
    """The variable-length slices flat[offsets[r]:offsets[r + 1]] of `rows`, concatenated."""
    lengths = offsets[rows + 1] - offsets[rows]
    out = np.empty(int(lengths.sum()), np.uint64)
    pos = 0
    step = 65_536
    for s in range(0, len(rows), step):
        ln = lengths[s : s + step]
        total = int(ln.sum())
        start = np.repeat(offsets[rows[s : s + step]], ln)
        within = np.arange(total) - np.repeat(np.cumsum(ln) - ln, ln)
        out[pos : pos + total] = np.asarray(flat)[start + within] if total else out[:0]
        pos += total
    return out


def _take(sk: Sketches, rows: npt.NDArray[np.int64]) -> Sketches:
    rows = np.asarray(rows, np.int64)
    if len(rows) == len(sk) and np.array_equal(rows, np.arange(len(rows))):
        return sk
    return Sketches(
        np.asarray(sk.exact)[rows],
        sk.counts[rows],
        np.asarray(sk.sig)[rows],
        np.asarray(sk.keys)[rows],
        gather(sk.shingles, sk.offsets, rows),
    )


def table_from_view(
    params: SketchParams, sketches: Sketches, row_of: npt.NDArray[np.int64]
) -> SketchTable:
    """A SketchTable of one view's sketches: one row per distinct non-empty text."""
    present = np.flatnonzero(row_of >= 0).astype(np.int64)
    records, starts = group_by_hash(np.asarray(sketches.exact)[row_of[present]], present)
    rows = row_of[records[starts[:-1]]].astype(np.int64)
    return SketchTable(params, sketches, rows, records, starts)


@dataclass
class Matches:
    """Row pairs (query row, other row) with a score: exact (1.0) or verified Jaccard."""

    query: npt.NDArray[np.int64]
    other: npt.NDArray[np.int64]
    score: npt.NDArray[np.float64]
    estimate: npt.NDArray[np.float64]
    exact: npt.NDArray[np.bool_]


def exact_matches(
    query: SketchTable, other: SketchTable
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(query row, other row) with identical text (equal 128-bit hash)."""
    if not len(query) or not len(other):
        e = np.empty(0, np.int64)
        return e, e
    ok = np.ascontiguousarray(other.exact()).view(_PAIR).ravel()
    qk = np.ascontiguousarray(query.exact()).view(_PAIR).ravel()
    order = np.argsort(ok, kind="stable")
    sorted_ok = ok[order]
    pos = np.searchsorted(sorted_ok, qk)
    pos_c = np.minimum(pos, len(sorted_ok) - 1)
    hit = sorted_ok[pos_c] == qk
    return np.flatnonzero(hit).astype(np.int64), order[pos_c[hit]].astype(np.int64)


def band_matches(
    query: SketchTable, other: SketchTable
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(query row, other row) sharing a band key in at least one band; an `other` bucket with
    more than DENSE_BUCKET members contributes its first DENSE_BUCKET members."""
    qrows = np.flatnonzero(query.counts() > 0)
    orows = np.flatnonzero(other.counts() > 0)
    if not len(qrows) or not len(orows):
        e = np.empty(0, np.int64)
        return e, e
    n_other = len(other)
    codes: list[npt.NDArray[np.int64]] = []
    okeys_all = np.asarray(other.sketches.keys)[other.rows[orows]]
    qkeys_all = np.asarray(query.sketches.keys)[query.rows[qrows]]
    for band in range(query.params.bands):
        okeys = okeys_all[:, band]
        order = np.argsort(okeys, kind="stable")
        sk = okeys[order]
        qk = qkeys_all[:, band]
        left = np.searchsorted(sk, qk, side="left")
        right = np.searchsorted(sk, qk, side="right")
        count = np.minimum(right - left, DENSE_BUCKET)
        total = int(count.sum())
        if not total:
            continue
        q = np.repeat(qrows, count)
        within = np.arange(total) - np.repeat(np.cumsum(count) - count, count)
        o = orows[order[np.repeat(left, count) + within]]
        codes.append(q.astype(np.int64) * n_other + o)
    if not codes:
        e = np.empty(0, np.int64)
        return e, e
    merged = sorted_unique(np.concatenate(codes))
    return merged // n_other, merged % n_other


def match(
    query: SketchTable, other: SketchTable, floor: float, *, threads: int | None = None
) -> Matches:
    """Exact matches plus every band candidate verified at Jaccard >= floor (rows that are
    exact matches are not repeated as near matches)."""
    eq, eo = exact_matches(query, other)
    bq, bo = band_matches(query, other)
    if len(eq):
        exact_codes = eq * len(other) + eo
        keep = ~np.isin(bq * len(other) + bo, exact_codes)
        bq, bo = bq[keep], bo[keep]
    qs, os_ = query.sketches, other.sketches
    sq, so = query.rows[bq], other.rows[bo]
    inter = intersect(
        qs.shingles, qs.offsets, sq, so, other=(os_.shingles, os_.offsets), threads=threads
    )
    union = qs.counts[sq] + os_.counts[so] - inter
    ratio = np.where(union > 0, inter / np.maximum(union, 1), 0.0)
    ok = ratio >= floor
    bq, bo, ratio, sq, so = bq[ok], bo[ok], ratio[ok], sq[ok], so[ok]
    agree = np.count_nonzero(np.asarray(qs.sig)[sq] == np.asarray(os_.sig)[so], axis=1)
    est = agree / float(max(qs.sig.shape[1], 1))
    return Matches(
        np.concatenate([eq, bq]),
        np.concatenate([eo, bo]),
        np.concatenate([np.ones(len(eq)), ratio]),
        np.concatenate([np.ones(len(eq)), est]),
        np.concatenate([np.ones(len(eq), bool), np.zeros(len(bq), bool)]),
    )
