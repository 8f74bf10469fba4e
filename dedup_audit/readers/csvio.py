"""CSV/TSV files: every cell is a string; the dialect (delimiter, quote char, line ending) is
kept so the writer can reproduce the file."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from dedup_audit.errors import InputError
from dedup_audit.readers.common import RawFile, newline_of, read_text


def _dialect(text: str, path: Path) -> tuple[str, str]:
    """Delimiter and quote char. .tsv means tabs; otherwise the separator that occurs most in
    the header line (headers are short and rarely quoted, unlike csv.Sniffer's guesses on
    free text full of commas and semicolons)."""
    if path.suffix.lower() == ".tsv":
        return "\t", '"'
    header = text.split("\n", 1)[0]
    counts = {d: header.count(d) for d in (",", "\t", ";", "|")}
    best = max(counts, key=lambda d: counts[d])
    return (best if counts[best] else ","), '"'


def dumps_csv(rows: list[dict[str, Any]], fieldnames: list[str], hints: dict[str, Any]) -> str:
    """Rows -> CSV text. Non-string cells (from other file types) become JSON or str()."""
    import json

    buf = io.StringIO(newline="")
    writer = csv.writer(
        buf,
        delimiter=hints.get("delimiter", ","),
        quotechar=hints.get("quotechar", '"'),
        lineterminator=hints.get("newline", "\n"),
        quoting=csv.QUOTE_MINIMAL,
    )
    writer.writerow(fieldnames)
    for row in rows:
        cells = []
        for name in fieldnames:
            v = row.get(name)
            if v is None:
                cells.append("")
            elif isinstance(v, str):
                cells.append(v)
            elif isinstance(v, (list, dict, bool)):
                cells.append(json.dumps(v, ensure_ascii=False))
            else:
                cells.append(str(v))
        writer.writerow(cells)
    text = buf.getvalue()
    if not hints.get("trailing_newline", True):
        text = text[: -len(hints.get("newline", "\n"))]
    return text


def read_csv(path: Path) -> RawFile:
    text, bom = read_text(path)
    delimiter, quotechar = _dialect(text, path)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar=quotechar)
    try:
        header = next(reader)
    except csv.Error as err:
        raise InputError(f"{path}: line 1: malformed CSV header ({err})") from None
    if len(set(header)) != len(header) or not all(h.strip() for h in header):
        raise InputError(
            f"{path}: line 1: the header has empty or repeated column names {header}; rename them"
        )
    rows: list[dict[str, Any]] = []
    lines: list[int] = []
    try:
        while True:
            start = reader.line_num + 1
            try:
                cells = next(reader)
            except StopIteration:
                break
            if not cells:
                continue
            if len(cells) != len(header):
                raise InputError(
                    f"{path}: row {len(rows)} (line {start}) has {len(cells)} fields, the header has "
                    f"{len(header)}; quote fields that contain {delimiter!r}"
                )
            rows.append(dict(zip(header, cells, strict=True)))
            lines.append(start)
    except csv.Error as err:
        raise InputError(f"{path}: line {reader.line_num}: malformed CSV ({err})") from None
    if not rows:
        raise InputError(f"{path}: only a header, no rows; nothing to audit")
    newline = newline_of(text)
    hints: dict[str, Any] = {
        "delimiter": delimiter,
        "quotechar": quotechar,
        "newline": newline,
        "trailing_newline": text.endswith("\n"),
        "bom": bom,
        "fieldnames": header,
    }
    hints["exact"] = dumps_csv(rows, header, hints) == text
    return RawFile(path, "csv", rows, hints, lines)
