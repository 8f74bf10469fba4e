"""All of one command's outputs, checked before any work and committed together at the end.

Why: a run that fails half-way (a read-only folder, a file where a folder should be, a full
disk) must leave nothing behind, not a cleaned file without its record of removals. So a
command first declares every output (`file`, `folder`); each is checked at once, before the
data is even read. At the end every output is written to a temporary name next to its target
(`stage_*`), and only when all of them are written are they renamed into place (`commit`).
Anything that goes wrong before the renames removes the temporary files and any folder the
plan created, and says which output and why in one line.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dedup_audit.errors import OutputError
from dedup_audit.writers.atomic import check_output_path


def _existing_ancestor(path: Path) -> Path:
    """The nearest folder above `path` that exists (what a write must be able to create in)."""
    for parent in path.absolute().parents:
        if parent.exists():
            return parent
    return Path(path.absolute().anchor)


def _blocking_file(path: Path) -> Path | None:
    """A plain file standing where one of `path`'s folders has to be, if any."""
    for parent in reversed(path.absolute().parents):
        if parent.exists() and not parent.is_dir():
            return parent
    return None


def check_writable(path: Path, flag: str, *, folder: bool = False) -> None:
    """Refuse an output that cannot be written: a file where a folder must be (or a folder
    where a file must be), or a folder the user may not write in. One line, names the fix."""
    what = f"{flag} {path}"
    blocker = _blocking_file(path)
    if blocker is not None:
        raise OutputError(
            f"{what}: {blocker} is a file, not a folder; choose an output path outside it"
        )
    if path.exists():
        if folder and not path.is_dir():
            raise OutputError(f"{what}: is a file; give a folder path")
        if not folder and path.is_dir():
            raise OutputError(f"{what}: is a folder; give a file path")
    where = path if folder and path.is_dir() else _existing_ancestor(path)
    # a real probe, not os.access: it also catches read-only mounts, and root on a 0555 folder
    try:
        fd, probe = tempfile.mkstemp(prefix=".dedup-audit-probe.", dir=where)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(
            f"{what}: cannot write in {where} ({exc.strerror or exc}); choose a writable folder"
        ) from None


@dataclass
class _Staged:
    target: Path
    temp: Path
    is_dir: bool


