"""Records of a large file, parsed batch by batch on demand instead of all at once.

A scan of a million records needs each record's text once, in order, and a few thousand of
them again for the report and the removal record. Holding every row as Python objects would
cost several GiB, so a large JSON Lines, JSON array or Parquet file is opened as a
`LazyRecords` sequence: it keeps only where each row is (byte offsets of the lines, or Parquet
row groups; a JSON array is streamed once with ijson into a compact JSON Lines spill file) and
parses a batch of rows when one is asked for. Iterating or slicing in order parses each batch
once; `fetch` gets scattered records in one ordered pass.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, overload

import numpy as np

from dedup_audit.errors import InputError
from dedup_audit.formats import Spec, build_sample
from dedup_audit.readers.jsonio import parse_json_lines
from dedup_audit.records import Record

BATCH = 8_192
CACHED_BATCHES = 4
COPY_ROWS = 8_192
"""Rows per read when a clean output copies kept rows straight from a lazily read input."""


class RowSource:
    """Rows [lo, hi) of one file as dicts; `where(i)` names row i for error messages."""

    path: Path
    n: int
    fork_safe = False  # can a forked child read rows (no shared file offset or thread pool)?
    row_cheap = False  # is reading one row much cheaper than reading its batch?

    def rows(self, lo: int, hi: int) -> list[dict[str, Any]]:
        raise NotImplementedError

    def copy_rows(self, keep: np.ndarray, out: Path) -> None:
        """Write rows `keep` to `out` in the file's own type, straight from the file."""
        raise NotImplementedError

    def where(self, i: int) -> str:
        return f"{self.path}: row {i + 1}"

    def close(self) -> None:
        pass


class JsonlSource(RowSource):
    """JSON Lines: byte offsets of every non-blank line, found with one buffered pass. Rows
    are read with pread, so forked workers can share the open file."""

    fork_safe = True
    row_cheap = True

    def __init__(self, path: Path, lines_path: Path | None = None, spill: bool = False) -> None:
        self.path = path
        self._read = lines_path or path
        self._spill = spill
        starts: list[np.ndarray] = []
        ends: list[np.ndarray] = []
        self._line_no: list[np.ndarray] = []
        pos = 0
        line_base = 0
        with open(self._read, "rb") as fh:
            carry = b""
            while True:
                block = fh.read(1 << 24)
                if not block:
                    break
                data = carry + block
                base = pos - len(carry)
                nl = np.flatnonzero(np.frombuffer(data, np.uint8) == 10)
                if not len(nl):
                    carry = data
                    pos += len(block)
                    continue
                line_starts = np.concatenate(([0], nl[:-1] + 1))
                line_ends = nl
                starts.append(line_starts + base)
                ends.append(line_ends + base)
                self._line_no.append(np.arange(line_base + 1, line_base + 1 + len(nl)))
                line_base += len(nl)
                carry = data[nl[-1] + 1 :]
                pos += len(block)
            if carry.strip():
                starts.append(np.array([pos - len(carry)]))
                ends.append(np.array([pos]))
                self._line_no.append(np.array([line_base + 1]))
        s = np.concatenate(starts) if starts else np.empty(0, np.int64)
        e = np.concatenate(ends) if ends else np.empty(0, np.int64)
        lines = np.concatenate(self._line_no) if self._line_no else np.empty(0, np.int64)
        # drop blank lines (whitespace only): check their lengths cheaply, then contents
        keep = np.ones(len(s), bool)
        short = np.flatnonzero(e - s <= 2)
        if len(short):
            with open(self._read, "rb") as fh:
                for k in short.tolist():
                    fh.seek(int(s[k]))
                    keep[k] = bool(fh.read(int(e[k] - s[k])).strip())
        self._starts, self._ends, self._lines = s[keep], e[keep], lines[keep]
        self.n = len(self._starts)
        self._fh = open(self._read, "rb")  # noqa: SIM115 - closed by close()

    def rows(self, lo: int, hi: int) -> list[dict[str, Any]]:
        if lo >= hi:
            return []
        data = os.pread(
            self._fh.fileno(), int(self._ends[hi - 1] - self._starts[lo]), int(self._starts[lo])
        )
        base = int(self._starts[lo])
        texts = [
            data[int(a) - base : int(b) - base].decode("utf-8", errors="strict").rstrip("\r")
            for a, b in zip(self._starts[lo:hi], self._ends[lo:hi], strict=True)
        ]
        return parse_json_lines(texts, lambda k: self.where(lo + k))

    @property
    def is_spill(self) -> bool:
        """True when the lines are a spill of a JSON array, not the user's own file."""
        return self._spill

    def copy_rows(self, keep: np.ndarray, out: Path) -> None:
        """Write the lines of rows `keep` (sorted, distinct) to `out` byte for byte, each ended
        by a newline: a kept row is exactly the input's line (key order, spacing, escapes),
        and memory stays one block however large the file."""
        keep = np.asarray(keep, np.int64)
        with open(out, "wb") as fh:
            for lo in range(0, len(keep), COPY_ROWS):
                part = keep[lo : lo + COPY_ROWS]
                a, b = int(self._starts[part[0]]), int(self._ends[part[-1]])
                data = os.pread(self._fh.fileno(), b - a, a)
                fh.write(
                    b"".join(
                        data[int(x) - a : int(y) - a] + b"\n"
                        for x, y in zip(self._starts[part], self._ends[part], strict=True)
                    )
                )

    def where(self, i: int) -> str:
        if self._spill:
            return f"{self.path}: row {i + 1}"
        return f"{self.path}: row {i + 1} (line {int(self._lines[i])})"

    def close(self) -> None:
        self._fh.close()
        if self._spill:
            Path(self._read).unlink(missing_ok=True)


