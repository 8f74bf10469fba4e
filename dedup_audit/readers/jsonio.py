"""JSON (a list of objects) and JSON Lines files.

Besides the rows, the reader records how the file was serialized (indent, ensure_ascii,
separators, trailing newline, BOM, CRLF) so the writer can reproduce it byte for byte;
`exact` says whether re-serializing every row with those settings gives back the source text.
A .json file holding JSON Lines (which HF `datasets` and LLaMA-Factory accept) is read as such
and written back as such (`layout: "lines"`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dedup_audit.errors import InputError
from dedup_audit.formats.spec import type_name
from dedup_audit.readers.common import RawFile, newline_of, read_text

COMPACT = (",", ":")
EXACT_CHECK_LIMIT = 8_000_000
"""Files up to this many characters are re-serialized at load to prove `exact`; beyond it the
check (a pure-Python indented json.dumps) would cost seconds, so `exact` is None (unchecked)."""
DEFAULT_SEPARATORS = (", ", ": ")


def _ensure_ascii(text: str) -> bool:
    """Did the writer escape non-ASCII (\\uXXXX)? Pure-ASCII text with escapes says yes."""
    return text.isascii() and "\\u" in text


def _likely_cause(err: json.JSONDecodeError, line: int | None) -> str:
    """What most often produces this parse error, and what to do about it. Python's own
    message ("Unterminated string starting at") names neither."""
    doc, pos, msg = err.doc, err.pos, err.msg
    rest = doc[pos:].strip()
    truncated = "it looks truncated (an interrupted download or copy); get the whole file again"
    if msg.startswith("Unterminated string"):
        if line is None and "\n" not in doc[pos:].rstrip("\n"):
            return f"the file ends inside a string: {truncated}"
        return (
            'a string is not closed: a missing or unescaped double quote (write \\" inside strings)'
        )
    if not rest or (msg.startswith("Expecting value") and pos >= len(doc.rstrip())):
        return f"the file ends too early: {truncated}"
    if msg.startswith("Invalid control character"):
        return "a raw newline or tab inside a string; write it as \\n or \\t"
    if msg.startswith("Expecting property name enclosed in double quotes"):
        return "single-quoted keys or a trailing comma before }; JSON needs double quotes, no trailing comma"
    if msg.startswith("Expecting value") and rest[:1] in "]}":
        return "a trailing comma before ] or }; remove it"
    if msg.startswith("Expecting value") and rest[:1] == "'":
        return "single quotes; JSON strings need double quotes"
    if msg.startswith("Expecting ',' delimiter"):
        return "a missing comma between two values or objects"
    if msg.startswith("Expecting ':' delimiter"):
        return "a key without a colon after it"
    if msg.startswith("Extra data"):
        return "more than one JSON value; a JSON Lines file should be named .jsonl"
    return "fix the JSON syntax there"


def _malformed(path: Path, err: json.JSONDecodeError, line: int | None = None) -> InputError:
    where = f"line {line}, column {err.colno}" if line else f"line {err.lineno}, column {err.colno}"
    return InputError(
        f"{path}: malformed JSON at {where} (char {err.pos}): {err.msg}; {_likely_cause(err, line)}"
    )


def dumps_json(rows: list[dict[str, Any]], hints: dict[str, Any]) -> str:
    """Rows -> JSON array text with the recorded settings (defaults: indent 2, UTF-8 as is)."""
    indent = hints.get("indent", 2)
    seps = hints.get("separators")
    text = json.dumps(
        rows,
        ensure_ascii=bool(hints.get("ensure_ascii", False)),
        indent=indent,
        separators=tuple(seps) if seps else None,
    )
    return _finish(text, hints, default_trailing=True)


def dumps_jsonl(rows: list[dict[str, Any]], hints: dict[str, Any]) -> str:
    """Rows -> JSON Lines text, one object per line."""
    seps = hints.get("separators")
    ea = bool(hints.get("ensure_ascii", False))
    text = "\n".join(
        json.dumps(r, ensure_ascii=ea, separators=tuple(seps) if seps else None) for r in rows
    )
    return _finish(text, hints, default_trailing=True) if rows else ""


def _finish(text: str, hints: dict[str, Any], *, default_trailing: bool) -> str:
    if hints.get("trailing_newline", default_trailing):
        text += "\n"
    if hints.get("newline") == "\r\n":
        text = text.replace("\n", "\r\n")  # JSON strings escape \n, so only structure changes
    return text


def _indent_of(text: str) -> int | str | None:
    m = re.match(r"\s*\[\r?\n([ \t]*)\S", text)
    if not m:
        return None
    ws = m.group(1)
    return len(ws) if set(ws) <= {" "} else ws


def read_json(path: Path) -> RawFile:
    text, bom = read_text(path)
    if text.lstrip().startswith("{"):
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as err:
            if err.msg == "Extra data":  # JSON Lines in a .json file
                raw = read_jsonl_text(path, text, bom)
                raw.file_type = "json"
                raw.hints["layout"] = "lines"
                return raw
            raise _malformed(path, err) from None
        raise InputError(
            f"{path}: the top level is an object with keys {sorted(obj)[:10]}; expected a JSON list "
            f"of objects (one per row) or JSON Lines"
        )
    try:
        rows = json.loads(text)
    except json.JSONDecodeError as err:
        raise _malformed(path, err) from None
    if not isinstance(rows, list):
        raise InputError(
            f"{path}: the top level is {type_name(rows)}; expected a JSON list of objects"
        )
    if not rows:
        raise InputError(f"{path}: the JSON list is empty; nothing to audit")
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise InputError(f"{path}: row {i} is {type_name(row)}, expected an object")
    newline = newline_of(text)
    body = text.replace("\r\n", "\n") if newline == "\r\n" else text
    hints: dict[str, Any] = {
        "layout": "array",
        "indent": _indent_of(body),
        "ensure_ascii": _ensure_ascii(body),
        "trailing_newline": body.endswith("\n"),
        "newline": newline,
        "bom": bom,
    }
    if hints["indent"] is None:
        compact = json.dumps(rows[0], separators=COMPACT, ensure_ascii=hints["ensure_ascii"])
        hints["separators"] = COMPACT if compact in body else DEFAULT_SEPARATORS
    hints["exact"] = (
        dumps_json(rows, {**hints, "newline": "\n"}) == body
        if len(body) <= EXACT_CHECK_LIMIT
        else None
    )
    return RawFile(path, "json", rows, hints)


def read_jsonl_text(path: Path, text: str, bom: bool) -> RawFile:
    """Parse JSON Lines; blank lines are skipped (and make the round trip inexact)."""
    newline = newline_of(text)
    rows: list[dict[str, Any]] = []
    lines: list[int] = []
    split = text.split("\n")
    lines = [no for no, line in enumerate(split, start=1) if line.strip()]
    try:  # one C-level parse of the whole file; on any error, find the bad line below
        parsed = json.loads("[" + ",".join(split[no - 1] for no in lines) + "]")
    except json.JSONDecodeError:
        parsed = None
    if parsed is None or len(parsed) != len(lines):
        parsed = []
        for no in lines:
            try:
                parsed.append(json.loads(split[no - 1]))
            except json.JSONDecodeError as err:
                raise _malformed(path, err, line=no) from None
    for no, obj in zip(lines, parsed, strict=True):
        if not isinstance(obj, dict):
            raise InputError(f"{path}: line {no} is {type_name(obj)}, expected a JSON object")
    rows = parsed
    if not rows:
        raise InputError(f"{path}: no rows; nothing to audit")
    body = text.replace("\r\n", "\n") if newline == "\r\n" else text
    first = body.split("\n", 1)[0]
    ea = _ensure_ascii(body)
    hints: dict[str, Any] = {
        "ensure_ascii": ea,
        "trailing_newline": body.endswith("\n"),
        "newline": newline,
        "bom": bom,
        "separators": COMPACT
        if json.dumps(rows[0], separators=COMPACT, ensure_ascii=ea) == first
        else None,
    }
    hints["exact"] = (
        dumps_jsonl(rows, {**hints, "newline": "\n"}) == body
        if len(body) <= EXACT_CHECK_LIMIT
        else None
    )
    return RawFile(path, "jsonl", rows, hints, lines)


def parse_json_lines(lines: list[str], where: Callable[[int], str]) -> list[dict[str, Any]]:
    """The objects of non-blank JSON lines, parsed in one C-level call when they are all valid;
    otherwise the first bad line is an InputError that `where(k)` (file, row, line) names.
    Shared by the lazy reader and the Ray engine's workers, so both report a bad row alike."""
    try:
        rows = json.loads("[" + ",".join(lines) + "]")
        if len(rows) != len(lines):
            raise ValueError
    except ValueError:  # JSONDecodeError included; also a line holding two values
        rows = []
        for k, line in enumerate(lines):
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise InputError(
                    f"{where(k)} is not valid JSON (column {err.colno}: {err.msg}); fix or drop "
                    "that line"
                ) from None
    for k, row in enumerate(rows):
        if not isinstance(row, dict):
            raise InputError(f"{where(k)} is {type_name(row)}, expected a JSON object")
    return rows


def read_jsonl(path: Path) -> RawFile:
    text, bom = read_text(path)
    return read_jsonl_text(path, text, bom)
