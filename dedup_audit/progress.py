"""Progress bars on stderr for steps that can take more than a second."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

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


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def stage_bar(*, total: int | None, desc: str, unit: str = "it") -> Any:
    """A manually advanced bar (`update(n)`, `close()`) for a stage that processes a stream:
    shows the rate (e.g. records/s) and an ETA; a no-op when stderr is not a terminal."""
    if not sys.stderr.isatty():
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, unit_scale=True, file=sys.stderr, leave=False)
