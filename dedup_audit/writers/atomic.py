"""Safe output: temp file in the target's folder, fsync, os.replace. A failed write leaves no
partial file, and an output that is (or lies inside) an input is refused before any work."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from dedup_audit.errors import OutputError


def _same(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def check_output_path(out: Path, inputs: Sequence[Path], force: bool) -> None:
    """Refuse an output that would overwrite or land inside an input, or that exists already
    without `force`. Called before any work so nothing is computed for a doomed write."""
    out = Path(out)
    target = out.resolve()
    for inp in inputs:
        inp = Path(inp)
        if _same(out, inp):
            raise OutputError(
                f"{out}: the output is the input file {inp}; write to another path "
                f"(inputs are never modified)"
            )
        if inp.is_dir() and inp.resolve() in target.parents:
            raise OutputError(
                f"{out}: the output lies inside the input folder {inp}; write elsewhere"
            )
        if out.is_dir() and target in inp.resolve().parents:
            raise OutputError(f"{out}: the output folder holds the input {inp}; write elsewhere")
    if out.exists() and not force:
        raise OutputError(f"{out} exists; pass --force to overwrite")


def _temp_in(folder: Path, name: str, *, directory: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if directory:
        return Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=folder))
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
    os.close(fd)
    return Path(tmp)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` atomically (readers see the old file or the new one, never half)."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path} is a folder; give a file path")
    tmp = _temp_in(path.parent, path.name)
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """UTF-8 text, written atomically; newlines are written as given."""
    atomic_write_bytes(path, text.encode("utf-8"))


def write_jsonl(path: str | Path, rows: Iterable[Mapping[str, Any]]) -> None:
    """One JSON object per line (UTF-8, not escaped), written atomically."""
    text = "".join(json.dumps(dict(r), ensure_ascii=False) + "\n" for r in rows)
    atomic_write_text(path, text)


def atomic_write_dir(path: str | Path, fill: Callable[[Path], None]) -> None:
    """Build a folder with `fill(temp_folder)` next to `path`, then swap it in. An existing
    folder is moved aside first and deleted only after the new one is in place."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{path} is a file; give a folder path for a save_to_disk dataset")
    tmp = _temp_in(path.parent, path.name, directory=True)
    try:
        fill(tmp)
        backup = None
        if path.exists():
            backup = _temp_in(path.parent, path.name + ".old", directory=True)
            backup.rmdir()
            os.replace(path, backup)
        os.replace(tmp, path)
        if backup is not None:
            shutil.rmtree(backup, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
