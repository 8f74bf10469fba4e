"""DATA on object storage (s3://, gs://, hdfs://, file://), read through pyarrow filesystems.

With `--engine ray` the workers read the object itself (byte ranges of JSON Lines, row groups
of Parquet), so no node needs the file on its disk. The driver still needs the records to
decide what to keep and to write the report and the cleaned copy, so it streams one local copy
into the work folder first (kept there, so a resumed run does not download it again).
Credentials come from the environment, as pyarrow reads them (AWS_*, GOOGLE_APPLICATION_...).
"""

from __future__ import annotations

import atexit
import hashlib
import shutil
import tempfile
from pathlib import Path

from dedup_audit.errors import ConfigError, InputError

SCHEMES = ("s3", "gs", "gcs", "hdfs", "abfs", "file")
SUFFIXES = (".jsonl", ".parquet")
CHUNK = 8 * 2**20


def uri_of(arg: str | Path | None) -> str | None:
    """The URI a command-line argument names, or None for a local path. click's Path turns
    s3://b/k into s3:/b/k; that is undone here."""
    if arg is None:
        return None
    text = str(arg)
    for scheme in SCHEMES:
        mangled = f"{scheme}:/"
        if text.startswith(mangled):
            rest = text[len(mangled) :].lstrip("/")
            return f"{scheme}:///{rest}" if scheme == "file" else f"{scheme}://{rest}"
    return None


def fetch(uri: str, work_dir: str | None) -> Path:
    """A local copy of the object at `uri` (streamed; reused when already complete)."""
    from pyarrow import fs

    if not uri.endswith(SUFFIXES):
        raise ConfigError(
            f"{uri}: only JSON Lines (.jsonl) and Parquet (.parquet) objects are read from "
            "object storage; copy other files to a local disk"
        )
    try:
        filesystem, path = fs.FileSystem.from_uri(uri)
        info = filesystem.get_file_info(path)
    except Exception as err:  # pyarrow raises ArrowInvalid/OSError for bad URIs and auth
        raise InputError(f"{uri}: cannot open ({err})") from None
    if info.type != fs.FileType.File:
        raise InputError(f"{uri}: no such object")
    if work_dir and "://" not in work_dir:
        base = Path(work_dir)
    else:
        base = Path(tempfile.mkdtemp(prefix="dedup-audit-remote-"))
        atexit.register(shutil.rmtree, base, True)
    folder = base / f"remote-{hashlib.sha256(uri.encode()).hexdigest()[:12]}"
    local = folder / Path(path).name
    if local.exists() and local.stat().st_size == info.size:
        return local
    folder.mkdir(parents=True, exist_ok=True)
    partial = local.with_name(local.name + ".part")
    with filesystem.open_input_stream(path) as src, open(partial, "wb") as dst:
        while block := src.read(CHUNK):
            dst.write(block)
    partial.replace(local)
    return local
