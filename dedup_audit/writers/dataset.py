"""`write_dataset`: the kept records, in their original order, back in the input's own format.

What is written is each record's original `row` (never the normalised Sample), so every field,
its value and the key order survive. With the same file type the reader's hints are reused,
which makes the output byte-identical to the input when every record is kept (for JSON and
JSONL written by json.dump-like tools, and CSV/TXT without blank lines; `writer_hints["exact"]`
says whether that holds). Parquet, Arrow and save_to_disk outputs keep the input's schema.

The output suffix picks the file type: .json .jsonl .ndjson .parquet .csv .tsv .arrow .txt, so
`-o clean.parquet` converts a JSON input. An hf_disk (save_to_disk) input is written as a
save_to_disk folder unless the output has one of those suffixes; a DatasetDict input keeps
its other splits untouched. A multi-file input (a folder) is written as one file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dedup_audit.errors import OutputError
from dedup_audit.readers.common import SUFFIX_TYPES
from dedup_audit.records import Dataset
from dedup_audit.writers.atomic import atomic_write_bytes, atomic_write_dir, check_output_path
from dedup_audit.writers.plan import OutputPlan
from dedup_audit.writers.serialize import serialize

_JSON_FAMILY = ("json", "jsonl")


def target_type(out: Path, source_type: str) -> str:
    """The file type an output path asks for (see the module docstring)."""
    kind = SUFFIX_TYPES.get(out.suffix.lower())
    if kind is not None:
        return kind
    if source_type == "hf_disk":
        return "hf_disk"
    raise OutputError(
        f"{out}: cannot tell the output file type from its suffix; use one of "
        f"{', '.join(sorted(SUFFIX_TYPES))}"
    )


def _hints_for(dataset: Dataset, target: str, out: Path) -> dict[str, Any]:
    src = dataset.file_type
    hints = dataset.writer_hints
    if target == src:
        chosen = dict(hints)
    elif target in _JSON_FAMILY and src in _JSON_FAMILY:
        chosen = {"ensure_ascii": hints.get("ensure_ascii", False), "bom": hints.get("bom", False)}
    elif target in ("parquet", "arrow") and src in ("parquet", "arrow", "hf_disk"):
        chosen = {"schema": hints.get("schema")}
        if chosen["schema"] is None and hints.get("features") is not None:
            chosen["schema"] = hints["features"].arrow_schema
    else:
        chosen = {}
    if target in ("parquet", "arrow") and chosen.get("schema") is None:
        chosen["schema"] = _schema_of(dataset)
    if target == "csv":
        if out.suffix.lower() == ".tsv":
            chosen["delimiter"] = "\t"
        elif chosen.get("delimiter") == "\t":
            chosen["delimiter"] = ","
    if target == "json" and src != "json":
        chosen.pop("layout", None)
    return chosen


def _schema_of(dataset: Dataset) -> Any:
    """One schema for the whole input, so any subset (even an empty one) gets the same column
    types; None when the rows do not fit one table (the write then reports why)."""
    import pyarrow as pa

    try:
        return pa.Table.from_pylist([r.row for r in dataset.records]).schema
    except (pa.ArrowException, TypeError, ValueError):
        return None


def _hf_disk_filler(
    dataset: Dataset, rows: list[dict[str, Any]], out: Path
) -> Callable[[Path], None]:
    import datasets

    features = dataset.writer_hints.get("features") if dataset.file_type == "hf_disk" else None
    if features is None and not rows and dataset.records:
        features = datasets.Dataset.from_list([r.row for r in dataset.records]).features
    if rows:
        ds = datasets.Dataset.from_list(rows, features=features)
    elif features is not None:
        ds = datasets.Dataset.from_dict({k: [] for k in features}, features=features)
    else:
        raise OutputError(f"{out}: no rows to write and no features to write an empty dataset with")
    split = dataset.writer_hints.get("split") if dataset.file_type == "hf_disk" else None

    def fill(tmp: Path) -> None:
        # no "Saving the dataset" bars: writing is not a stage of its own, and -q means quiet
        from datasets.utils import logging as ds_logging

        was_on = ds_logging.is_progress_bar_enabled()
        ds_logging.disable_progress_bar()
        try:
            if split is None:
                ds.save_to_disk(str(tmp))
                return
            whole = datasets.load_from_disk(dataset.paths[0])
            parts = {name: whole[name] for name in whole}
            parts[split] = ds
            datasets.DatasetDict(parts).save_to_disk(str(tmp))
        finally:
            if was_on:
                ds_logging.enable_progress_bar()

    return fill


def _streamed(dataset: Dataset, keep: Sequence[int], out: Path) -> Callable[[Path], None] | None:
    """For an input read lazily (a large JSON Lines or Parquet file) written back in its own
    type: a function that copies the kept rows straight from the file to a path, in bounded
    memory, instead of holding every kept row. None where that does not apply."""
    from dedup_audit.readers.lazy import JsonlSource, LazyRecords, ParquetSource

    records = dataset.records
    if not isinstance(records, LazyRecords):
        return None
    source = records.source
    target = target_type(out, dataset.file_type)
    jsonl = (
        isinstance(source, JsonlSource)
        and not source.is_spill
        and target == "jsonl"
        and not dataset.writer_hints.get("bom")
    )
    parquet = isinstance(source, ParquetSource) and target == "parquet"
    if not (jsonl or parquet):
        return None
    rows = np.unique(np.asarray(keep, np.int64))
    if len(rows) and (rows[0] < 0 or rows[-1] >= len(records)):
        raise ValueError(
            f"keep holds indices not in the dataset: {rows[rows >= len(records)][:10]}"
        )

    def copy(path: Path) -> None:
        source.copy_rows(rows, path)

    return copy


def _payload(dataset: Dataset, keep: Sequence[int], out: Path) -> bytes | Callable[[Path], None]:
    """The output's bytes, or (for a save_to_disk folder) a function that fills a folder."""
    by_index = {r.index: r for r in dataset.records}
    wanted = sorted(set(keep))
    unknown = [i for i in wanted if i not in by_index]
    if unknown:
        raise ValueError(f"keep holds indices not in the dataset: {unknown[:10]}")
    rows = [by_index[i].row for i in wanted]
    target = target_type(out, dataset.file_type)
    if target == "hf_disk":
        return _hf_disk_filler(dataset, rows, out)
    hints = _hints_for(dataset, target, out)
    text_key = dataset.columns.get("prompt") if dataset.format == "text" else None
    return serialize(rows, target, hints, text_key=text_key)


