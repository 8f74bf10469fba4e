"""Progress bars on stderr for steps that can take more than a second."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def progress_bar(
    items: Iterable[T], *, desc: str, enabled: bool = True, total: int | None = None
) -> Iterator[T]:
    """tqdm on stderr when enabled and stderr is a terminal; a plain iterator otherwise, so
    logs, pipes and tests stay clean and outputs never depend on it."""
    if not enabled or not sys.stderr.isatty():
        yield from items
        return
    from tqdm.auto import tqdm

    yield from tqdm(items, desc=desc, total=total, file=sys.stderr, leave=False)
