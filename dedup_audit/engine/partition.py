"""The lexical algorithm as pure per-partition functions: Arrow tables in, Arrow tables out.

Every distributed engine is a thin adapter that moves tables between these functions (the Ray
adapter in `ray_engine`; the same functions run in-process in the tests against the local
engine). Each function is a pure function of its input table: hashing is the engine's fixed
scheme (`kernels.sketch`, seeded), every key is an int64 record index or a uint64 hash, and no
output depends on how rows were split into partitions, except where a docstring says the
partition must hold whole groups (a hash shuffle on the named key guarantees that).

The steps, per view (the same as `lexical.lexical_from_sketch` does in one process):

    view_texts       raw rows -> (row, normalised text per view)
    sketch_block     (row, text) -> (row, h0, h1, count, keys, sig, shingles)
    exact_block      [whole hash groups] -> (row, rep): each record's representative
    band_rows        sketches -> (band, key, row, h0, h1) for a group of bands
    bucket_block     [whole buckets] -> representatives -> candidate (lo, hi), the local
                     engine's bucket rule
    attach_block     [candidates + payload, by lo] -> candidates keyed by hi carrying lo's payload
    verify_block     [those + payload, by hi] -> (a, b, score, estimate) >= the score floor
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from dedup_audit.config import NormalizeConfig
from dedup_audit.engine.bands import band_pairs
from dedup_audit.engine.groups import group_by_hash
from dedup_audit.engine.kernels import SketchParams, intersect, sketch

if TYPE_CHECKING:
    import numpy.typing as npt

PAYLOAD = pa.schema(
    [
        ("key", pa.int64()),
        ("partner", pa.int64()),  # -1: a payload row (the sketch of record `key`)
        ("count", pa.int64()),
        ("sig", pa.list_(pa.uint32())),
        ("shingles", pa.list_(pa.uint64())),
    ]
)
"""Rows of the verification joins: a candidate (key, partner) or the payload of record key."""

PAIRS = pa.schema(
    [("a", pa.int64()), ("b", pa.int64()), ("score", pa.float64()), ("estimate", pa.float64())]
)
CANDIDATES = pa.schema([("lo", pa.int64()), ("hi", pa.int64())])
DENSE_MARK = -1
"""`bucket_block` reports its dense-bucket count as one row (lo = DENSE_MARK, hi = count)."""


def _list_values(col: Any, dtype: Any) -> tuple[npt.NDArray[Any], npt.NDArray[np.int64]]:
    """(flat values, offsets) of a list column (chunks combined; nulls are empty lists)."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if len(arr) == 0:
        return np.empty(0, dtype), np.zeros(1, np.int64)
    offsets = np.asarray(arr.offsets, dtype=np.int64)
    values = np.asarray(arr.values, dtype=dtype) if len(arr.values) else np.empty(0, dtype)
    return values[offsets[0] : offsets[-1]], offsets - offsets[0]


def _list_array(values: npt.NDArray[Any], offsets: npt.NDArray[np.int64], typ: Any) -> pa.Array:
    return pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), pa.array(values, typ))


def _fixed(values: npt.NDArray[Any], width: int, typ: Any) -> pa.Array:
    """(n, width) matrix -> a list column with `width` items per row."""
    n = values.shape[0]
    offsets = np.arange(n + 1, dtype=np.int64) * width
    return _list_array(values.reshape(-1), offsets, typ)


def _np(col: Any, dtype: Any) -> npt.NDArray[Any]:
    return np.asarray(col.to_numpy() if isinstance(col, pa.ChunkedArray) else col, dtype=dtype)


# --- reading -------------------------------------------------------------------------------


def view_texts(
    rows: Sequence[Mapping[str, Any]],
    first_row: int,
    spec: Any,
    views: Sequence[str],
    normalize_cfg: NormalizeConfig,
    where: str,
) -> pa.Table:
    """Texts of raw rows (the first has record index `first_row`), as `samples_texts`."""
    from dedup_audit.formats import build_sample

    samples = [build_sample(r, spec, f"{where}:{first_row + k}") for k, r in enumerate(rows)]
    return samples_texts(samples, first_row, views, normalize_cfg)


