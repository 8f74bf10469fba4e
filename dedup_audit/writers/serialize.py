"""Rows -> bytes of one file type, in the source's own style when the type is unchanged.

The hints are those the reader recorded (indent, ensure_ascii, dialect, schema...). When the
output type differs from the input type, each type's plain defaults are used instead.
"""

from __future__ import annotations

import io
from typing import Any

from dedup_audit.errors import OutputError
from dedup_audit.readers.common import BOM
from dedup_audit.readers.csvio import dumps_csv
from dedup_audit.readers.jsonio import dumps_json, dumps_jsonl
from dedup_audit.readers.textio import dumps_txt


def _with_bom(text: str, hints: dict[str, Any]) -> bytes:
    return ((BOM if hints.get("bom") else "") + text).encode("utf-8")


def _table(rows: list[dict[str, Any]], hints: dict[str, Any]) -> Any:
    import pyarrow as pa

    schema = hints.get("schema")
    try:
        if schema is not None:
            return pa.Table.from_pylist(rows, schema=schema)
        if not rows:
            raise OutputError("no rows to write and no schema to write an empty table with")
        return pa.Table.from_pylist(rows)
    except (pa.ArrowException, TypeError, ValueError) as err:
        raise OutputError(f"cannot build an Arrow table from the rows: {err}") from None


def key_order(rows: list[dict[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for r in rows:
        for k in r:
            seen.setdefault(k, None)
    return list(seen)


def serialize(
    rows: list[dict[str, Any]],
    file_type: str,
    hints: dict[str, Any],
    *,
    text_key: str | None = None,
) -> bytes:
    """The bytes of a `file_type` file holding `rows` (hf_disk is handled by the caller)."""
    if file_type == "json":
        if hints.get("layout") == "lines":
            return _with_bom(dumps_jsonl(rows, hints), hints)
        return _with_bom(dumps_json(rows, hints), hints)
    if file_type == "jsonl":
        return _with_bom(dumps_jsonl(rows, hints), hints)
    if file_type == "csv":
        names = hints.get("fieldnames") or key_order(rows)
        return _with_bom(dumps_csv(rows, list(names), hints), hints)
    if file_type == "txt":
        if text_key is None or any(set(r) != {text_key} for r in rows):
            raise OutputError(
                "only plain-text datasets (one 'text' column) can be written as .txt; "
                "choose .jsonl or .json"
            )
        return _with_bom(dumps_txt([r[text_key] for r in rows], hints), hints)
    if file_type in ("parquet", "arrow"):
        import pyarrow as pa

        table = _table(rows, hints)
        sink = io.BytesIO()
        if file_type == "parquet":
            import pyarrow.parquet as pq

            pq.write_table(table, sink)
        elif hints.get("arrow_kind") == "stream":
            with pa.ipc.new_stream(sink, table.schema) as writer:
                writer.write_table(table)
        else:
            with pa.ipc.new_file(sink, table.schema) as writer:
                writer.write_table(table)
        return sink.getvalue()
    raise OutputError(f"cannot write file type {file_type!r}")