def json_array_source(path: Path, work_dir: str | None = None) -> JsonlSource:
    """Stream a JSON array once (ijson) into a compact JSON Lines spill file, then read that."""
    import ijson

    fd, tmp = tempfile.mkstemp(prefix="dedup-audit-rows-", suffix=".jsonl", dir=work_dir)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out, open(path, "rb") as fh:
            for k, item in enumerate(ijson.items(fh, "item", use_float=True)):
                if not isinstance(item, dict):
                    raise InputError(f"{path}: row {k + 1} is not a JSON object")
                out.write(json.dumps(item, ensure_ascii=False, separators=(",", ":")))
                out.write("\n")
    except ijson.JSONError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise InputError(f"{path}: malformed JSON ({exc}); fix the file") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return JsonlSource(path, Path(tmp), spill=True)


class ParquetSource(RowSource):
    """Parquet: rows by row group (pyarrow), converted to dicts per requested range."""

    def __init__(self, path: Path) -> None:
        import pyarrow.parquet as pq

        self.path = path
        self._file = pq.ParquetFile(path)
        sizes = [
            self._file.metadata.row_group(i).num_rows for i in range(self._file.num_row_groups)
        ]
        self._bounds = np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)
        self.n = int(self._bounds[-1])

    def copy_rows(self, keep: np.ndarray, out: Path) -> None:
        """Write rows `keep` (sorted, distinct) to a Parquet file at `out`, one row group of
        the input at a time: the input's schema and values exactly, memory one row group."""
        import pyarrow.parquet as pq

        keep = np.asarray(keep, np.int64)
        with pq.ParquetWriter(out, self._file.schema_arrow) as writer:
            for g in range(self._file.num_row_groups):
                lo, hi = int(self._bounds[g]), int(self._bounds[g + 1])
                a, b = np.searchsorted(keep, [lo, hi])
                if a == b:
                    continue
                table = self._file.read_row_group(g)
                writer.write_table(table.take(keep[a:b] - lo))

    def rows(self, lo: int, hi: int) -> list[dict[str, Any]]:
        first = int(np.searchsorted(self._bounds, lo, side="right") - 1)
        last = int(np.searchsorted(self._bounds, hi - 1, side="right") - 1)
        table = self._file.read_row_groups(list(range(first, last + 1)))
        off = int(self._bounds[first])
        return table.slice(lo - off, hi - lo).to_pylist()


