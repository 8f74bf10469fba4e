"""Writers: atomic file output and writing kept records back in the input's own format."""

from __future__ import annotations

from dedup_audit.writers.atomic import (
    atomic_write_bytes,
    atomic_write_dir,
    atomic_write_text,
    check_output_path,
    write_jsonl,
)
from dedup_audit.writers.dataset import stage_dataset, target_type, write_dataset
from dedup_audit.writers.plan import OutputPlan, check_writable

__all__ = [
    "OutputPlan",
    "atomic_write_bytes",
    "atomic_write_dir",
    "atomic_write_text",
    "check_output_path",
    "check_writable",
    "stage_dataset",
    "target_type",
    "write_dataset",
    "write_jsonl",
]