def samples_texts(
    samples: Sequence[Any], first_row: int, views: Sequence[str], normalize_cfg: NormalizeConfig
) -> pa.Table:
    """(row, one normalised text column per view, first_turn_differs): what the local engine
    builds per batch before sketching."""
    from dedup_audit.views import normalize_many, view_text

    cols: dict[str, Any] = {"row": pa.array(np.arange(first_row, first_row + len(samples)))}
    texts: dict[str, list[str]] = {}
    for view in views:
        texts[view] = normalize_many([view_text(s, view) for s in samples], normalize_cfg)
        cols[view] = pa.array(texts[view], pa.string())
    if "first_turn" in views and "prompt" in views:
        differs = [a != b for a, b in zip(texts["first_turn"], texts["prompt"], strict=True)]
        cols["first_turn_differs"] = pa.array(differs, pa.bool_())
    return pa.table(cols)


def parse_jsonl(data: bytes, where: str, first_row: int = 0) -> list[dict[str, Any]]:
    """The rows of a slice of a JSON Lines file (blank lines skipped, as the readers do); a
    bad line is an InputError naming the file and the record's row (1-based, as reports)."""
    from dedup_audit.readers.jsonio import parse_json_lines

    lines = [line for line in data.split(b"\n") if line.strip()]
    texts = [line.decode("utf-8") for line in lines]
    return parse_json_lines(texts, lambda k: f"{where}: row {first_row + k + 1}")


# --- sketching and exact groups ------------------------------------------------------------


def sketch_block(texts: pa.Table, view: str, params: SketchParams) -> pa.Table:
    """(row, text) -> one sketch row per non-empty text: (row, h0, h1, count, keys, sig,
    shingles). Identical texts of the block are sketched once (a pure saving)."""
    rows = _np(texts["row"], np.int64)
    strings = texts[view].to_pylist()
    first: dict[str, int] = {}
    distinct: list[str] = []
    keep = np.zeros(len(strings), bool)
    pos = np.empty(len(strings), np.int64)
    for i, text in enumerate(strings):
        if not text:
            continue
        keep[i] = True
        at = first.setdefault(text, len(distinct))
        if at == len(distinct):
            distinct.append(text)
        pos[i] = at
    sk = sketch(distinct, params, threads=1)
    pos = pos[keep]
    offsets = sk.offsets
    sizes = sk.counts[pos]
    starts = offsets[pos]
    flat_off = np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)
    idx = (
        np.repeat(starts - flat_off[:-1], sizes) + np.arange(flat_off[-1])
        if flat_off[-1]
        else np.empty(0, np.int64)
    )
    return pa.table(
        {
            "row": pa.array(rows[keep]),
            "h0": pa.array(sk.exact[pos, 0]),
            "h1": pa.array(sk.exact[pos, 1]),
            "count": pa.array(sizes.astype(np.int64)),
            "keys": _fixed(sk.keys[pos], params.bands, pa.uint64()),
            "sig": _fixed(sk.sig[pos], params.num_perm, pa.uint32()),
            "shingles": _list_array(sk.shingles[idx], flat_off, pa.uint64()),
        }
    )


def exact_block(block: pa.Table) -> pa.Table:
    """[whole groups of equal (h0, h1)] -> (row, rep): every record with its group's
    representative, its smallest row (the local engine's first member of the group). Only the
    hashes travel: sketches stay where they are (see `bucket_block`)."""
    rows = _np(block["row"], np.int64)
    hashes = np.stack([_np(block["h0"], np.uint64), _np(block["h1"], np.uint64)], axis=1)
    recs, starts = group_by_hash(hashes, rows)  # members ascending by row
    reps = np.repeat(recs[starts[:-1]], np.diff(starts))
    return pa.table({"row": pa.array(recs, pa.int64()), "rep": pa.array(reps, pa.int64())})


def exact_pairs(exact: pa.Table) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(rep, row) of every record that repeats an earlier identical text, sorted: the local
    engine's star per group."""
    rows, reps = _np(exact["row"], np.int64), _np(exact["rep"], np.int64)
    dup = rows != reps
    a, b = reps[dup], rows[dup]
    order = np.lexsort((b, a))
    return a[order], b[order]


# --- banding -------------------------------------------------------------------------------


def band_rows(sketches: pa.Table, bands: range) -> pa.Table:
    """Sketches with at least one shingle -> (band, key, row, h0, h1) for the given bands."""
    ok = _np(sketches["count"], np.int64) > 0
    rows = _np(sketches["row"], np.int64)[ok]
    picked = list(bands)
    keys_flat, _ = _list_values(sketches["keys"].filter(pa.array(ok)), np.uint64)
    keys = keys_flat.reshape(len(rows), -1) if len(rows) else np.empty((0, 1), np.uint64)
    times = len(picked)
    return pa.table(
        {
            "band": pa.array(np.repeat(np.asarray(picked, np.int32), len(rows)), pa.int32()),
            "key": pa.array(keys[:, picked].T.reshape(-1) if len(rows) else [], pa.uint64()),
            "row": pa.array(np.tile(rows, times), pa.int64()),
            "h0": pa.array(np.tile(_np(sketches["h0"], np.uint64)[ok], times), pa.uint64()),
            "h1": pa.array(np.tile(_np(sketches["h1"], np.uint64)[ok], times), pa.uint64()),
        }
    )


