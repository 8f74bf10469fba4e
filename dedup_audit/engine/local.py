"""The local engine: every view of a record stream sketched in batches on all cores, then
exact groups, banding and verification per view.

Records are read batch by batch (`batch_rows` at a time, from a list or a lazy record store);
each batch's view texts are built, normalised and sketched, and only the sketches are kept
(in RAM up to the memory budget, spilled to a work folder past it). No step's result depends
on the batch size or the thread count: batches are concatenated in order and every per-text
value is a pure function of the text.
"""

from __future__ import annotations

import dataclasses
import itertools
import tempfile
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dedup_audit.config import EngineConfig, MinHashConfig, NormalizeConfig
from dedup_audit.engine.cross import match, table_from_view
from dedup_audit.engine.index import LoadedIndex
from dedup_audit.engine.kernels import default_threads
from dedup_audit.engine.lexical import (
    LexicalResult,
    ViewSketch,
    lexical_from_sketch,
    sketch_params,
    sketch_view,
)
from dedup_audit.engine.store import SketchStore
from dedup_audit.errors import ConfigError
from dedup_audit.progress import stage_bar
from dedup_audit.records import Record
from dedup_audit.views import normalize_many, shingle_mode, view_text

MIN_PARALLEL_RECORDS = 100_000
"""Below this, forking workers and shipping their sketches back cost about what the per-record
Python saves (measured on 50k records, 2 shared cores); the C kernels still use every core."""

MIN_PARALLEL_BATCH = 2_000
"""Records per batch below which a worker process costs more than it saves."""

MIN_MEMORY_MB = 512
"""Below this the engine cannot hold Python, numpy and one batch of sketches."""


