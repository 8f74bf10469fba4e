"""Exact and MinHash near duplicates of one view, from sketches: the engine's core algorithm.

    normalised texts -> sketches (exact hash, shingles, signature, band keys)
      -> exact groups (128-bit hash) -> one representative per distinct non-empty text
      -> band candidates between representatives -> exact Jaccard of the shingle sets
      -> Pairs (exact: a star per group; minhash: every verified candidate >= the score floor)

Identical texts are collapsed before banding, so a text repeated 1,000 times costs one
signature and its near pairs are emitted between representatives only (exact edges already
join the copies). Every near pair's score is the exact Jaccard of the two shingle-hash sets
(64-bit hashes: equal to the Jaccard of the shingle strings unless two distinct shingles of a
pair collide, odds about 1e-15 per pair).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from dedup_audit.config import MinHashConfig
from dedup_audit.detect.minhash import lsh_bands, score_floor
from dedup_audit.engine import bands as banding
from dedup_audit.engine.cross import Matches, SketchTable
from dedup_audit.engine.groups import group_by_hash
from dedup_audit.engine.kernels import Sketches, SketchParams, intersect, sketch
from dedup_audit.engine.store import release
from dedup_audit.progress import progress_bar
from dedup_audit.records import PairSet
from dedup_audit.views import shingle_mode

if TYPE_CHECKING:
    import numpy.typing as npt

VERIFY_CHUNK = 50_000
"""Candidate pairs verified per step (bounds the temporary arrays: ~150 MB at 128 slots)."""


def sketch_params(mode: str, cfg: MinHashConfig, *, near: bool = True) -> SketchParams:
    """The sketch parameters a view's config implies (bands tuned for recall at threshold).
    Without near-duplicate detection only exact hashes are needed: no MinHash slots."""
    ngram = cfg.char_ngram if mode == "char" else cfg.ngram
    if not near:
        return SketchParams(mode == "char", ngram, 0, cfg.seed, 0, 1)
    bands, rows = lsh_bands(cfg.threshold, cfg.num_perm)
    return SketchParams(mode == "char", ngram, cfg.num_perm, cfg.seed, bands, rows)


@dataclass
class ViewSketch:
    """A view's sketches, aligned with its records: `row_of[i]` is record i's row in `sketches`
    (-1 for an empty text). Identical texts inside one batch share a row."""

    mode: str
    params: SketchParams
    sketches: Sketches
    row_of: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.row_of)


def sketch_view(
    texts: Sequence[str],
    mode: str,
    cfg: MinHashConfig,
    *,
    threads: int | None = None,
    near: bool = True,
) -> ViewSketch:
    """Sketch one batch of normalised texts, each distinct non-empty text once."""
    params = sketch_params(mode, cfg, near=near)
    first: dict[str, int] = {}
    distinct: list[str] = []
    row_of = np.empty(len(texts), dtype=np.int64)
    for i, text in enumerate(texts):
        if not text:
            row_of[i] = -1
            continue
        row = first.setdefault(text, len(distinct))
        if row == len(distinct):
            distinct.append(text)
        row_of[i] = row
    return ViewSketch(mode, params, sketch(distinct, params, threads=threads), row_of)


@dataclass
class LexicalResult:
    """What the engine found in one view. `pairs` holds exact edges (a star per group) and every
    verified MinHash candidate scoring at least the floor; `candidates` counts LSH proposals."""

    view: str
    shingle: str
    bands: int
    rows: int
    exact_pairs: PairSet = None  # type: ignore[assignment]
    near_pairs: PairSet = None  # type: ignore[assignment]
    candidates: int = 0
    dense_buckets: int = 0
    exact_hash: npt.NDArray[np.uint64] | None = None  # (n, 2) per record; zeros for empty
    table: SketchTable | None = None  # the view's distinct texts, for --save-index
    index_matches: Matches | None = None  # matches against a loaded --index
    index_table: SketchTable | None = None  # the query side of index_matches

    def __post_init__(self) -> None:
        if self.exact_pairs is None:
            self.exact_pairs = PairSet.empty(self.view)
        if self.near_pairs is None:
            self.near_pairs = PairSet.empty(self.view)


def exact_hashes(vs: ViewSketch) -> npt.NDArray[np.uint64]:
    """(n, 2) 128-bit hash per record (0, 0 for an empty text)."""
    out = np.zeros((len(vs.row_of), 2), dtype=np.uint64)
    present = vs.row_of >= 0
    out[present] = vs.sketches.exact[vs.row_of[present]]
    return out


def exact_groups(hashes: npt.NDArray[np.uint64], present: npt.NDArray[np.bool_]) -> list[list[int]]:
    """Records grouped by identical non-empty text (equal 128-bit hash), groups with at least
    two members, in first-occurrence order, members ascending."""
    idx = np.flatnonzero(present).astype(np.int64)
    records, starts = group_by_hash(hashes[idx], idx)
    return [
        records[lo:hi].tolist()
        for lo, hi in zip(starts[:-1].tolist(), starts[1:].tolist(), strict=True)
        if hi - lo > 1
    ]


def find_lexical(
    texts: Sequence[str],
    view: str,
    cfg: MinHashConfig,
    *,
    exact: bool = True,
    near: bool = True,
    threads: int | None = None,
    progress: bool = False,
) -> LexicalResult:
    """Exact and near duplicates among the normalised texts of one view (in memory)."""
    mode = shingle_mode(texts, cfg)
    vs = sketch_view(texts, mode, cfg, threads=threads, near=near)
    return lexical_from_sketch(
        view, vs, cfg, exact=exact, near=near, threads=threads, progress=progress
    )


def lexical_from_sketch(
    view: str,
    vs: ViewSketch,
    cfg: MinHashConfig,
    *,
    exact: bool = True,
    near: bool = True,
    threads: int | None = None,
    progress: bool = False,
) -> LexicalResult:
    """The engine's core over one view's sketches (however they were made: in memory, in
    batches, spilled): exact groups, banding between representatives, verification."""
    params = vs.params
    result = LexicalResult(view, vs.mode, params.bands, params.rows)
    hashes = exact_hashes(vs)
    result.exact_hash = hashes
    present = vs.row_of >= 0
    groups = exact_groups(hashes, present)
    if exact and groups:
        heads = np.fromiter((g[0] for g in groups for _ in g[1:]), np.int64)
        others = np.fromiter((o for g in groups for o in g[1:]), np.int64)
        result.exact_pairs = PairSet.from_arrays(view, "exact", heads, others, np.ones(len(heads)))
    if not near:
        return result
    # one representative per distinct non-empty text with at least one shingle
    is_rep = present.copy()
    for g in groups:
        is_rep[g[1:]] = False
    rep_idx = np.flatnonzero(is_rep)
    rep_rows = vs.row_of[rep_idx]
    counts = vs.sketches.counts
    keep = counts[rep_rows] > 0
    rep_idx, rep_rows = rep_idx[keep], rep_rows[keep]
    if len(rep_idx) < 2:
        return result
    keys = np.asarray(vs.sketches.keys[rep_rows])
    release(vs.sketches.keys)
    bar = None
    if progress:
        from dedup_audit.progress import stage_bar

        bar = stage_bar(total=params.bands, desc=f"lsh[{view}]", unit="band")
    try:
        codes, result.dense_buckets = banding.candidates(keys, progress=bar)
    finally:
        if bar is not None:
            bar.close()
    del keys
    result.candidates = len(codes)
    pairs = verify(
        vs.sketches, rep_rows, codes, score_floor(cfg.threshold), view, threads, progress
    )
    a_idx, b_idx, scores, estimates = pairs
    result.near_pairs = PairSet.from_arrays(
        view, "minhash", rep_idx[a_idx], rep_idx[b_idx], scores, estimates
    )
    return result


def verify(
    sk: Sketches,
    rows: npt.NDArray[np.int64],
    codes: npt.NDArray[np.int64],
    floor: float,
    view: str,
    threads: int | None,
    progress: bool,
) -> tuple[
    npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.float64]
]:
    """Exact Jaccard of each candidate (codes lo * len(rows) + hi of positions into `rows`);
    keeps those >= floor, with their MinHash estimates. Returns (lo, hi, scores, estimates)."""
    offsets = sk.offsets
    keep_lo: list[npt.NDArray[np.int64]] = []
    keep_hi: list[npt.NDArray[np.int64]] = []
    scores: list[npt.NDArray[np.float64]] = []
    estimates: list[npt.NDArray[np.float64]] = []
    n = max(len(rows), 1)
    chunks = range(0, len(codes), VERIFY_CHUNK)
    for start in progress_bar(chunks, desc=f"verify[{view}]", enabled=progress, total=len(chunks)):
        part = codes[start : start + VERIFY_CHUNK]
        clo, chi = part // n, part % n
        rlo, rhi = rows[clo], rows[chi]
        inter = intersect(sk.shingles, offsets, rlo, rhi, threads=threads)
        union = sk.counts[rlo] + sk.counts[rhi] - inter
        ratio = inter / union
        ok = ratio >= floor
        agree = np.count_nonzero(sk.sig[rlo[ok]] == sk.sig[rhi[ok]], axis=1)
        keep_lo.append(clo[ok])
        keep_hi.append(chi[ok])
        scores.append(ratio[ok])
        estimates.append(agree / float(sk.sig.shape[1]))
        release(sk.sig, sk.shingles)
    if not keep_lo:
        empty = np.empty(0, np.int64)
        return empty, empty, np.empty(0), np.empty(0)
    return (
        np.concatenate(keep_lo),
        np.concatenate(keep_hi),
        np.concatenate(scores),
        np.concatenate(estimates),
    )
