"""A saved corpus index: `scan --save-index DIR` writes it, `scan NEW --index DIR` checks new
data against the old corpus without re-reading or re-sketching it.

One folder: `index.json` (schema, the configuration every sketch depends on, per-view shapes),
the old corpus's record ids (`ids.parquet`) and, per view, the arrays of its `SketchTable`
(exact hashes, shingle counts and hashes, MinHash signatures, band keys, and which records
each distinct text stands for) as .npy files that load as memory maps. It is written to a
temporary folder and renamed into place, so an interrupted save leaves no index behind.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

from dedup_audit.config import MinHashConfig, NormalizeConfig
from dedup_audit.engine.cross import SketchTable, gather
from dedup_audit.engine.kernels import Sketches, SketchParams
from dedup_audit.errors import ConfigError, InputError, OutputError

SCHEMA = "dedup-audit/index"
VERSION = 1
_ARRAYS = ("exact", "counts", "sig", "keys", "shingles", "records", "starts")


def _settings(normalize: NormalizeConfig, minhash: MinHashConfig) -> dict[str, Any]:
    """What every sketch depends on (the threshold through the band layout)."""
    mh = asdict(minhash)
    return {"normalize": asdict(normalize), "minhash": mh}


def save_index(
    path: Path,
    tables: dict[str, SketchTable],
    modes: dict[str, str],
    ids: list[str],
    normalize: NormalizeConfig,
    minhash: MinHashConfig,
    *,
    force: bool = False,
) -> None:
    """Write the index folder atomically (temporary sibling, then rename)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if path.exists() and not force:
        raise OutputError(f"{path}: an index already exists there; pass --force to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        meta: dict[str, Any] = {
            "schema": SCHEMA,
            "version": VERSION,
            "records": len(ids),
            **_settings(normalize, minhash),
            "views": {},
        }
        for view, table in tables.items():
            shingle_count = _save_table(tmp, view, table)
            meta["views"][view] = {
                "mode": modes[view],
                "params": table.params.fingerprint(),
                "rows": len(table),
                "shingles": shingle_count,
            }
        pq.write_table(pa.table({"id": pa.array(ids, pa.string())}), tmp / "ids.parquet")
        (tmp / "index.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


SAVE_CHUNK = 65_536
"""Table rows copied per step while saving: the index is written through memory maps in
chunks, so saving a spilled 1M-record view never gathers it in RAM."""


def _save_rows(path: Path, src: Any, rows: npt.NDArray[np.int64]) -> None:
    src = np.asarray(src)
    out = np.lib.format.open_memmap(path, "w+", src.dtype, (len(rows), *src.shape[1:]))
    for lo in range(0, len(rows), SAVE_CHUNK):
        out[lo : lo + SAVE_CHUNK] = src[rows[lo : lo + SAVE_CHUNK]]
    out.flush()
    del out


def _save_table(folder: Path, view: str, table: SketchTable) -> int:
    """One view's table as .npy files, its rows in order (compacted: row k of the files is
    row k of the table); returns the number of shingle hashes written."""
    sk, rows = table.sketches, np.asarray(table.rows, np.int64)
    for name in ("exact", "counts", "sig", "keys"):
        _save_rows(folder / f"{view}.{name}.npy", getattr(sk, name), rows)
    offsets = sk.offsets
    total = int((offsets[rows + 1] - offsets[rows]).sum())
    out = np.lib.format.open_memmap(folder / f"{view}.shingles.npy", "w+", np.uint64, (total,))
    pos = 0
    for lo in range(0, len(rows), SAVE_CHUNK):
        part = gather(sk.shingles, offsets, rows[lo : lo + SAVE_CHUNK])
        out[pos : pos + len(part)] = part
        pos += len(part)
    out.flush()
    del out
    for name, arr in (("records", table.records), ("starts", table.starts)):
        np.save(folder / f"{view}.{name}.npy", np.ascontiguousarray(arr), allow_pickle=False)
    return total


@dataclass
class LoadedIndex:
    path: Path
    records: int
    ids: list[str]
    tables: dict[str, SketchTable]
    modes: dict[str, str]

    @property
    def name(self) -> str:
        return self.path.name


def load_index(
    path: Path, normalize: NormalizeConfig, minhash: MinHashConfig, views: list[str]
) -> LoadedIndex:
    """Open an index for a scan with these settings; exit-2 errors name what differs."""
    try:
        meta = json.loads((path / "index.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(
            f"{path}: not a dedup-audit index (no index.json); build one with "
            "`dedup-audit scan DATA --save-index DIR`"
        ) from None
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(
            f"{path}: the index is corrupt ({exc}); rebuild it with --save-index"
        ) from exc
    if meta.get("schema") != SCHEMA or meta.get("version") != VERSION:
        raise InputError(
            f"{path}: not a dedup-audit index of version {VERSION} (schema {meta.get('schema')!r}, "
            f"version {meta.get('version')!r}); rebuild it with --save-index"
        )
    want = _settings(normalize, minhash)
    for section in ("normalize", "minhash"):
        for key, value in want[section].items():
            have = meta.get(section, {}).get(key)
            if have != value:
                flag = _FLAGS.get(key, key)
                raise ConfigError(
                    f"{path}: the index was built with {flag} {have!r} but this scan uses "
                    f"{value!r}; scan with the index's settings or rebuild the index"
                )
    missing = [v for v in views if v not in meta.get("views", {})]
    if missing:
        raise ConfigError(
            f"{path}: the index has the views {sorted(meta.get('views', {}))} but this scan "
            f"needs {missing}; scan with --views/--view among those or rebuild the index"
        )
    try:
        import pyarrow.parquet as pq

        ids = pq.read_table(path / "ids.parquet").column("id").to_pylist()
        tables: dict[str, SketchTable] = {}
        modes: dict[str, str] = {}
        for view in views:
            info = meta["views"][view]
            arr = {
                name: np.load(path / f"{view}.{name}.npy", mmap_mode="r", allow_pickle=False)
                for name in _ARRAYS
            }
            p = info["params"]
            params = SketchParams(
                p["char_mode"], p["ngram"], p["num_perm"], p["seed"], p["bands"], p["rows"]
            )
            rows = info["rows"]
            _check_shapes(path, view, arr, rows, params, info["shingles"], len(ids))
            sk = Sketches(
                arr["exact"], np.asarray(arr["counts"]), arr["sig"], arr["keys"], arr["shingles"]
            )
            tables[view] = SketchTable(
                params,
                sk,
                np.arange(rows, dtype=np.int64),
                np.asarray(arr["records"]),
                np.asarray(arr["starts"]),
            )
            modes[view] = info["mode"]
    except (ConfigError, InputError):
        raise
    except Exception as exc:  # a missing or truncated array file, a bad Parquet file
        raise InputError(
            f"{path}: the index is corrupt ({exc}); rebuild it with --save-index"
        ) from exc
    if len(ids) != meta.get("records"):
        raise InputError(f"{path}: the index is corrupt (ids do not match its record count)")
    return LoadedIndex(path, len(ids), ids, tables, modes)


_FLAGS = {
    "num_perm": "--num-perm",
    "ngram": "--ngram",
    "char_ngram": "--char-ngram",
    "shingle": "--shingle",
    "seed": "the MinHash seed",
    "threshold": "--threshold",
    "nfkc": "NFKC normalisation (--no-nfkc)",
    "lowercase": "lowercasing (--case-sensitive)",
    "whitespace": "whitespace collapsing (--keep-whitespace)",
    "punctuation": "--strip-punctuation",
}


def _check_shapes(
    path: Path,
    view: str,
    arr: dict[str, Any],
    rows: int,
    params: SketchParams,
    shingles: int,
    records: int,
) -> None:
    expect = {
        "exact": (rows, 2),
        "counts": (rows,),
        "sig": (rows, params.num_perm),
        "keys": (rows, params.bands),
        "shingles": (shingles,),
        "starts": (rows + 1,),
    }
    for name, shape in expect.items():
        if tuple(arr[name].shape) != shape:
            raise InputError(
                f"{path}: the index is corrupt ({view}.{name}.npy has shape "
                f"{tuple(arr[name].shape)}, expected {shape}); rebuild it with --save-index"
            )
    counts = np.asarray(arr["counts"])
    if int(counts.sum()) != shingles or (
        len(arr["records"]) and int(np.max(arr["records"])) >= records
    ):
        raise InputError(f"{path}: the index is corrupt ({view} arrays disagree); rebuild it")
