"""Columnar files: parquet, Arrow IPC (file or stream, e.g. HF cache files) and HF
`save_to_disk` folders. pyarrow and datasets are imported only when such a file is read.

Rows come out as plain Python dicts in schema order; the schema (or HF features) is kept so
written rows get the same column types back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dedup_audit.errors import InputError
from dedup_audit.readers.common import RawFile


def is_hf_disk(path: Path) -> bool:
    """A `Dataset.save_to_disk` / `DatasetDict.save_to_disk` folder."""
    return path.is_dir() and (
        (path / "state.json").is_file() or (path / "dataset_dict.json").is_file()
    )


def _rows(table: Any, path: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = table.to_pylist()
    if not rows:
        raise InputError(f"{path}: the table has no rows; nothing to audit")
    return rows


def read_parquet(path: Path) -> RawFile:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as err:
        raise InputError(f"{path}: not a readable parquet file ({err})") from None
    return RawFile(path, "parquet", _rows(table, path), {"schema": table.schema})


def read_arrow(path: Path) -> RawFile:
    import pyarrow as pa

    try:
        with pa.memory_map(str(path)) as source:
            try:
                table = pa.ipc.open_file(source).read_all()
                kind = "file"
            except pa.ArrowInvalid:
                source.seek(0)
                table = pa.ipc.open_stream(source).read_all()
                kind = "stream"
    except (pa.ArrowException, OSError) as err:
        raise InputError(
            f"{path}: not an Arrow IPC file or stream ({err}); write it with pyarrow.ipc or datasets"
        ) from None
    return RawFile(path, "arrow", _rows(table, path), {"schema": table.schema, "arrow_kind": kind})


def read_hf_disk(path: Path) -> RawFile:
    """A save_to_disk folder. A DatasetDict must have one split, or a `train` split."""
    import datasets

    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception as err:  # datasets raises many types for a damaged folder
        raise InputError(f"{path}: not a readable save_to_disk folder ({err})") from None
    split: str | None = None
    if isinstance(loaded, datasets.DatasetDict):
        names = list(loaded.keys())
        if len(names) == 1:
            split = names[0]
        elif "train" in names:
            split = "train"
        else:
            raise InputError(
                f"{path}: a DatasetDict with splits {names} and no 'train'; save the split to audit "
                f"on its own with Dataset.save_to_disk"
            )
        ds = loaded[split]
    else:
        ds = loaded
    if not isinstance(ds, datasets.Dataset):
        raise InputError(f"{path}: expected a Dataset, got {type(ds).__name__}")
    rows: list[dict[str, Any]] = ds.to_list()
    if not rows:
        raise InputError(f"{path}: the dataset has no rows; nothing to audit")
    return RawFile(path, "hf_disk", rows, {"features": ds.features, "split": split})
