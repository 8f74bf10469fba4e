"""What every file reader shares: the raw result type, UTF-8 decoding with a byte offset on
failure, and the file-type table."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dedup_audit.errors import InputError

SUFFIX_TYPES: dict[str, str] = {
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".csv": "csv",
    ".tsv": "csv",
    ".arrow": "arrow",
    ".txt": "txt",
}
"""File suffix -> file type, as LLaMA-Factory's FILEEXT2TYPE (plus .ndjson and .tsv)."""

BOM = "\ufeff"


@dataclass
class RawFile:
    """Rows of one file, untouched, plus what a writer needs to write them back the same way.

    `lines[i]` is the 1-based line of row i for line-oriented files (jsonl, txt, csv), so errors
    can name the line a user will open in an editor.
    """

    path: Path
    file_type: str
    rows: list[dict[str, Any]]
    hints: dict[str, Any] = field(default_factory=dict)
    lines: list[int] | None = None


def decode_utf8(data: bytes, path: Path) -> tuple[str, bool]:
    """Bytes -> text, strictly UTF-8 (a leading BOM is dropped and remembered).

    Returns (text, had_bom). Invalid bytes are an InputError naming the byte offset and line.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise InputError(
            f"{path}: not valid UTF-8 at byte {err.start} (line {line}): {err.reason}; "
            f"re-encode the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)"
        ) from None
    if text.startswith(BOM):
        return text[1:], True
    return text, False


def read_text(path: Path) -> tuple[str, bool]:
    """The whole file as text; an empty (or whitespace-only) file is an InputError."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise InputError(f"{path}: cannot read ({err.strerror})") from None
    text, bom = decode_utf8(data, path)
    if not text.strip():
        raise InputError(f"{path}: the file is empty; nothing to audit")
    return text, bom


def newline_of(text: str) -> str:
    """The file's line ending, judged by its first line ("\\r\\n" or "\\n")."""
    first = text.find("\n")
    return "\r\n" if first > 0 and text[first - 1] == "\r" else "\n"
