"""Native benchmark files as reference sets for `--against`, loaded without any column mapping.

Benchmarks ship in their own shapes, not as SFT data. Each item becomes one Record whose prompt
is the task and whose response is the reference answer, which is what contamination checks
compare and verify:

- HumanEval jsonl: ``prompt`` / ``canonical_solution`` / ``entry_point`` (response: the
  signature-bearing prompt + solution, so the entry point is the answer);
- MMLU: CSV without a header (question, A, B, C, D, answer letter), the same with a header row,
  or rows ``{question, choices: [...], answer: int | letter}`` (the Hugging Face layout);
  response: the correct choice's text;
- MBPP: ``text`` / ``code`` (``test_list`` kept in the row);
- GSM8K ``question`` / ``answer`` and ``{"text"}`` files load through the ordinary readers.

`load_benchmark` returns None for anything else, so the ordinary readers handle it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dedup_audit.records import Dataset, Record, Sample, Turn

LETTERS = "ABCDEFGHIJ"


def _record(i: int, name: str, row: dict[str, Any], task: str, answer: str, source: str) -> Record:
    sample = Sample(turns=(Turn("user", task), Turn("assistant", answer)))
    return Record(i, f"{name}:{i}", row, sample, source)


def _choice_index(value: Any, n: int) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value < n else None
    text = str(value).strip()
    if len(text) == 1 and text.upper() in LETTERS[:n]:
        return LETTERS.index(text.upper())
    if text.isdigit() and int(text) < n:
        return int(text)
    return None


def _mmlu_rows(rows: Sequence[Sequence[str]]) -> list[tuple[str, list[str], int]] | None:
    """(question, choices, answer index) when every row is question, >= 2 choices, answer."""
    out = []
    for k, cells in enumerate(rows):
        if len(cells) < 4:
            return None
        answer = _choice_index(cells[-1], len(cells) - 2)
        if answer is None:
            header = [c.strip().lower() for c in cells]
            if k == 0 and header[0] in ("question", "prompt") and header[-1] == "answer":
                continue
            return None
        out.append((cells[0], list(cells[1:-1]), answer))
    return out or None


def _from_csv(path: Path) -> Dataset | None:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return None
    rows = [r for r in csv.reader(io.StringIO(text)) if r]
    items = _mmlu_rows(rows)
    if items is None:
        return None
    name = path.name
    records = [
        _record(
            i,
            name,
            {"question": q, "choices": ch, "answer": LETTERS[a]},
            q,
            ch[a],
            str(path),
        )
        for i, (q, ch, a) in enumerate(items)
    ]
    return Dataset(records, "benchmark:mmlu", "csv", (str(path),), name=name)


def _from_rows(rows: Sequence[Mapping[str, Any]], path: Path, file_type: str) -> Dataset | None:
    if not rows or not all(isinstance(r, Mapping) for r in rows):
        return None
    keys = set().union(*(r.keys() for r in rows))
    name = path.name
    records: list[Record] = []
    if {"prompt", "canonical_solution", "entry_point"} <= keys:
        kind = "humaneval"
        for i, r in enumerate(rows):
            prompt = str(r.get("prompt") or "")
            records.append(
                _record(
                    i,
                    name,
                    dict(r),
                    prompt,
                    prompt + str(r.get("canonical_solution") or ""),
                    str(path),
                )
            )
    elif {"question", "choices", "answer"} <= keys:
        kind = "mmlu"
        for i, r in enumerate(rows):
            choices = [str(c) for c in (r.get("choices") or [])]
            a = _choice_index(r.get("answer"), len(choices))
            if a is None:
                return None
            records.append(
                _record(i, name, dict(r), str(r.get("question") or ""), choices[a], str(path))
            )
    elif {"text", "code"} <= keys and "instruction" not in keys:
        kind = "mbpp"
        for i, r in enumerate(rows):
            records.append(
                _record(
                    i, name, dict(r), str(r.get("text") or ""), str(r.get("code") or ""), str(path)
                )
            )
    else:
        return None
    return Dataset(records, f"benchmark:{kind}", file_type, (str(path),), name=name)


def load_benchmark(path: Path) -> Dataset | None:
    """A native benchmark file as a Dataset (prompt = task, response = answer), or None when
    `path` is not one of the shapes in the module docstring."""
    if not path.is_file():
        return None
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _from_csv(path)
    if suffix in (".jsonl", ".json"):
        from dedup_audit.errors import DedupAuditError
        from dedup_audit.readers.jsonio import read_json, read_jsonl

        try:
            raw = (read_jsonl if suffix == ".jsonl" else read_json)(path)
        except DedupAuditError:
            return None
        return _from_rows(raw.rows, path, suffix.lstrip("."))
    return None
