"""Progress bars on stderr for steps that can take more than a second, and one ETA for the run.

Why a run tracker: a scan is a sequence of stages (per view: MinHash signatures, LSH banding,
verification, embeddings), each with its own bar. Bars named only `embed[onnx]` that each
restart at 0% say neither where the run is nor when it ends, and the first bar's own ETA
covers only that bar. So a command declares the stages it will run (`run_progress`); every
`progress_bar` then names its stage and view ("[4/8] embeddings, full view") and shows the
run's ETA: the time left in this stage plus, for each stage still to come, how long the same
kind of stage took on an earlier view. Until every kind has run once the ETA says so, instead
of guessing. Bars only appear when stderr is a terminal, so logs, pipes and tests stay clean
and outputs never depend on them.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence, Sized
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")

STAGE_LABELS = {
    "loading": "reading rows",
    "sketch": "hashing and MinHash, every view",
    "minhash": "MinHash signatures",
    "lsh": "LSH banding",
    "verify": "verifying candidates",
    "embed": "embeddings",
    "against": "contamination check",
}


def _split(desc: str) -> tuple[str, str]:
    """ "minhash[full]" -> ("minhash", "full"); "loading" -> ("loading", "")."""
    kind, _, rest = desc.partition("[")
    return kind, rest.rstrip("]")


def format_seconds(seconds: float) -> str:
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


@dataclass
class Stage:
    kind: str
    view: str | None
    started: float | None = None
    seconds: float | None = None

    @property
    def label(self) -> str:
        name = STAGE_LABELS.get(self.kind, self.kind)
        return f"{name}, {self.view} view" if self.view else name


@dataclass
class RunProgress:
    """The planned stages of one run, in order, and what each took."""

    stages: list[Stage]
    clock: Callable[[], float] = time.monotonic
    current: Stage | None = None
    extra: list[Stage] = field(default_factory=list)

    @classmethod
    def plan(
        cls, stages: Sequence[tuple[str, str | None]], clock: Callable[[], float] = time.monotonic
    ) -> RunProgress:
        return cls([Stage(kind, view) for kind, view in stages], clock)

    def begin(self, desc: str) -> str:
        """Start the stage a bar called `desc` belongs to; return the label it shows. A bar
        that names no view (the ONNX encoder's `embed[onnx]`) takes the next planned view."""
        kind, arg = _split(desc)
        views = {s.view for s in self.stages}
        view = arg if arg in views else None
        for i, stage in enumerate(self.stages):
            if (
                stage.started is None
                and stage.kind == kind
                and (view is None or stage.view == view)
            ):
                stage.started = self.clock()
                self.current = stage
                return f"[{i + 1}/{len(self.stages)}] {stage.label}"
        extra = Stage(kind, view or (arg or None), started=self.clock())
        self.extra.append(extra)
        self.current = extra
        return extra.label

    def end(self) -> None:
        if self.current is not None and self.current.started is not None:
            self.current.seconds = self.clock() - self.current.started
        self.current = None

    def eta(self, done: float = 0.0) -> str:
        """Time left for the run. `done` is the current stage's finished fraction."""
        now = self.clock()
        left = 0.0
        if self.current is not None and self.current.started is not None:
            spent = now - self.current.started
            if done > 0:
                left += spent / done - spent
            else:
                known = self._typical(self.current.kind)
                if known is None:
                    return "run ETA: after this stage"
                left += max(0.0, known - spent)
        for stage in self.stages:
            if stage.started is None:
                known = self._typical(stage.kind)
                if known is None:
                    return f"run ETA: after the first {STAGE_LABELS.get(stage.kind, stage.kind)}"
                left += known
        return f"run ETA {format_seconds(left)}"

    def _typical(self, kind: str) -> float | None:
        took = [s.seconds for s in self.stages if s.kind == kind and s.seconds is not None]
        return sum(took) / len(took) if took else None


_RUN: RunProgress | None = None


@contextmanager
def run_progress(
    stages: Sequence[tuple[str, str | None]], *, enabled: bool = True
) -> Iterator[RunProgress | None]:
    """Declare the stages of a run so every progress bar inside names its stage and shows the
    run's ETA (see the module docstring)."""
    global _RUN
    previous = _RUN
    _RUN = RunProgress.plan(stages) if enabled else None
    try:
        yield _RUN
    finally:
        _RUN = previous


def scan_stages(
    views: Sequence[str], *, near: bool, semantic: bool
) -> list[tuple[str, str | None]]:
    """The stages a scan runs, in the order pipeline.scan runs them."""
    stages: list[tuple[str, str | None]] = [("loading", None), ("sketch", None)]
    if near:
        for view in views:
            stages += [("lsh", view), ("verify", view)]
    if semantic:
        stages += [("embed", view) for view in views]
    return stages


def progress_bar(
    items: Iterable[T], *, desc: str, enabled: bool = True, total: int | None = None
) -> Iterator[T]:
    """tqdm on stderr when enabled and stderr is a terminal; a plain iterator otherwise, so
    logs, pipes and tests stay clean and outputs never depend on it. Inside `run_progress` the
    bar is named after its stage and view and shows the run's ETA."""
    if not enabled or not sys.stderr.isatty():
        yield from items
        return
    from tqdm.auto import tqdm

    run = _RUN
    if run is None:
        yield from tqdm(items, desc=desc, total=total, file=sys.stderr, leave=False)
        return
    label = run.begin(desc)
    if total is None and isinstance(items, Sized):
        total = len(items)
    # the bar's own time-left is left out: the run's ETA (postfix) is the one to read
    fmt = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]"
    bar = tqdm(
        items,
        desc=label,
        total=total,
        file=sys.stderr,
        leave=False,
        bar_format=fmt if total else None,
    )
    last = 0.0
    try:
        for n, item in enumerate(bar):
            now = time.monotonic()
            if now - last > 0.5:
                last = now
                frac = n / bar.total if bar.total else 0.0
                bar.set_postfix_str(run.eta(frac), refresh=False)
            yield item
    finally:
        bar.close()
        run.end()


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def stage_bar(*, total: int | None, desc: str, unit: str = "it") -> Any:
    """A manually advanced bar (`update(n)`, `close()`) for a stage that processes a stream:
    shows the rate (e.g. records/s) and that stage's ETA; a no-op when stderr is not a
    terminal."""
    if not sys.stderr.isatty():
        return _NoBar()
    from tqdm.auto import tqdm

    label = _RUN.begin(desc) if _RUN is not None else desc
    bar = tqdm(total=total, desc=label, unit=unit, unit_scale=True, file=sys.stderr, leave=False)
    if _RUN is None:
        return bar
    run = _RUN
    close = bar.close

    def finish() -> None:
        close()
        run.end()

    bar.close = finish  # type: ignore[method-assign]
    return bar
