"""Model artifacts built locally from the model folder and cached under ``<cache dir>/models/``.

The faster CPU backends (the ONNX export and its int8 graph) are derived from the
sentence-transformers folder on first use rather than downloaded. Building is slow and can be
interrupted, so each artifact is built in a temp folder and renamed into place, keyed by the
model's identity so a changed model never reuses a stale artifact.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from dedup_audit.encoders.model_source import ModelSource


def artifact_dir(cache_dir: Path, source: ModelSource, kind: str) -> Path:
    """Where the `kind` artifact of `source` lives (a hash of the model identity + kind)."""
    key = hashlib.blake2b(source.identity.encode("utf-8"), digest_size=8).hexdigest()
    return cache_dir / "models" / f"{key}-{kind}"


def build_once(final: Path, build: Callable[[Path], None]) -> Path:
    """Build an artifact folder into a temp folder beside `final`, then rename it into place, so
    a crash never leaves a half-written model and concurrent builders do not clash."""
    if (final / "meta.json").is_file():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        build(tmp)
        try:
            os.replace(tmp, final)
        except OSError:
            if not (final / "meta.json").is_file():
                shutil.rmtree(final, ignore_errors=True)
                os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final
