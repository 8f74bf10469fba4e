"""The local engine: every view of a record stream sketched in batches on all cores, then
exact groups, banding and verification per view.

Records are read batch by batch (`batch_rows` at a time, from a list or a lazy record store);
each batch's view texts are built, normalised and sketched, and only the sketches are kept
(in RAM up to the memory budget, spilled to a work folder past it). No step's result depends
on the batch size or the thread count: batches are concatenated in order and every per-text
value is a pure function of the text.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

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
from dedup_audit.views import normalize, shingle_mode, view_text

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
        return cls(batch_rows=batch, store_bytes=max(1, usable // 2 // max(views, 1)))


def _normalized(records: Sequence[Record], view: str, cfg: NormalizeConfig) -> list[str]:
    return [normalize(view_text(r.sample, view), cfg) for r in records]


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
        modes: dict[str, str] = {}
        stores: dict[str, SketchStore] = {}
        row_of: dict[str, list[np.ndarray]] = {v: [] for v in views}
        same_as_prompt = skip_first_turn_if_prompt and "first_turn" in views and "prompt" in views
        bar = stage_bar(total=n, desc="sketch", unit="rec") if progress else None

        def add(view: str, texts: list[str]) -> None:
            if view not in modes:
                forced = index.modes.get(view) if index is not None else None
                modes[view] = forced or shingle_mode(texts, minhash)
                params = sketch_params(modes[view], minhash, near=near)
                stores[view] = SketchStore(params, budget.store_bytes, Path(tmp) / view)
            vs = sketch_view(texts, modes[view], minhash, threads=threads, near=near)
            first = stores[view].add(vs.sketches)
            row_of[view].append(np.where(vs.row_of >= 0, vs.row_of + first, -1))

        deferred: list[tuple[int, int]] = []  # batches whose first turn equalled the prompt
        for start in range(0, n, budget.batch_rows):
            batch = records[start : start + budget.batch_rows]
            prompt: list[str] | None = None
            for view in views:
                if view == "first_turn" and same_as_prompt:
                    texts = _normalized(batch, view, normalize_cfg)
                    if texts == prompt:
                        deferred.append((start, start + len(batch)))
                        continue
                    same_as_prompt = False
                    for lo, hi in deferred:  # rare: mixed data whose first batches were single-turn
                        add(view, _normalized(records[lo:hi], view, normalize_cfg))
                    deferred = []
                    add(view, texts)
                    continue
                texts = _normalized(batch, view, normalize_cfg)
                if view == "prompt":
                    prompt = texts
                add(view, texts)
            if bar is not None:
                bar.update(len(batch))
        if bar is not None:
            bar.close()
        results: dict[str, LexicalResult] = {}
        for view in views:
            if view == "first_turn" and same_as_prompt:
                continue
            if view not in stores:  # no records at all
                store = SketchStore(sketch_params("word", minhash, near=near), 0)
                modes[view] = "word"
            else:
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
