"""The lexical engine's batch kernels: texts in, numpy arrays out.

`sketch` turns a batch of normalised texts into everything the engine needs from them (128-bit
exact hashes, sorted distinct shingle hashes, MinHash signatures and LSH band keys) in one pass
of native code per text; `intersect` counts shared shingles for candidate pairs. Both run in
the C extension `_native` with the GIL released, spread over a thread pool in fixed-size slices
whose results are concatenated in order, so the output never depends on the thread count.
Where the extension could not be built they fall back to `reference` (same results, slow).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from dedup_audit.engine import reference

if TYPE_CHECKING:
    import numpy.typing as npt

try:
    from dedup_audit.engine import _native  # type: ignore[attr-defined]
except ImportError:  # no C compiler at install time
    _native = None

SLICE = 1024
"""Texts per native call: small enough to balance threads, large enough to amortise the call."""


def native_available() -> bool:
    """True when the C kernels were built (the normal case); False means the slow fallback."""
    return _native is not None


def native_module() -> Any:
    """The C extension module, or None where it could not be built."""
    return _native


def default_threads() -> int:
    """Every core this process may use (the affinity mask, not the machine's total)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class SketchParams:
    """How texts become sketches. Two runs with equal params give identical sketches."""

    char_mode: bool
    ngram: int
    num_perm: int
    seed: int
    bands: int
    rows: int

    def coefficients(self) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64]]:
        return _coefficients(self.num_perm, self.seed)

    def fingerprint(self) -> dict[str, Any]:
        return {
            "scheme": "dedup-audit/minhash-v1",
            "char_mode": self.char_mode,
            "ngram": self.ngram,
            "num_perm": self.num_perm,
            "seed": self.seed,
            "bands": self.bands,
            "rows": self.rows,
        }


@lru_cache(maxsize=8)
def _coefficients(
    num_perm: int, seed: int
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64]]:
    rng = np.random.Generator(np.random.PCG64(seed))
    a = rng.integers(0, 2**64, size=num_perm, dtype=np.uint64, endpoint=False) | np.uint64(1)
    b = rng.integers(0, 2**64, size=num_perm, dtype=np.uint64, endpoint=False)
    a.setflags(write=False)
    b.setflags(write=False)
    return a, b


@dataclass
class Sketches:
    """Per text: `exact` (n, 2) uint64 hash of the whole text, `counts` distinct shingles,
    `sig` (n, num_perm) uint32 MinHash, `keys` (n, bands) uint64 band keys; and the shingles
    of text t in `shingles[offsets[t]:offsets[t + 1]]`, sorted."""

    exact: npt.NDArray[np.uint64]
    counts: npt.NDArray[np.int64]
    sig: npt.NDArray[np.uint32]
    keys: npt.NDArray[np.uint64]
    shingles: npt.NDArray[np.uint64]

    @property
    def offsets(self) -> npt.NDArray[np.int64]:
        return np.concatenate(([0], np.cumsum(self.counts))).astype(np.int64)

    def __len__(self) -> int:
        return len(self.counts)


def _empty(n: int, params: SketchParams) -> Sketches:
    """Uninitialised fixed-width arrays for n texts (the kernel fills every row)."""
    return Sketches(
        np.empty((n, 2), dtype=np.uint64),
        np.empty(n, dtype=np.int64),
        np.empty((n, params.num_perm), dtype=np.uint32),
        np.empty((n, params.bands), dtype=np.uint64),
        np.empty(0, dtype=np.uint64),
    )


def _sketch_native(texts: list[str], params: SketchParams, out: Sketches | None = None) -> bytes:
    """Fill `out` (rows for exactly these texts; views into a batch's arrays, so slices need
    no copying afterwards) and return the texts' shingle hashes, concatenated."""
    out = out if out is not None else _empty(len(texts), params)
    a, b = params.coefficients()
    assert _native is not None
    flat: bytes = _native.sketch(
        texts,
        int(params.char_mode),
        params.ngram,
        a,
        b,
        params.rows,
        params.bands,
        out.sig,
        out.keys,
        out.exact,
        out.counts,
    )
    return flat


def _sketch_reference(texts: list[str], params: SketchParams) -> Sketches:
    a, b = (v.tolist() for v in params.coefficients())
    n = len(texts)
    sig = np.empty((n, params.num_perm), dtype=np.uint32)
    keys = np.empty((n, params.bands), dtype=np.uint64)
    exact = np.empty((n, 2), dtype=np.uint64)
    counts = np.empty(n, dtype=np.int64)
    flat: list[int] = []
    for i, text in enumerate(texts):
        sh = reference.shingles(text, params.char_mode, params.ngram)
        row = reference.signature(sh, a, b)
        exact[i] = reference.exact_hash(text)
        counts[i] = len(sh)
        sig[i] = row
        keys[i] = reference.band_keys(row, params.bands, params.rows)
        flat += sh
    return Sketches(exact, counts, sig, keys, np.asarray(flat, dtype=np.uint64))


