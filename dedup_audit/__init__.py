"""dedup-audit: audit LLM fine-tuning datasets for duplication and explain memorization.

    import dedup_audit as da
    audit = da.scan("data.json", threshold=0.85)  # a path, a list of dicts, a DataFrame, an HF Dataset
    audit.duplicate_ratio, audit.removed_by_reason(), audit.clusters(view="prompt", kind="conflicting")
    result = audit.clean(keep_by="longest")       # result.kept / result.removed (reason, kept_id, evidence)
    audit.save("out/scan"); same = da.load("out/scan")
    stricter = audit.rethreshold(near=0.9)
    memo = da.memorization("saves/run", data="data.json", losses="losses.jsonl")

Everything loads lazily: `import dedup_audit` imports no numpy, torch or datasets, and a
MinHash-only scan never imports torch, sentence-transformers, faiss, onnx or matplotlib.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "Audit",
    "CleanResult",
    "Cleaned",
    "Memorization",
    "ScanConfig",
    "ScanResult",
    "__version__",
    "clean",
    "load",
    "load_dataset",
    "memorization",
    "scan",
]

if TYPE_CHECKING:
    from dedup_audit.api import Audit, Cleaned, Memorization, load, memorization, scan
    from dedup_audit.cleaning import CleanResult, clean
    from dedup_audit.config import ScanConfig
    from dedup_audit.pipeline import ScanResult
    from dedup_audit.readers import load_dataset

_HOMES = {
    "Audit": "dedup_audit.api",
    "Cleaned": "dedup_audit.api",
    "Memorization": "dedup_audit.api",
    "load": "dedup_audit.api",
    "memorization": "dedup_audit.api",
    "scan": "dedup_audit.api",
    "CleanResult": "dedup_audit.cleaning",
    "clean": "dedup_audit.cleaning",
    "ScanConfig": "dedup_audit.config",
    "ScanResult": "dedup_audit.pipeline",
    "load_dataset": "dedup_audit.readers",
}


def __getattr__(name: str) -> Any:
    """Lazy re-exports: `import dedup_audit` stays cheap (no numpy, datasets or torch)."""
    if name not in _HOMES:
        raise AttributeError(f"module 'dedup_audit' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_HOMES[name]), name)


def __dir__() -> list[str]:
    return sorted(__all__)
