"""Readers: files (json, jsonl, parquet, csv, arrow, save_to_disk folders, txt) -> Dataset.

`load_dataset` is the one entry point; LLaMA-Factory's dataset_info.json is resolved by
`dataset_info.resolve`. Heavy libraries (pyarrow, datasets) load only for the file types that
need them.
"""

from __future__ import annotations

from dedup_audit.readers.load import data_files, file_type_of, load_dataset

__all__ = ["data_files", "file_type_of", "load_dataset"]