def bucket_block(block: pa.Table) -> pa.Table:
    """[whole buckets of equal (band, key)] -> candidate pairs (lo < hi, record indices) by the
    local engine's rule (`bands.band_pairs`: every pair up to DENSE_BUCKET members, a star from
    the smallest row plus a chain above), and one DENSE_MARK row counting dense buckets.

    Each bucket is first linked to representatives: identical texts (equal h0, h1) share every
    band key, so a bucket holding a copy also holds the group's smallest row, and keeping only
    that row per text leaves exactly the representatives the local engine bands."""
    band = _np(block["band"], np.int32)
    key = _np(block["key"], np.uint64)
    rows = _np(block["row"], np.int64)
    h0, h1 = _np(block["h0"], np.uint64), _np(block["h1"], np.uint64)
    los: list[npt.NDArray[np.int64]] = []
    his: list[npt.NDArray[np.int64]] = []
    dense = 0
    for b in np.unique(band).tolist():
        sel = np.flatnonzero(band == b)
        order = sel[np.lexsort((rows[sel], h1[sel], h0[sel]))]
        first = np.concatenate(
            ([True], (h0[order][1:] != h0[order][:-1]) | (h1[order][1:] != h1[order][:-1]))
        )
        reps = order[first]
        reps = reps[np.argsort(rows[reps], kind="stable")]  # ascending rows, as in one process
        r, k = rows[reps], key[reps]
        codes, d = band_pairs(k)
        dense += d
        n = max(len(r), 1)
        los.append(r[codes // n])
        his.append(r[codes % n])
    lo = np.concatenate([*los, [DENSE_MARK]]).astype(np.int64)
    hi = np.concatenate([*his, [dense]]).astype(np.int64)
    return pa.table({"lo": pa.array(lo), "hi": pa.array(hi)})


# --- verification --------------------------------------------------------------------------


def payload_rows(sketches: pa.Table) -> pa.Table:
    """Sketches with at least one shingle, as payload rows keyed by their record (copies of a
    text come along; no candidate names them, so no join looks them up)."""
    ok = _np(sketches["count"], np.int64) > 0
    mask = pa.array(ok)
    n = int(ok.sum())
    return pa.table(
        {
            "key": pa.array(_np(sketches["row"], np.int64)[ok]),
            "partner": pa.array(np.full(n, -1, np.int64)),
            "count": sketches["count"].filter(mask),
            "sig": sketches["sig"].filter(mask),
            "shingles": sketches["shingles"].filter(mask),
        },
        schema=PAYLOAD,
    )


def candidate_rows(candidates: pa.Table) -> pa.Table:
    """Candidate pairs (not dense marks) as join rows keyed by lo, without payload."""
    lo = _np(candidates["lo"], np.int64)
    ok = lo != DENSE_MARK
    n = int(ok.sum())
    return pa.table(
        {
            "key": pa.array(lo[ok]),
            "partner": pa.array(_np(candidates["hi"], np.int64)[ok]),
            "count": pa.nulls(n, pa.int64()),
            "sig": pa.nulls(n, pa.list_(pa.uint32())),
            "shingles": pa.nulls(n, pa.list_(pa.uint64())),
        },
        schema=PAYLOAD,
    )


def _split(block: pa.Table) -> tuple[pa.Table, npt.NDArray[np.int64], pa.Table]:
    """(payload rows sorted by key, their keys, candidate rows) of a join block."""
    partner = _np(block["partner"], np.int64)
    payload = block.filter(pa.array(partner == -1))
    keys = _np(payload["key"], np.int64)
    order = np.argsort(keys, kind="stable")
    return payload.take(pa.array(order)), keys[order], block.filter(pa.array(partner != -1))


def _find(keys: npt.NDArray[np.int64], wanted: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Positions of `wanted` in the sorted `keys` (every wanted key is there: a candidate's
    records are representatives with shingles, and their payload rows share its partition)."""
    at = np.searchsorted(keys, wanted)
    if len(wanted) and (at.max() >= len(keys) or not np.array_equal(keys[at], wanted)):
        raise ValueError("a candidate's record has no sketch in its partition")
    return at.astype(np.int64)


def attach_block(block: pa.Table) -> pa.Table:
    """[candidates and payload rows, all rows of a key together, keyed by lo] -> each distinct
    candidate keyed by hi (partner = lo) and carrying lo's payload."""
    payload, keys, cands = _split(block)
    lo = _np(cands["key"], np.int64)
    hi = _np(cands["partner"], np.int64)
    if len(lo):
        code = np.stack([lo, hi], axis=1)
        code = np.unique(code, axis=0)
        lo, hi = code[:, 0], code[:, 1]
    at = _find(keys, lo)
    taken = payload.take(pa.array(at)) if len(at) else payload.slice(0, 0)
    return pa.table(
        {
            "key": pa.array(hi, pa.int64()),
            "partner": pa.array(lo, pa.int64()),
            "count": taken["count"],
            "sig": taken["sig"],
            "shingles": taken["shingles"],
        },
        schema=PAYLOAD,
    )


def verify_block(block: pa.Table, floor: float) -> pa.Table:
    """[attached candidates and payload rows, keyed by hi] -> (a, b, score, estimate) for every
    candidate whose exact Jaccard of shingle sets is >= floor (as `lexical.verify`)."""
    payload, keys, cands = _split(block)
    if not len(cands):
        return PAIRS.empty_table()
    hi = _np(cands["key"], np.int64)
    lo = _np(cands["partner"], np.int64)
    at = _find(keys, hi)
    other = payload.take(pa.array(at))
    sx, ox = _list_values(cands["shingles"], np.uint64)
    sy, oy = _list_values(other["shingles"], np.uint64)
    idx = np.arange(len(lo), dtype=np.int64)
    inter = intersect(sx, ox, idx, idx, other=(sy, oy), threads=1)
    cx, cy = _np(cands["count"], np.int64), _np(other["count"], np.int64)
    ratio = inter / (cx + cy - inter)
    ok = ratio >= floor
    gx, _ = _list_values(cands["sig"], np.uint32)
    gy, _ = _list_values(other["sig"], np.uint32)
    perm = len(gx) // max(len(lo), 1)
    agree = np.count_nonzero(gx.reshape(len(lo), perm)[ok] == gy.reshape(len(lo), perm)[ok], axis=1)
    return pa.table(
        {
            "a": pa.array(lo[ok]),
            "b": pa.array(hi[ok]),
            "score": pa.array(ratio[ok], pa.float64()),
            "estimate": pa.array(agree / float(max(perm, 1)), pa.float64()),
        },
        schema=PAIRS,
    )


# --- every view in one table ---------------------------------------------------------------
# A distributed run moves all views through the same stages (one shuffle serves them all):
# rows carry `view` (int8, the view's position in the run) and each function below runs the
# single-view function on each view's rows of its partition. Shuffles key on view first.


def per_view(fn: Callable[..., pa.Table], block: pa.Table, **kw: Any) -> pa.Table:
    """fn on each view's rows of `block`, its outputs tagged with the view and concatenated."""
    views = _np(block["view"], np.int8)
    outs = []
    for k in np.unique(views).tolist():
        sub = block if bool((views == k).all()) else block.filter(pa.array(views == k))
        out = fn(sub, **kw)
        outs.append(out.append_column("view", pa.array(np.full(out.num_rows, k, np.int8))))
    if not outs:
        out = fn(block, **kw)
        return out.append_column("view", pa.array(np.empty(out.num_rows, np.int8)))
    return pa.concat_tables(outs)


def sketch_views(texts: pa.Table, views: Sequence[tuple[int, str, SketchParams]]) -> pa.Table:
    """(row, text per view) -> the sketches of every view, tagged."""
    outs = []
    for k, name, params in views:
        out = sketch_block(texts, name, params)
        outs.append(out.append_column("view", pa.array(np.full(out.num_rows, k, np.int8))))
    return pa.concat_tables(outs)


def exact_views(block: pa.Table) -> pa.Table:
    return per_view(exact_block, block)


def band_views(exact: pa.Table, bands: range) -> pa.Table:
    return per_view(band_rows, exact, bands=bands)


def bucket_views(block: pa.Table) -> pa.Table:
    return per_view(bucket_block, block)


def payload_views(exact: pa.Table) -> pa.Table:
    return per_view(payload_rows, exact)


def candidate_views(candidates: pa.Table) -> pa.Table:
    return per_view(candidate_rows, candidates)


def attach_views(block: pa.Table) -> pa.Table:
    return per_view(attach_block, block)


def verify_views(block: pa.Table, floor: float) -> pa.Table:
    return per_view(verify_block, block, floor=floor)