def concat(parts: Sequence[Sketches], params: SketchParams) -> Sketches:
    if not parts:
        return Sketches(
            np.empty((0, 2), np.uint64),
            np.empty(0, np.int64),
            np.empty((0, params.num_perm), np.uint32),
            np.empty((0, params.bands), np.uint64),
            np.empty(0, np.uint64),
        )
    if len(parts) == 1:
        return parts[0]
    return Sketches(
        np.concatenate([s.exact for s in parts]),
        np.concatenate([s.counts for s in parts]),
        np.concatenate([s.sig for s in parts]),
        np.concatenate([s.keys for s in parts]),
        np.concatenate([s.shingles for s in parts]),
    )


def sketch(texts: Sequence[str], params: SketchParams, *, threads: int | None = None) -> Sketches:
    """Sketch every text (empty texts get counts 0 and must be left out of banding)."""
    texts = list(texts)
    if _native is None:
        _warn_fallback()
        return _sketch_reference(texts, params)
    whole = _empty(len(texts), params)
    bounds = [(i, min(i + SLICE, len(texts))) for i in range(0, len(texts), SLICE)]

    def run(b: tuple[int, int]) -> bytes:
        lo, hi = b
        rows = Sketches(
            whole.exact[lo:hi],
            whole.counts[lo:hi],
            whole.sig[lo:hi],
            whole.keys[lo:hi],
            whole.shingles,
        )
        return _sketch_native(texts[lo:hi], params, rows)

    workers = min(threads or default_threads(), len(bounds))
    if workers <= 1:
        flats = [run(b) for b in bounds]
    else:
        with ThreadPoolExecutor(workers) as pool:
            flats = list(pool.map(run, bounds))
    shingles = np.frombuffer(b"".join(flats), dtype=np.uint64) if flats else whole.shingles
    return Sketches(whole.exact, whole.counts, whole.sig, whole.keys, shingles)


def intersect(
    shingles: npt.NDArray[np.uint64],
    offsets: npt.NDArray[np.int64],
    lo: npt.NDArray[np.int64],
    hi: npt.NDArray[np.int64],
    *,
    other: tuple[npt.NDArray[np.uint64], npt.NDArray[np.int64]] | None = None,
    threads: int | None = None,
) -> npt.NDArray[np.int64]:
    """|A & B| per candidate pair: A = text lo[i] of (shingles, offsets), B = text hi[i] of
    `other` (another store: an index or a reference set) or of the same store."""
    lo = np.ascontiguousarray(lo, dtype=np.int64)
    hi = np.ascontiguousarray(hi, dtype=np.int64)
    out = np.zeros(len(lo), dtype=np.int64)
    if not len(lo):
        return out
    sx = np.ascontiguousarray(shingles, dtype=np.uint64)
    ox = np.ascontiguousarray(offsets, dtype=np.int64)
    if other is None:
        sy, oy = sx, ox
    else:
        sy = np.ascontiguousarray(other[0], dtype=np.uint64)
        oy = np.ascontiguousarray(other[1], dtype=np.int64)
    if _native is None:
        _warn_fallback()
        for i, (x, y) in enumerate(zip(lo.tolist(), hi.tolist(), strict=True)):
            out[i] = reference.intersection(
                sx[ox[x] : ox[x + 1]].tolist(), sy[oy[y] : oy[y + 1]].tolist()
            )
        return out
    step = 65_536
    chunks = [(s, min(s + step, len(lo))) for s in range(0, len(lo), step)]
    workers = min(threads or default_threads(), len(chunks))

    def run(c: tuple[int, int]) -> None:
        assert _native is not None
        _native.intersect(sx, ox, sy, oy, lo[c[0] : c[1]], hi[c[0] : c[1]], out[c[0] : c[1]])

    if workers <= 1:
        for c in chunks:
            run(c)
    else:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(run, chunks))
    return out


@lru_cache(maxsize=1)
def _warn_fallback() -> None:
    warnings.warn(
        "dedup-audit's C kernels are not built (no C compiler at install time?): the lexical "
        "engine runs its pure-Python reference, which gives the same results but is 100x+ "
        "slower. Reinstall with a C compiler (gcc/clang) available.",
        RuntimeWarning,
        stacklevel=3,
    )