class LazyRecords(Sequence[Record]):
    """A Sequence of Records over a RowSource; batches are parsed on demand and cached."""

    def __init__(
        self,
        source: RowSource,
        spec: Spec,
        ids: Callable[[int, list[dict[str, Any]]], list[str]],
        batch: int = BATCH,
    ) -> None:
        self.source = source
        self.spec = spec
        self._ids = ids
        self.batch = batch
        self._cache: OrderedDict[int, list[Record]] = OrderedDict()

    def __len__(self) -> int:
        return self.source.n

    def _batch(self, b: int) -> list[Record]:
        hit = self._cache.get(b)
        if hit is not None:
            self._cache.move_to_end(b)
            return hit
        lo, hi = b * self.batch, min((b + 1) * self.batch, self.source.n)
        rows = self.source.rows(lo, hi)
        ids = self._ids(lo, rows)
        src = str(self.source.path)
        recs = [
            Record(
                lo + k, ids[k], row, build_sample(row, self.spec, self.source.where(lo + k)), src
            )
            for k, row in enumerate(rows)
        ]
        self._cache[b] = recs
        while len(self._cache) > CACHED_BATCHES:
            self._cache.popitem(last=False)
        return recs

    @overload
    def __getitem__(self, i: int) -> Record: ...

    @overload
    def __getitem__(self, i: slice) -> list[Record]: ...

    def __getitem__(self, i: int | slice) -> Record | list[Record]:
        if isinstance(i, slice):
            start, stop, step = i.indices(len(self))
            if step != 1:
                return [self[k] for k in range(start, stop, step)]
            out: list[Record] = []
            k = start
            while k < stop:
                b = k // self.batch
                recs = self._batch(b)
                hi = min(stop, (b + 1) * self.batch)
                out += recs[k - b * self.batch : hi - b * self.batch]
                k = hi
            return out
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        return self._batch(i // self.batch)[i % self.batch]

    def __iter__(self) -> Iterator[Record]:
        for b in range((len(self) + self.batch - 1) // self.batch):
            yield from self._batch(b)

    def fetch(self, indices: Iterable[int]) -> dict[int, Record]:
        """Records at scattered indices, in one ordered pass over the batches they fall in."""
        return dict(self.scattered(indices))

    def scattered(self, indices: Iterable[int]) -> Iterator[tuple[int, Record]]:
        """(index, Record) in ascending order. A batch holding many of them is parsed whole;
        a few records of a batch are read one by one (a report showing the 8 first members of
        the largest clusters must not parse the whole file again)."""
        wanted = sorted(set(indices))
        k = 0
        while k < len(wanted):
            b = wanted[k] // self.batch
            end = k
            while end < len(wanted) and wanted[end] // self.batch == b:
                end += 1
            here = wanted[k:end]
            if b in self._cache or len(here) * 8 >= self.batch or not self.source.row_cheap:
                recs = self._batch(b)
                for i in here:
                    yield i, recs[i - b * self.batch]
            else:
                for i in here:
                    yield i, self._one(i)
            k = end

    def _one(self, i: int) -> Record:
        row = self.source.rows(i, i + 1)[0]
        where = self.source.where(i)
        return Record(
            i,
            self._ids(i, [row])[0],
            row,
            build_sample(row, self.spec, where),
            str(self.source.path),
        )

    def close(self) -> None:
        self.source.close()


def fetch(records: Sequence[Record], indices: Iterable[int]) -> dict[int, Record]:
    """Records at scattered indices of any record sequence (ordered access for lazy ones)."""
    if isinstance(records, LazyRecords):
        return records.fetch(indices)
    return {i: records[i] for i in set(indices)}


def map_records(
    records: Sequence[Record], indices: Iterable[int], fn: Callable[[Record], Any]
) -> dict[int, Any]:
    """fn(record) at scattered indices, keeping only the results: one ordered pass for lazily
    read data, and never more than a batch of Records alive at a time."""
    if isinstance(records, LazyRecords):
        return {i: fn(r) for i, r in records.scattered(indices)}
    return {i: fn(records[i]) for i in sorted(set(indices))}
