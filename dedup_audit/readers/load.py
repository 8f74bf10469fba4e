"""`load_dataset`: file(s) -> rows -> Spec -> Records, with every error naming file and row."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from dedup_audit.errors import ConfigError, InputError
from dedup_audit.formats import (
    FORMATS,
    Spec,
    build_sample,
    check_columns,
    detect_spec,
    key_union,
    spec_from_columns,
)
from dedup_audit.progress import progress_bar
from dedup_audit.readers.arrowio import is_hf_disk, read_arrow, read_hf_disk, read_parquet
from dedup_audit.readers.common import SUFFIX_TYPES, RawFile
from dedup_audit.readers.csvio import read_csv
from dedup_audit.readers.jsonio import read_json, read_jsonl
from dedup_audit.readers.textio import read_txt
from dedup_audit.records import Dataset, Record

READERS: dict[str, Callable[[Path], RawFile]] = {
    "json": read_json,
    "jsonl": read_jsonl,
    "csv": read_csv,
    "txt": read_txt,
    "parquet": read_parquet,
    "arrow": read_arrow,
    "hf_disk": read_hf_disk,
}


def file_type_of(path: Path) -> str:
    """The reader for one path: by suffix, or hf_disk for a save_to_disk folder."""
    if is_hf_disk(path):
        return "hf_disk"
    kind = SUFFIX_TYPES.get(path.suffix.lower())
    if kind is None:
        raise InputError(
            f"{path}: unsupported file type {path.suffix or '(no suffix)'}; supported: "
            f"{', '.join(sorted(SUFFIX_TYPES))} or a save_to_disk folder"
        )
    return kind


def data_files(path: Path) -> tuple[list[Path], str]:
    """The files behind a path and their one file type. A plain folder is read like
    LLaMA-Factory reads a folder file_name: every file, all of one type (in name order here,
    so ids are stable)."""
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    if path.is_dir() and not is_hf_disk(path):
        files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
        if not files:
            raise InputError(f"{path}: the folder has no data files")
        kinds = {file_type_of(p) for p in files}
        if len(kinds) != 1:
            raise InputError(f"{path}: the folder mixes file types {sorted(kinds)}; keep one type")
        return files, kinds.pop()
    return [path], file_type_of(path)


AUTO_ID_COLUMN = "id"


def auto_id_column(rows: list[dict[str, Any]]) -> str | None:
    """`id` when every row has a non-empty, unique `id` (then it is the id people already use);
    None otherwise, and ids fall back to FILE:N positions."""
    seen: set[str] = set()
    for row in rows:
        value = row.get(AUTO_ID_COLUMN)
        if value is None or value == "" or isinstance(value, dict | list):
            return None
        key = str(value)
        if key in seen:
            return None
        seen.add(key)
    return AUTO_ID_COLUMN if rows else None


def describe_ids(id_column: str | None) -> str:
    """What a record id means, in words, for reports."""
    if id_column is not None:
        return f"ids are the values of the {id_column!r} column"
    return (
        "ids are FILE:N where N is the row's position in the file counted from 0 "
        "(row N+1 when counted from 1); N is not a line number"
    )


def _ids(raws: list[RawFile], id_column: str | None, wheres: list[str]) -> list[str]:
    """FILE:N positions (N from 0, stable across tools: loss files key on them), or the values
    of `id_column`, which must be present and unique."""
    if id_column is None:
        return [f"{raw.path.name}:{i}" for raw in raws for i in range(len(raw.rows))]
    ids: list[str] = []
    missing: list[str] = []
    first: dict[str, int] = {}
    dupes: list[str] = []
    rows = [row for raw in raws for row in raw.rows]
    for n, row in enumerate(rows):
        value = row.get(id_column)
        if value is None or value == "":
            missing.append(wheres[n])
            ids.append("")
            continue
        key = str(value)
        if key in first:
            dupes.append(f"{wheres[n]} repeats id {key!r} of {wheres[first[key]]}")
        else:
            first[key] = n
        ids.append(key)
    if missing:
        if len(missing) == len(rows):
            keys = key_union(rows[:1000])
            raise InputError(
                f"--id-column {id_column!r} is not a column; keys found: {sorted(keys)}"
            )
        more = f" (and {len(missing) - 5} more)" if len(missing) > 5 else ""
        raise InputError(
            f"--id-column {id_column!r} is missing or empty in {'; '.join(missing[:5])}{more}; "
            f"fill it or drop --id-column"
        )
    if dupes:
        more = f" (and {len(dupes) - 5} more)" if len(dupes) > 5 else ""
        raise InputError(f"--id-column {id_column!r} is not unique: {'; '.join(dupes[:5])}{more}")
    return ids


def _where(raw: RawFile, i: int) -> str:
    if raw.lines is not None:
        return f"{raw.path}: row {i} (line {raw.lines[i]})"
    return f"{raw.path}: row {i}"


def load_dataset(
    path: str | Path,
    *,
    format: str = "auto",
    dataset_info: str | Path | None = None,
    dataset_name: str | None = None,
    id_column: str | None = None,
    columns: Mapping[str, str] | None = None,
    progress: bool = False,
) -> Dataset:
    """Load a dataset file (or folder) into Records with normalised Samples.

    `format` forces a family (default: detect from the rows). `columns` maps LLaMA-Factory
    column roles to keys (`{"prompt": "question", "response": "answer"}`). With
    `dataset_info` + `dataset_name`, the entry's file_name, formatting, ranking, columns and
    tags decide everything, as in LLaMA-Factory, and `path` may be empty. Records keep the
    original row untouched for a faithful write-back; writer_hints says how to write it.
    """
    if format != "auto" and format not in FORMATS:
        raise ConfigError(f"--format must be auto or one of {', '.join(FORMATS)}, got {format!r}")
    entry = None
    if dataset_info is not None:
        from dedup_audit.readers.dataset_info import resolve

        entry = resolve(dataset_info, dataset_name)
        if columns or format != "auto":
            raise ConfigError(
                "--dataset-info decides the format and columns; drop --format/--column "
                "or edit the dataset_info.json entry"
            )
        target = entry.path
    elif dataset_name is not None:
        raise ConfigError("--dataset needs --dataset-info PATH (LLaMA-Factory's dataset_info.json)")
    else:
        target = Path(path)
    files, file_type = data_files(target)
    raws = [READERS[file_type](p) for p in files]
    rows = [row for raw in raws for row in raw.rows]
    wheres = [_where(raw, i) for raw in raws for i in range(len(raw.rows))]
    label = str(target)
    keys = key_union(rows)
    spec: Spec
    if entry is not None:
        spec = entry.spec
        if entry.defaults and spec.columns.get("query") and spec.columns["query"] not in keys:
            spec = Spec(
                spec.format,
                spec.base,
                {k: v for k, v in spec.columns.items() if k != "query"},
                spec.tags,
            )
    elif columns:
        spec = spec_from_columns(rows, label, format, columns)
    else:
        spec = detect_spec(rows, label, format)
    check_columns(spec, keys, label)
    if id_column is None:
        id_column = auto_id_column(rows)
    ids = _ids(raws, id_column, wheres)
    records: list[Record] = []
    sources = [str(raw.path) for raw in raws for _ in raw.rows]
    for n in progress_bar(range(len(rows)), desc="loading", enabled=progress, total=len(rows)):
        sample = build_sample(rows[n], spec, wheres[n])
        records.append(Record(index=n, id=ids[n], row=rows[n], sample=sample, source=sources[n]))
    hints: dict[str, Any] = dict(raws[0].hints)
    checks = [raw.hints.get("exact") for raw in raws]
    hints["exact"] = None if None in checks else all(checks)
    if entry is not None:
        hints["dataset_info"] = {"name": entry.name, "entry": entry.entry}
    return Dataset(
        records=records,
        format=spec.format,
        file_type=file_type,
        paths=tuple(str(p) for p in files),
        name=dataset_name or target.stem,
        columns=dict(spec.columns),
        tags=dict(spec.tags),
        writer_hints=hints,
        id_column=id_column,
    )
