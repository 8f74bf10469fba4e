"""Plain .txt files: one document per line, as HF `datasets`' text builder reads them for
LLaMA-Factory pretraining. Blank lines are not documents and are skipped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dedup_audit.errors import InputError
from dedup_audit.readers.common import RawFile, newline_of, read_text


def dumps_txt(texts: list[str], hints: dict[str, Any]) -> str:
    newline = hints.get("newline", "\n")
    if not texts:
        return ""
    body = newline.join(texts)
    return body + newline if hints.get("trailing_newline", True) else body


def read_txt(path: Path) -> RawFile:
    text, bom = read_text(path)
    newline = newline_of(text)
    rows: list[dict[str, Any]] = []
    lines: list[int] = []
    for no, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if line.strip():
            rows.append({"text": line})
            lines.append(no)
    if not rows:
        raise InputError(f"{path}: no non-blank lines; nothing to audit")
    hints: dict[str, Any] = {
        "newline": newline,
        "trailing_newline": text.endswith("\n"),
        "bom": bom,
    }
    hints["exact"] = dumps_txt([r["text"] for r in rows], hints) == text
    return RawFile(path, "txt", rows, hints, lines)
