"""Shared pieces of the semantic tests: a fake encoder for exact unit tests, and one embedding
cache/artifact folder per test session so the real model's ONNX export happens once."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from dedup_audit.config import SemanticConfig

DATA = Path(__file__).resolve().parent / "data"


class FakeEncoder:
    """Bag-of-words hashed into 256 buckets, L2-normalised: cosine tracks word overlap, exactly
    and deterministically. Counts calls and texts so tests can see cache hits."""

    def __init__(self, dim: int = 256) -> None:
        self.dim = dim
        self.calls = 0
        self.texts_seen = 0

    @property
    def name(self) -> str:
        return f"fake-bow-{self.dim}"

    def encode(
        self, texts: Sequence[str], *, batch_size: int, progress: bool
    ) -> npt.NDArray[np.float32]:
        self.calls += 1
        self.texts_seen += len(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in re.findall(r"\w+", t.lower()):
                h = int.from_bytes(hashlib.blake2b(w.encode(), digest_size=4).digest(), "big")
                out[i, h % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One cache dir (embeddings + exported model artifacts) for all real-model tests."""
    yield tmp_path_factory.mktemp("dedup-audit-cache")


def real_cfg(cache: Path, **kw: object) -> SemanticConfig:
    """The shipped defaults (packaged all-MiniLM-L6-v2, backend auto = CPU default), cached in
    the session folder."""
    return SemanticConfig(enabled=True, cache_dir=str(cache), **kw)  # type: ignore[arg-type]