def write_dataset(
    dataset: Dataset, keep: Sequence[int], out_path: str | Path, *, force: bool = False
) -> Path:
    """Write the records whose index is in `keep` (in input order) to `out_path`."""
    out = Path(out_path)
    check_output_path(out, [Path(p) for p in dataset.paths], force)
    streamed = _streamed(dataset, keep, out)
    if streamed is not None:
        with OutputPlan([Path(p) for p in dataset.paths], force) as plan:
            _stage_streamed(plan, streamed, out)
            plan.commit()
        return out
    payload = _payload(dataset, keep, out)
    if isinstance(payload, bytes):
        atomic_write_bytes(out, payload)
    else:
        atomic_write_dir(out, payload)
    return out


def _stage_streamed(plan: OutputPlan, copy: Callable[[Path], None], out: Path) -> None:
    tmp = plan.stage_path(out)
    try:
        copy(tmp)
        os.chmod(tmp, 0o644)
    except OSError as exc:
        raise OutputError(
            f"{out}: cannot write ({exc.strerror or exc}); nothing was written"
        ) from None


def stage_dataset(plan: OutputPlan, dataset: Dataset, keep: Sequence[int], out: Path) -> None:
    """Like `write_dataset`, but staged in `plan` (renamed into place at `plan.commit()`)."""
    streamed = _streamed(dataset, keep, out)
    if streamed is not None:
        _stage_streamed(plan, streamed, out)
        return
    payload = _payload(dataset, keep, out)
    if isinstance(payload, bytes):
        plan.stage_bytes(out, payload)
        return
    tmp = plan.stage_path(out, directory=True)
    tmp.rmdir()  # save_to_disk wants to create the folder itself
    payload(tmp)
