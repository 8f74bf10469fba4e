"""Pretraining text: one document per row (`text` column, LLaMA-Factory `columns: {prompt: text}`,
or a .txt line). The document is the assistant turn, so the prompt view is empty and the
response and full views are the text itself."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dedup_audit.formats.spec import Spec, require_some_text, text_field
from dedup_audit.records import Sample, Turn

DEFAULT_COLUMNS: dict[str, str] = {"prompt": "text"}


def to_sample(row: Mapping[str, Any], spec: Spec, where: str) -> Sample:
    cols = spec.columns
    parts = [text_field(row, cols["prompt"], where, required=True)]
    if cols.get("query"):  # LLaMA-Factory joins prompt and query into the document
        parts.append(text_field(row, cols["query"], where, required=False))
    text = "\n".join(p for p in parts if p)
    require_some_text([text], where, [cols[r] for r in ("prompt", "query") if r in cols])
    return Sample(turns=(Turn("assistant", text),))
