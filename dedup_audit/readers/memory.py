"""Rows already in memory (a list of dicts, a pandas DataFrame, a Hugging Face Dataset) ->
Dataset, with the same format detection, column mapping and id rules as a file."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dedup_audit.errors import ConfigError, InputError
from dedup_audit.formats import FORMATS, build_sample, check_columns, detect_spec, key_union
from dedup_audit.formats import spec_from_columns as columns_spec
from dedup_audit.readers.common import RawFile
from dedup_audit.readers.load import auto_id_column, record_ids
from dedup_audit.records import Dataset, Record

MEMORY = "memory"
"""The file type of a Dataset read from memory: it has no file to write back to."""


def rows_of(data: Any) -> list[dict[str, Any]] | None:
    """The rows of an in-memory table (list of dicts, pandas DataFrame, Hugging Face Dataset),
    or None when `data` is none of them."""
    if isinstance(data, Sequence) and not isinstance(data, str | bytes):
        rows = list(data)
        bad = next((i for i, r in enumerate(rows) if not isinstance(r, Mapping)), None)
        if bad is not None:
            raise InputError(f"records: row {bad} is a {type(rows[bad]).__name__}, not a dict")
        return [dict(r) for r in rows]
    if hasattr(data, "to_dict") and hasattr(data, "columns") and hasattr(data, "iloc"):
        return list(data.to_dict("records"))  # pandas DataFrame
    if hasattr(data, "features") and hasattr(data, "to_list"):
        return list(data.to_list())  # Hugging Face datasets.Dataset
    if hasattr(data, "keys") and hasattr(data, "column_names"):
        raise ConfigError(
            f"a DatasetDict holds several splits ({', '.join(data.keys())}); pass one, e.g. "
            "ds['train']"
        )
    return None


def load_rows(
    rows: list[dict[str, Any]],
    *,
    name: str = "records",
    format: str = "auto",
    columns: Mapping[str, str] | None = None,
    id_column: str | None = None,
) -> Dataset:
    """A Dataset of in-memory rows. Ids are `{name}:N` (N from 0) or the `id_column` values
    (an `id` column is used when every row has a unique one), as for files."""
    if format != "auto" and format not in FORMATS:
        raise ConfigError(f"format must be auto or one of {', '.join(FORMATS)}, got {format!r}")
    if not rows:
        raise InputError(f"{name}: no rows")
    wheres = [f"{name}: row {i}" for i in range(len(rows))]
    keys = key_union(rows)
    spec = columns_spec(rows, name, format, columns) if columns else detect_spec(rows, name, format)
    check_columns(spec, keys, name)
    if id_column is None:
        id_column = auto_id_column(rows)
    ids = record_ids([RawFile(Path(name), MEMORY, rows)], id_column, wheres)
    records = [
        Record(index=n, id=ids[n], row=row, sample=build_sample(row, spec, wheres[n]), source=name)
        for n, row in enumerate(rows)
    ]
    return Dataset(
        records=records,
        format=spec.format,
        file_type=MEMORY,
        paths=(),
        name=name,
        columns=dict(spec.columns),
        tags=dict(spec.tags),
        id_column=id_column,
    )
