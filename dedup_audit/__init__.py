"""dedup-audit: audit LLM fine-tuning datasets for duplication and explain memorization.

from dedup_audit import scan, clean
result = scan("data.json")
print(result.duplicate_ratio, result.removed_by_reason())
clean("data.json", "data.clean.json")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "CleanResult",
    "ScanConfig",
    "ScanResult",
    "__version__",
    "clean",
    "load_dataset",
    "scan",
]

if TYPE_CHECKING:
    from dedup_audit.cleaning import CleanResult, clean
    from dedup_audit.config import ScanConfig
    from dedup_audit.pipeline import ScanResult, scan
    from dedup_audit.readers import load_dataset


def __getattr__(name: str) -> Any:
    """Lazy re-exports: `import dedup_audit` stays cheap (no datasets/torch import)."""
    if name in ("scan", "ScanResult"):
        from dedup_audit import pipeline

        return getattr(pipeline, name)
    if name in ("clean", "CleanResult"):
        from dedup_audit import cleaning

        return getattr(cleaning, name)
    if name == "ScanConfig":
        from dedup_audit.config import ScanConfig

        return ScanConfig
    if name == "load_dataset":
        from dedup_audit.readers import load_dataset

        return load_dataset
    raise AttributeError(name)
