"""`load_dataset`: file(s) -> rows -> Spec -> Records, with every error naming file and row."""

from __future__ import annotations

import json
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


def record_ids(raws: list[RawFile], id_column: str | None, wheres: list[str]) -> list[str]:
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


LAZY_BYTES = 64 * 2**20
"""A single JSON Lines, JSON array or Parquet file larger than this is read lazily
(`readers.lazy`): rows are parsed batch by batch when needed instead of held in memory."""


def load_dataset(
    path: str | Path,
    *,
    format: str = "auto",
    dataset_info: str | Path | None = None,
    dataset_name: str | None = None,
    id_column: str | None = None,
    columns: Mapping[str, str] | None = None,
    progress: bool = False,
    lazy: bool | None = None,
    work_dir: str | None = None,
) -> Dataset:
    """Load a dataset file (or folder) into Records with normalised Samples.

    `format` forces a family (default: detect from the rows). `columns` maps LLaMA-Factory
    column roles to keys (`{"prompt": "question", "response": "answer"}`). With
    `dataset_info` + `dataset_name`, the entry's file_name, formatting, ranking, columns and
    tags decide everything, as in LLaMA-Factory, and `path` may be empty. Records keep the
    original row untouched for a faithful write-back; writer_hints says how to write it.

    Examples:
        >>> ds = load_dataset("sample_data/alpaca_en_demo.json")
        >>> len(ds), ds.format, ds.records[0].id
        (999, 'alpaca', 'alpaca_en_demo.json:0')
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
    big = len(files) == 1 and files[0].stat().st_size > LAZY_BYTES
    if (lazy or (lazy is None and big)) and len(files) == 1 and entry is None:
        if file_type in ("jsonl", "json", "parquet"):
            return _load_lazy(files[0], file_type, format, columns, id_column, work_dir)
        if lazy:
            raise ConfigError(
                f"{files[0]}: lazy reading supports JSON Lines, JSON arrays and Parquet; "
                f"convert the {file_type} file or read it whole"
            )
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
    ids = record_ids(raws, id_column, wheres)
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


def _load_lazy(
    path: Path,
    file_type: str,
    fmt: str,
    columns: Mapping[str, str] | None,
    id_column: str | None,
    work_dir: str | None,
) -> Dataset:
    """A Dataset whose records are parsed on demand (see `readers.lazy`)."""
    from dedup_audit.readers import jsonio
    from dedup_audit.readers.lazy import (
        JsonlSource,
        LazyRecords,
        ParquetSource,
        RowSource,
        json_array_source,
    )

    source: RowSource
    hints: dict[str, Any] = {"exact": None}
    with open(path, "rb") as fh:
        head = fh.read(1 << 20)
    head_text = head.decode("utf-8", errors="ignore")
    bom = head_text.startswith("\ufeff")
    head_text = head_text.lstrip("\ufeff")
    if file_type == "parquet":
        source = ParquetSource(path)
        import pyarrow.parquet as pq

        hints["schema"] = pq.read_schema(path)
    elif file_type == "json" and head_text.lstrip().startswith("["):
        source = json_array_source(path, work_dir)
        hints.update(
            layout="array",
            indent=jsonio._indent_of(head_text),
            ensure_ascii=jsonio._ensure_ascii(head_text),
            trailing_newline=True,
            newline="\r\n" if "\r\n" in head_text else "\n",
            bom=bom,
        )
    else:
        source = JsonlSource(path)
        first = head_text.split("\n", 1)[0].rstrip("\r")
        hints.update(
            ensure_ascii=jsonio._ensure_ascii(head_text),
            trailing_newline=True,
            newline="\r\n" if "\r\n" in head_text else "\n",
            bom=bom,
        )
        try:
            compact = json.dumps(json.loads(first), separators=jsonio.COMPACT, ensure_ascii=False)
            hints["separators"] = jsonio.COMPACT if compact == first else None
        except json.JSONDecodeError:
            hints["separators"] = None
        if file_type == "json":
            hints["layout"] = "lines"
    if source.n == 0:
        raise InputError(f"{path}: no rows; nothing to audit")
    sample_rows = source.rows(0, min(source.n, 2000))
    label = str(path)
    spec = (
        spec_from_columns(sample_rows, label, fmt, columns)
        if columns
        else detect_spec(sample_rows, label, fmt)
    )
    check_columns(spec, key_union(sample_rows), label)
    all_ids: list[str] | None = None
    if id_column is None and auto_id_column(sample_rows) is not None:
        try:  # the `id` column, when it holds a unique id for every row (one pass)
            all_ids, id_column = _lazy_ids(source, AUTO_ID_COLUMN), AUTO_ID_COLUMN
        except InputError:
            all_ids = None
    if id_column is None:
        name = path.name

        def ids(lo: int, rows: list[dict[str, Any]]) -> list[str]:
            return [f"{name}:{lo + k}" for k in range(len(rows))]

    else:
        known = all_ids if all_ids is not None else _lazy_ids(source, id_column)

        def ids(lo: int, rows: list[dict[str, Any]]) -> list[str]:
            return known[lo : lo + len(rows)]

    return Dataset(
        records=LazyRecords(source, spec, ids),  # type: ignore[arg-type]
        format=spec.format,
        file_type=file_type,
        paths=(str(path),),
        name=path.stem,
        columns=dict(spec.columns),
        tags=dict(spec.tags),
        writer_hints=hints,
        id_column=id_column,
    )


def _lazy_ids(source: Any, id_column: str) -> list[str]:
    """--id-column values of every row (one pass), checked present and unique."""
    ids: list[str] = []
    first: dict[str, int] = {}
    step = 8192
    for lo in range(0, source.n, step):
        for k, row in enumerate(source.rows(lo, min(lo + step, source.n))):
            value = row.get(id_column)
            if value is None or value == "":
                raise InputError(
                    f"{source.where(lo + k)}: --id-column {id_column!r} is missing or empty; "
                    "fill it or drop --id-column"
                )
            key = str(value)
            if key in first:
                raise InputError(
                    f"{source.where(lo + k)}: --id-column {id_column!r} repeats id {key!r} of "
                    f"{source.where(first[key])}; ids must be unique"
                )
            first[key] = lo + k
            ids.append(key)
    return ids