@dataclass(frozen=True)
class Budget:
    """How a run splits its memory budget."""

    batch_rows: int
    store_bytes: int  # per view

    @classmethod
    def plan(cls, engine: EngineConfig, views: int, num_perm: int) -> Budget:
        if engine.memory_mb < MIN_MEMORY_MB:
            raise ConfigError(
                f"--memory {engine.memory_mb} MB is below the {MIN_MEMORY_MB} MB the engine needs "
                "(Python, numpy and one batch of sketches); raise --memory"
            )
        usable = (engine.memory_mb - 384) * 2**20  # interpreter, libraries, the records' index
        per_row = views * (num_perm * 4 + 18 * 8 + 24 + 8 * 200)  # sig, keys, exact, shingles
        batch = engine.batch_rows or int(min(50_000, max(2_000, usable // 8 // per_row)))
        return cls(batch_rows=batch, store_bytes=max(1, usable // 4 // max(views, 1)))


def _normalized(records: Sequence[Record], view: str, cfg: NormalizeConfig) -> list[str]:
    return normalize_many([view_text(r.sample, view) for r in records], cfg)


@dataclass(frozen=True)
class _Job:
    """What a batch needs besides its records: the same for every batch of a run."""

    views: tuple[str, ...]
    normalize: NormalizeConfig
    minhash: MinHashConfig
    modes: dict[str, str]
    near: bool
    threads: int


def sketch_batch(
    records: Sequence[Record], job: _Job, first_turn_if_differs: bool
) -> dict[str, ViewSketch | None]:
    """Sketch every view of one batch of records: a pure function of the records and the job.

    With `first_turn_if_differs`, the first_turn view is sketched only when it differs from
    the prompt view somewhere in the batch (else None: single-turn data needs no fourth view).
    """
    out: dict[str, ViewSketch | None] = {}
    prompt: tuple[list[str], list[str]] | None = None  # (raw, normalised)
    for view in job.views:
        raw = [view_text(r.sample, view) for r in records]
        if view == "first_turn" and first_turn_if_differs and prompt is not None:
            if raw == prompt[0]:  # equal raw texts: equal normalised texts
                out[view] = None
                continue
            texts = normalize_many(raw, job.normalize)
            if texts == prompt[1]:
                out[view] = None
                continue
        else:
            texts = normalize_many(raw, job.normalize)
            if view == "prompt":
                prompt = (raw, texts)
        out[view] = sketch_view(
            texts, job.modes[view], job.minhash, threads=job.threads, near=job.near
        )
    return out


_FORKED: tuple[Sequence[Record], _Job] | None = None
"""The records and job a forked worker inherits (set just before the pool forks)."""


def _forked_batch(lo: int, hi: int, first_turn_if_differs: bool) -> dict[str, ViewSketch | None]:
    assert _FORKED is not None
    records, job = _FORKED
    return sketch_batch(records[lo:hi], job, first_turn_if_differs)


def _batches(
    records: Sequence[Record],
    job: _Job,
    bounds: list[tuple[int, int]],
    first_turn_if_differs: bool,
    processes: int,
) -> Iterator[dict[str, ViewSketch | None]]:
    """Each batch's sketches, in order: inline (threads inside the C calls), or on forked
    worker processes, which also spread the per-record Python (parsing, views, normalising)
    over the cores. At most `processes + 1` batches are in flight, so memory stays bounded."""
    if processes <= 1 or len(bounds) <= 1:
        for lo, hi in bounds:
            yield sketch_batch(records[lo:hi], job, first_turn_if_differs)
        return
    import multiprocessing

    global _FORKED
    _FORKED = (records, dataclasses.replace(job, threads=1))
    try:
        with multiprocessing.get_context("fork").Pool(processes) as pool:
            pending: deque[Any] = deque()
            todo = iter(bounds)
            for lo, hi in itertools.islice(todo, processes + 1):
                pending.append(pool.apply_async(_forked_batch, (lo, hi, first_turn_if_differs)))
            while pending:
                result = pending.popleft().get()
                nxt = next(todo, None)
                if nxt is not None:
                    pending.append(pool.apply_async(_forked_batch, (*nxt, first_turn_if_differs)))
                yield result
    finally:
        _FORKED = None


def _processes(records: Sequence[Record], threads: int) -> int:
    """Worker processes for sketching: only where fork exists and the records can be read
    from a forked child (in-memory lists, or JSON Lines read with pread)."""
    import multiprocessing

    from dedup_audit.readers.lazy import LazyRecords

    if (
        threads <= 1
        or len(records) < MIN_PARALLEL_RECORDS
        or "fork" not in multiprocessing.get_all_start_methods()
    ):
        return 1
    if isinstance(records, LazyRecords) and not records.source.fork_safe:
        return 1
    return threads


def scan_lexical(
    records: Sequence[Record],
    views: Sequence[str],
    normalize_cfg: NormalizeConfig,
    minhash: MinHashConfig,
    *,
    exact: bool = True,
    near: bool = True,
    skip_first_turn_if_prompt: bool = True,
    engine: EngineConfig | None = None,
    progress: bool = False,
    index: LoadedIndex | None = None,
    keep_tables: bool = False,
) -> dict[str, LexicalResult]:
    """Exact and near duplicates of every view. `first_turn` is dropped when it equals the
    prompt view for every record (single-turn data) and is not the view being deduplicated.

    With `index`, the views it holds are also matched against that older corpus (exact, and
    near at the threshold); `keep_tables` keeps each view's SketchTable (for --save-index)."""
    engine = engine or EngineConfig()
    threads = engine.threads or default_threads()
    n = len(records)
    budget = Budget.plan(engine, len(views), minhash.num_perm)
    hint = Path(engine.work_dir) if engine.work_dir else None
    if hint is not None:
        hint.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="dedup-audit-", dir=hint) as tmp:
        # every view's shingle mode from its first texts, decided once for the whole run
        head = records[: min(n, 2000)]
        modes: dict[str, str] = {}
        for view in views:
            forced = index.modes.get(view) if index is not None else None
            modes[view] = forced or shingle_mode(_normalized(head, view, normalize_cfg), minhash)
        stores = {
            view: SketchStore(
                sketch_params(modes[view], minhash, near=near), budget.store_bytes, Path(tmp) / view
            )
            for view in views
        }
        row_of: dict[str, list[np.ndarray]] = {v: [] for v in views}
        same_as_prompt = skip_first_turn_if_prompt and "first_turn" in views and "prompt" in views
        job = _Job(tuple(views), normalize_cfg, minhash, modes, near, threads)
        bar = stage_bar(total=n, desc="sketch", unit="rec") if progress else None

        def add(view: str, vs: ViewSketch) -> None:
            first = stores[view].add(vs.sketches)
            row_of[view].append(np.where(vs.row_of >= 0, vs.row_of + first, -1))

        processes = _processes(records, threads)
        step = budget.batch_rows
        if engine.batch_rows is None and processes > 1:  # enough batches to keep every core busy
            step = max(MIN_PARALLEL_BATCH, min(step, -(-n // (4 * processes))))
        bounds = [(lo, min(lo + step, n)) for lo in range(0, n, step)]
        deferred: list[tuple[int, int]] = []  # batches whose first turn equalled the prompt
        for (lo, hi), out in zip(
            bounds,
            _batches(records, job, bounds, same_as_prompt, processes),
            strict=True,
        ):
            for view, vs in out.items():
                if view == "first_turn" and same_as_prompt:
                    if vs is None:
                        deferred.append((lo, hi))
                        continue
                    same_as_prompt = False
                    for dlo, dhi in deferred:  # rare: mixed data, first batches single-turn
                        only = dataclasses.replace(job, views=("first_turn",))
                        again = sketch_batch(records[dlo:dhi], only, False)["first_turn"]
                        assert again is not None
                        add(view, again)
                    deferred = []
                assert vs is not None
                add(view, vs)
            if bar is not None:
                bar.update(hi - lo)
        if bar is not None:
            bar.close()
        results: dict[str, LexicalResult] = {}
        for view in views:
            if view == "first_turn" and same_as_prompt:
                continue
            store = stores[view]
            rows = np.concatenate(row_of[view]) if row_of[view] else np.empty(0, np.int64)
            vs = ViewSketch(modes[view], store.params, store.finish(), rows)
            res = lexical_from_sketch(
                view, vs, minhash, exact=exact, near=near, threads=threads, progress=progress
            )
            if keep_tables or (index is not None and view in index.tables):
                table = table_from_view(store.params, vs.sketches, rows)
                if index is not None and view in index.tables:
                    res.index_matches = match(
                        table, index.tables[view], minhash.threshold, threads=threads
                    )
                    res.index_table = table
                if keep_tables:
                    res.table = table.compact()
            results[view] = res
            del vs
            stores.pop(view, None)
        return results
