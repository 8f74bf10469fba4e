"""Reference sets (eval or benchmark files) for the contamination check: benchmarks keep their
own fields, so a well-known question/answer pair of keys is mapped when no mapping is given."""

from __future__ import annotations

import re
from pathlib import Path

from dedup_audit.errors import ConfigError, FormatError
from dedup_audit.formats.benchmark import load_benchmark
from dedup_audit.readers.load import load_dataset
from dedup_audit.records import Dataset

TASK_KEYS = ("question", "prompt", "problem", "instruction", "query", "input", "text")


def load_reference(path: Path, columns: dict[str, str] | None) -> Dataset:
    """A reference (eval/benchmark) set. Benchmarks keep their own fields, so when no mapping is
    given and the format is unknown, a well-known question/answer pair of keys is mapped."""
    if columns is None:
        native = load_benchmark(path)  # HumanEval, MMLU, MBPP: no mapping needed
        if native is not None:
            return native
    try:
        return load_dataset(path, columns=columns)
    except FormatError as exc:
        if columns is not None:
            raise
        # The reader names the mapping it would use ("pass --column prompt=question ...").
        suggested = re.search(r"--column prompt=(\S+) --column response=(\S+)", str(exc))
        if suggested is not None and "KEY" not in (suggested[1], suggested[2]):
            return load_dataset(path, columns={"prompt": suggested[1], "response": suggested[2]})
        keys = re.search(r"keys found: (.*?)(;|$)", str(exc))
        found = keys[1] if keys else "(none)"
        for key in TASK_KEYS:  # a question column alone is still a reference to compare
            if re.search(rf"'{key}'", found):
                return load_dataset(path, columns={"prompt": key})
        raise ConfigError(
            f"{path}: no text column to compare against (keys found: {found}); name it with "
            "--against-column prompt=KEY"
        ) from None
