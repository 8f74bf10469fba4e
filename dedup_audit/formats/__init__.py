"""Dataset formats: one module per family turns a row into a normalised Sample.

`detect_spec` / `spec_from_columns` settle how rows map to Samples (a Spec); `build_sample`
applies it to one row. Readers own files; formats never see them, only rows and a `where`
string ("file: row N") that every error message starts with.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dedup_audit.formats import alpaca, messages, pairwise, sharegpt, text
from dedup_audit.formats.detect import check_columns, detect_spec, key_union, spec_from_columns
from dedup_audit.formats.spec import COLUMN_ROLES, FORMATS, TAG_NAMES, Spec
from dedup_audit.records import Sample

__all__ = [
    "COLUMN_ROLES",
    "FORMATS",
    "TAG_NAMES",
    "Spec",
    "build_sample",
    "check_columns",
    "detect_spec",
    "key_union",
    "spec_from_columns",
]


def build_sample(row: Mapping[str, Any], spec: Spec, where: str) -> Sample:
    """The Sample of one row under `spec`; InputError (starting with `where`) when it is bad."""
    if spec.format == "pairwise":
        return pairwise.to_sample(row, spec, where)
    if spec.base == "alpaca":
        return alpaca.to_sample(row, spec, where)
    if spec.base == "text":
        return text.to_sample(row, spec, where)
    if spec.base == "messages":
        return messages.to_sample(row, spec, where)
    return sharegpt.to_sample(row, spec, where)