@dataclass
class OutputPlan:
    """The outputs of one command run. See the module docstring for the protocol."""

    inputs: Sequence[Path]
    force: bool = False
    _files: dict[Path, str] = field(default_factory=dict)
    _staged: list[_Staged] = field(default_factory=list)
    _made: list[Path] = field(default_factory=list)
    _staging_dirs: list[Path] = field(default_factory=list)

    def _claim(self, path: Path, flag: str) -> None:
        key = path.absolute()
        for other, other_flag in self._files.items():
            if other == key:
                raise OutputError(
                    f"{flag} {path}: the same path is also {other_flag}; give different outputs"
                )
        self._files[key] = flag

    def file(self, path: str | Path, flag: str, *, may_be_dir: bool = False) -> Path:
        """Declare one output file (or a save_to_disk folder when `may_be_dir`)."""
        path = Path(path)
        self._claim(path, flag)
        check_writable(path, flag, folder=may_be_dir and path.is_dir())
        try:
            check_output_path(path, self.inputs, self.force)
        except OutputError as exc:
            raise OutputError(f"{flag} {exc}") from None
        return path

    def index_folder(self, path: str | Path | None, flag: str) -> Path | None:
        """Declare a folder the library fills itself (an index): it must be a folder, empty
        unless --force, and writable. None (the option was not given) declares nothing."""
        if path is None:
            return None
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise OutputError(f"{path}: {flag} must be a folder, and a file is there")
        if path.exists() and any(path.iterdir()) and not self.force:
            raise OutputError(f"{path}: {flag} already holds an index; pass --force to replace it")
        check_writable(path, flag, folder=True)
        return path

    def folder(self, path: str | Path, flag: str, names: Iterable[str]) -> Path:
        """Declare an output folder that will hold `names` (checked for overwrite)."""
        path = Path(path)
        check_writable(path, flag, folder=True)
        for inp in self.inputs:
            inp = Path(inp)
            if inp.exists() and path.exists() and os.path.samefile(path, inp):
                raise OutputError(f"{flag} {path}: is an input; write elsewhere")
        for name in names:
            target = path / name
            self._claim(target, flag)
            if any(
                Path(inp).exists() and target.exists() and os.path.samefile(target, inp)
                for inp in self.inputs
            ):
                raise OutputError(f"{flag} {path}: would overwrite the input {target}")
            if target.exists() and not self.force:
                raise OutputError(
                    f"{flag} {path}: {name} already exists there; pass --force to overwrite"
                )
        return path

    def _mkdirs(self, folder: Path) -> None:
        missing = []
        for p in [folder, *folder.parents]:
            if p.exists():
                break
            missing.append(p)
        folder.mkdir(parents=True, exist_ok=True)
        self._made.extend(reversed(missing))

    def _temp(self, target: Path, *, directory: bool) -> Path:
        self._mkdirs(target.parent)
        if directory:
            return Path(
                tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
            )
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
        return Path(name)

    def stage_path(self, target: str | Path, *, directory: bool = False) -> Path:
        """A temporary path next to `target` to write it to; renamed at `commit`. With
        `directory` the temp is a fresh empty folder (a save_to_disk dataset)."""
        target = Path(target)
        try:
            tmp = self._temp(target, directory=directory)
        except OSError as exc:
            raise OutputError(
                f"{target}: cannot write ({exc.strerror or exc}); nothing was written"
            ) from None
        self._staged.append(_Staged(target, tmp, directory))
        return tmp

    def stage_bytes(self, target: str | Path, data: bytes) -> None:
        tmp = self.stage_path(target)
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o644)
        except OSError as exc:
            raise OutputError(
                f"{target}: cannot write ({exc.strerror or exc}); nothing was written"
            ) from None

    def stage_text(self, target: str | Path, text: str) -> None:
        self.stage_bytes(target, text.encode("utf-8"))

    def stage_folder(self, folder: str | Path, fill: Callable[[Path], object]) -> None:
        """Run `fill(temp_folder)`; each file it writes there becomes folder/<name> at commit."""
        folder = Path(folder)
        tmp = self.stage_path(folder / ".dedup-audit-staging", directory=True)
        self._staged.pop()
        try:
            fill(tmp)
            for entry in sorted(tmp.iterdir()):
                if entry.name.startswith("."):
                    continue
                self._staged.append(_Staged(folder / entry.name, entry, entry.is_dir()))
        except OSError as exc:
            name = f" {Path(exc.filename).name}" if exc.filename else ""
            raise OutputError(
                f"{folder}: cannot write{name} ({exc.strerror or exc}); nothing was written"
            ) from None
        finally:
            self._staging_dirs.append(tmp)

    def commit(self) -> None:
        """Rename every staged output into place (an existing folder target is swapped)."""
        try:
            for s in self._staged:
                if s.is_dir and s.target.exists():
                    backup = Path(
                        tempfile.mkdtemp(prefix=f".{s.target.name}.old.", dir=s.target.parent)
                    )
                    backup.rmdir()
                    os.replace(s.target, backup)
                    os.replace(s.temp, s.target)
                    shutil.rmtree(backup, ignore_errors=True)
                else:
                    os.replace(s.temp, s.target)
        except OSError as exc:
            self.discard()
            raise OutputError(
                f"cannot write the outputs ({exc}); nothing else was changed"
            ) from None
        for d in self._staging_dirs:
            shutil.rmtree(d, ignore_errors=True)
        self._staged.clear()

    def discard(self) -> None:
        """Remove every temporary file and every folder this plan created."""
        for s in self._staged:
            if s.is_dir:
                shutil.rmtree(s.temp, ignore_errors=True)
            else:
                s.temp.unlink(missing_ok=True)
        for d in self._staging_dirs:
            shutil.rmtree(d, ignore_errors=True)
        self._staged.clear()
        for d in reversed(self._made):
            with contextlib.suppress(OSError):  # not empty: something else wrote there
                d.rmdir()
        self._made.clear()

    def __enter__(self) -> OutputPlan:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is not None:
            self.discard()
