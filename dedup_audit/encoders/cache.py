"""On-disk embedding cache, so re-scanning (or scanning train then --against it) never re-encodes.

Key: (encoder name = model identity + backend + max_seq_length, blake2b of the text). Each model
gets its own folder of shard files; a run that encodes new texts appends one shard, written to a
temp file and renamed into place, so readers never see a partial file and a crash loses at most
the new shard. Shards are merged once there are many of them.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from dedup_audit.errors import OutputError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from dedup_audit.encoders import Encoder

ENV_CACHE_DIR = "DEDUP_AUDIT_CACHE"
_MAX_SHARDS = 32


def default_cache_dir(explicit: str | None = None) -> Path:
    """--cache-dir, else $DEDUP_AUDIT_CACHE, else ~/.cache/dedup-audit."""
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get(ENV_CACHE_DIR)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "dedup-audit"


def text_key(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


class EmbeddingCache:
    """Embeddings of one encoder, loaded from and appended to `<root>/embeddings/<model key>/`."""

    def __init__(self, root: Path, encoder_name: str) -> None:
        key = hashlib.blake2b(encoder_name.encode("utf-8"), digest_size=10).hexdigest()
        self.folder = root / "embeddings" / key
        self.encoder_name = encoder_name

    def _shards(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return sorted(self.folder.glob("shard-*.npz"))

    def load(self) -> dict[bytes, npt.NDArray[np.float32]]:
        """Every cached vector by text key. Unreadable shards (e.g. from a killed older version)
        are skipped: the cache is an optimisation, never a source of truth."""
        import numpy as np

        found: dict[bytes, npt.NDArray[np.float32]] = {}
        for shard in self._shards():
            try:
                with np.load(shard, allow_pickle=False) as data:
                    keys, vecs = data["keys"], data["vectors"]
            except (OSError, ValueError, KeyError):
                continue
            for k, v in zip(keys, vecs, strict=True):
                found[bytes(k)] = v
        return found

    def save(self, keys: Sequence[bytes], vectors: npt.NDArray[np.float32]) -> None:
        """Append one shard atomically; compact when shards pile up."""
        if not keys:
            return
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            (self.folder / "encoder.txt").write_text(self.encoder_name + "\n", encoding="utf-8")
            self._write_shard(keys, vectors)
            if len(self._shards()) > _MAX_SHARDS:
                self._compact()
        except OSError as exc:
            raise OutputError(
                f"cannot write the embedding cache in {self.folder}: {exc}. "
                "Set --cache-dir or $DEDUP_AUDIT_CACHE to a writable folder"
            ) from exc

    def _write_shard(self, keys: Sequence[bytes], vectors: npt.NDArray[np.float32]) -> Path:
        import numpy as np

        name = hashlib.blake2b(b"".join(keys), digest_size=8).hexdigest()
        final = self.folder / f"shard-{name}.npz"
        fd, tmp = tempfile.mkstemp(prefix=".shard-", suffix=".npz", dir=self.folder)
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, keys=np.array(list(keys), dtype="S16"), vectors=vectors)
            os.replace(tmp, final)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return final

    def _compact(self) -> None:
        import numpy as np

        old = self._shards()
        data = self.load()
        keys = sorted(data)
        merged = self._write_shard(keys, np.stack([data[k] for k in keys]).astype(np.float32))
        for shard in old:
            if shard != merged:
                shard.unlink(missing_ok=True)


class CachedEncoder:
    """Wraps an encoder: texts already embedded (by the same encoder name) are read from disk,
    only the rest reach the model, and identical texts are encoded once."""

    def __init__(self, inner: Encoder, root: Path) -> None:
        self.inner = inner
        self.cache = EmbeddingCache(root, inner.name)
        self.hits = 0
        self.misses = 0

    @property
    def name(self) -> str:
        return self.inner.name

    def encode(
        self, texts: Sequence[str], *, batch_size: int, progress: bool
    ) -> npt.NDArray[np.float32]:
        import numpy as np

        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        keys = [text_key(t) for t in texts]
        known = self.cache.load()
        missing: dict[bytes, str] = {}
        for k, t in zip(keys, texts, strict=True):
            if k not in known and k not in missing:
                missing[k] = t
        self.hits += len(texts) - sum(1 for k in keys if k in missing)
        self.misses += len(missing)
        if missing:
            new_keys = list(missing)
            vecs = self.inner.encode(
                [missing[k] for k in new_keys], batch_size=batch_size, progress=progress
            ).astype(np.float32)
            self.cache.save(new_keys, vecs)
            known.update(zip(new_keys, vecs, strict=True))
        return np.stack([known[k] for k in keys]).astype(np.float32)
