"""Optional features and the extras that install them. The core (read, exact + MinHash scan,
clean, rethreshold, calibrate) needs none of them; a feature whose extra is missing stops before
any work with exit code 2 and the pip line that installs it.

    pip install 'dedup-audit[semantic]'   sentence embeddings + FAISS (--semantic, the embedding
                                          contamination check)
    pip install 'dedup-audit[train]'      torch + transformers + peft (`losses`: per-sample losses)
    pip install 'dedup-audit[report]'     matplotlib (the memorization report's plots)
"""

from __future__ import annotations

import importlib.util

from dedup_audit.errors import MissingDependencyError

EXTRAS: dict[str, tuple[str, ...]] = {
    "semantic": ("sentence_transformers", "faiss"),
    "train": ("torch", "transformers"),
    "report": ("matplotlib",),
}
"""Extra -> the modules a feature of it imports (checked without importing them)."""


def install_line(extra: str) -> str:
    return f"pip install 'dedup-audit[{extra}]'"


def installed(module: str) -> bool:
    """Whether `module` can be imported, without importing it (torch takes seconds)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def require(extra: str, feature: str) -> None:
    """Raise MissingDependencyError (exit code 2) naming the pip line when `extra` is missing.

    Examples:
        >>> require("report", "the memorization report's plots")  # matplotlib installed: no-op
    """
    missing = [m for m in EXTRAS[extra] if not installed(m)]
    if missing:
        raise MissingDependencyError(
            f"{feature} needs the [{extra}] extra ({', '.join(missing)} not installed): "
            f"{install_line(extra)}"
        )
