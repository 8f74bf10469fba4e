"""Sketches of a whole view, appended batch by batch, in memory or spilled to disk.

A scan sketches its records in batches; each view's sketches are appended here. Below the
store's share of the memory budget the arrays stay in RAM; past it, everything is written to
flat files in a work folder and read back as numpy memmaps, so peak memory follows `--memory`
rather than the corpus size (the page cache holds what the OS can spare).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dedup_audit.engine.kernels import Sketches, SketchParams, concat

if TYPE_CHECKING:
    import numpy.typing as npt

_FIELDS = ("exact", "counts", "sig", "keys", "shingles")


def sketch_bytes(sk: Sketches) -> int:
    return sum(getattr(sk, f).nbytes for f in _FIELDS)


@dataclass
class SketchStore:
    """Appends per-batch sketches; `finish()` gives one Sketches (arrays or memmaps)."""

    params: SketchParams
    budget: int  # bytes this store may hold in RAM before spilling
    work_dir: Path | None = None  # where to spill (a fresh folder of the run's work dir)
    parts: list[Sketches] = field(default_factory=list)
    held: int = 0
    rows: int = 0
    shingles: int = 0
    spilled: bool = False
    _files: dict[str, Any] = field(default_factory=dict)

    def add(self, sk: Sketches) -> int:
        """Append a batch; returns the store row of the batch's first sketch."""
        first = self.rows
        self.rows += len(sk)
        self.shingles += len(sk.shingles)
        if self.spilled:
            self._write(sk)
            return first
        self.parts.append(sk)
        self.held += sketch_bytes(sk)
        if self.held > self.budget and self.work_dir is not None:
            self._spill()
        return first

    def _spill(self) -> None:
        assert self.work_dir is not None
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._files = {f: open(self.work_dir / f"{f}.bin", "wb") for f in _FIELDS}  # noqa: SIM115
        for sk in self.parts:
            self._write(sk)
        self.parts, self.held, self.spilled = [], 0, True

    def _write(self, sk: Sketches) -> None:
        for f in _FIELDS:
            np.ascontiguousarray(getattr(sk, f)).tofile(self._files[f])

    def finish(self) -> Sketches:
        if not self.spilled:
            out = concat(self.parts, self.params)
            self.parts = [out]
            return out
        for fh in self._files.values():
            fh.close()
        assert self.work_dir is not None
        n, p, b = self.rows, self.params.num_perm, self.params.bands
        shapes: dict[str, tuple[Any, tuple[int, ...]]] = {
            "exact": (np.uint64, (n, 2)),
            "counts": (np.int64, (n,)),
            "sig": (np.uint32, (n, p)),
            "keys": (np.uint64, (n, b)),
            "shingles": (np.uint64, (self.shingles,)),
        }
        arrays = {f: _memmap(self.work_dir / f"{f}.bin", *shapes[f]) for f in _FIELDS}
        # counts are small and read whole many times: keep them in RAM
        arrays["counts"] = np.array(arrays["counts"])
        return Sketches(**arrays)


def _memmap(path: Path, dtype: Any, shape: tuple[int, ...]) -> npt.NDArray[Any]:
    if 0 in shape or os.path.getsize(path) == 0:
        return np.empty(shape, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r", shape=shape)


def release(*arrays: Any) -> None:
    """Drop the pages of spilled (memory-mapped) arrays from this process's resident set once
    a step is done with them; the OS keeps them in its page cache, so a re-read is cheap. RAM
    arrays are left alone. This is what keeps peak RSS at the budget while verification reads
    scattered signatures and shingles of a spilled view."""
    import mmap

    for arr in arrays:
        base = arr
        while base is not None and not isinstance(base, mmap.mmap):
            base = getattr(base, "_mmap", None) or getattr(base, "base", None)
        if isinstance(base, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED"):
            base.madvise(mmap.MADV_DONTNEED)
