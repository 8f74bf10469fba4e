"""Read training logs: LLaMA-Factory's trainer_log.jsonl and HF's trainer_state.json.

trainer_log.jsonl (LLaMA-Factory's LogCallback, one JSON object per `on_log`):
    {"current_steps": 12, "total_steps": 60, "loss": 2.31, "lr": 4.8e-05, "epoch": 0.4,
     "percentage": 20.0, "elapsed_time": "0:00:31", "remaining_time": "0:02:04"}
Older versions write `learning_rate` instead of `lr`; evaluation lines carry `eval_loss` and no
`loss`; the last line is the end-of-training summary (no `loss`). A resumed run appends to the same
file, so steps repeat or go backwards: the last occurrence of a step wins and the resume is
recorded, because a resume at an epoch boundary is one of the things that fakes a staircase.

trainer_state.json (HF Trainer): `log_history` holds the same entries with `step`, `loss`,
`learning_rate`, `epoch`, `eval_loss`; plus `max_steps`, `num_train_epochs`, `logging_steps`,
`save_steps`, `eval_steps`, used to place checkpoint and eval events.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dedup_audit.errors import InputError


class LogNotFoundError(InputError):
    """A run folder without any training log (a partial report can still be made); unlike a log
    that exists but cannot be read, which is an error naming the file and line."""


@dataclass(frozen=True)
class LogEntry:
    step: int
    epoch: float | None
    loss: float | None = None
    lr: float | None = None
    eval_loss: float | None = None
    grad_norm: float | None = None
    line: int = 0


@dataclass(frozen=True)
class Resume:
    """A point where the log restarts at or below a step it had already logged."""

    line: int
    resumed_at_step: int  # first step logged after the resume
    previous_max_step: int


@dataclass
class TrainingLog:
    path: str
    source: str  # "llamafactory" | "hf_trainer_state"
    train: list[LogEntry]  # finite training-loss entries, sorted by step, one per step
    evals: list[LogEntry] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    total_steps: int | None = None
    num_train_epochs: float | None = None
    logging_steps: int | None = None
    save_steps: int | None = None
    eval_steps: int | None = None
    train_batch_size: int | None = None
    resumes: list[Resume] = field(default_factory=list)
    duplicate_steps: int = 0
    nonfinite: list[str] = field(default_factory=list)
    lr_field: str | None = None  # which name the learning rate had

    @property
    def has_lr(self) -> bool:
        return any(e.lr is not None for e in self.train)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "source": self.source,
            "train_entries": len(self.train),
            "eval_entries": len(self.evals),
            "first_step": self.train[0].step if self.train else None,
            "last_step": self.train[-1].step if self.train else None,
            "total_steps": self.total_steps,
            "num_train_epochs": self.num_train_epochs,
            "logging_steps": self.logging_steps,
            "save_steps": self.save_steps,
            "eval_steps": self.eval_steps,
            "lr_field": self.lr_field,
            "resumes": [
                {
                    "line": r.line,
                    "resumed_at_step": r.resumed_at_step,
                    "previous_max_step": r.previous_max_step,
                }
                for r in self.resumes
            ],
            "duplicate_steps": self.duplicate_steps,
            "nonfinite_losses": len(self.nonfinite),
            "nonfinite_examples": self.nonfinite[:5],
            "summary": self.summary,
        }


def _f(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _entries(
    raw: list[tuple[int, dict[str, Any]]], path: str, step_key: str
) -> tuple[
    list[LogEntry], list[LogEntry], dict[str, Any], list[Resume], int, list[str], str | None
]:
    """Split raw log objects into train and eval entries, dedupe steps, find resumes."""
    train: dict[int, LogEntry] = {}
    evals: dict[int, LogEntry] = {}
    summary: dict[str, Any] = {}
    resumes: list[Resume] = []
    nonfinite: list[str] = []
    dup = 0
    max_step = -1
    prev_step = -1
    lr_field: str | None = None
    for line, obj in raw:
        step_v = _f(obj.get(step_key))
        if step_v is None:
            continue
        step = int(step_v)
        has_loss = "loss" in obj
        has_eval = "eval_loss" in obj
        if not has_loss and not has_eval:
            # LLaMA-Factory's final summary line, HF's train_runtime entry, or other metrics.
            summary = {k: v for k, v in obj.items() if isinstance(v, (int, float, str))}
            continue
        if has_loss:
            if step <= prev_step:  # the log went back: a resumed (or restarted) run appended
                resumes.append(Resume(line, step, max_step))
            prev_step = step
            max_step = max(max_step, step)
        lr = _f(obj.get("lr"))
        if lr is not None:
            lr_field = "lr"
        else:
            lr = _f(obj.get("learning_rate"))
            if lr is not None:
                lr_field = lr_field or "learning_rate"
        entry = LogEntry(
            step=step,
            epoch=_f(obj.get("epoch")),
            loss=_f(obj.get("loss")),
            lr=lr,
            eval_loss=_f(obj.get("eval_loss")),
            grad_norm=_f(obj.get("grad_norm")),
            line=line,
        )
        if has_loss:
            if entry.loss is None or not math.isfinite(entry.loss):
                nonfinite.append(f"{path}:{line}: step {step} loss={obj.get('loss')!r}")
                train.pop(step, None)
                continue
            if step in train:
                dup += 1
            train[step] = entry
        if has_eval and entry.eval_loss is not None and math.isfinite(entry.eval_loss):
            evals[step] = entry
    return (
        [train[s] for s in sorted(train)],
        [evals[s] for s in sorted(evals)],
        summary,
        resumes,
        dup,
        nonfinite,
        lr_field,
    )


def read_trainer_log(path: str | Path) -> TrainingLog:
    """Read LLaMA-Factory's trainer_log.jsonl (any version). Raises InputError when unreadable."""
    p = Path(path)
    raw: list[tuple[int, dict[str, Any]]] = []
    try:
        fh = p.open("r", encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{p}: cannot read trainer log ({exc.strerror})") from exc
    with fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                # A run killed mid-write leaves a truncated last line; anything else is an error.
                rest = fh.read()
                if rest.strip():
                    raise InputError(
                        f"{p}:{n}: not valid JSON; trainer_log.jsonl needs one object per line"
                    ) from None
                break
            if isinstance(obj, dict):
                raw.append((n, obj))
    train, evals, summary, resumes, dup, nonfinite, lr_field = _entries(
        raw, str(p), "current_steps"
    )
    total = None
    for _, obj in raw:
        t = _f(obj.get("total_steps"))
        if t:
            total = int(t)
    log = TrainingLog(
        path=str(p),
        source="llamafactory",
        train=train,
        evals=evals,
        summary=summary,
        total_steps=total,
        resumes=resumes,
        duplicate_steps=dup,
        nonfinite=nonfinite,
        lr_field=lr_field,
    )
    if len(train) >= 2:
        diffs = sorted({b.step - a.step for a, b in itertools.pairwise(train)})
        log.logging_steps = diffs[0] if diffs else None
    return log


def read_trainer_state(path: str | Path) -> TrainingLog:
    """Read HF's trainer_state.json (`log_history` plus the run's step settings)."""
    p = Path(path)
    try:
        state = json.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"{p}: cannot read trainer state ({exc.strerror})") from exc
    except json.JSONDecodeError as exc:
        raise InputError(f"{p}: not valid JSON ({exc.msg})") from exc
    if not isinstance(state, dict) or not isinstance(state.get("log_history"), list):
        raise InputError(f"{p}: no 'log_history' list; is this a HF trainer_state.json?")
    raw = [(i + 1, e) for i, e in enumerate(state["log_history"]) if isinstance(e, dict)]
    train, evals, summary, resumes, dup, nonfinite, lr_field = _entries(raw, str(p), "step")

    def _i(name: str) -> int | None:
        v = _f(state.get(name))
        return int(v) if v else None

    return TrainingLog(
        path=str(p),
        source="hf_trainer_state",
        train=train,
        evals=evals,
        summary=summary,
        total_steps=_i("max_steps"),
        num_train_epochs=_f(state.get("num_train_epochs")),
        logging_steps=_i("logging_steps"),
        save_steps=_i("save_steps"),
        eval_steps=_i("eval_steps"),
        train_batch_size=_i("train_batch_size"),
        resumes=resumes,
        duplicate_steps=dup,
        nonfinite=nonfinite,
        lr_field=lr_field,
    )


def find_trainer_state(run_dir: Path) -> Path | None:
    """The run's trainer_state.json: the top-level one, else the latest checkpoint's."""
    top = run_dir / "trainer_state.json"
    if top.is_file():
        return top
    ckpts = checkpoint_dirs(run_dir)
    for _, ck in reversed(ckpts):
        cand = ck / "trainer_state.json"
        if cand.is_file():
            return cand
    return None


def checkpoint_dirs(run_dir: Path) -> list[tuple[int, Path]]:
    """checkpoint-<step> folders, sorted by step."""
    out = []
    for d in run_dir.glob("checkpoint-*"):
        tail = d.name.rsplit("-", 1)[-1]
        if d.is_dir() and tail.isdigit():
            out.append((int(tail), d))
    return sorted(out)


def read_log(path: str | Path) -> TrainingLog:
    """A run folder or a log file -> TrainingLog.

    In a folder, trainer_log.jsonl is preferred (it has every logged step); trainer_state.json
    then supplies what the JSONL lacks (eval entries, save/eval/logging steps, epochs).
    """
    p = Path(path)
    if p.is_dir():
        jsonl = p / "trainer_log.jsonl"
        state_path = find_trainer_state(p)
        if jsonl.is_file():
            log = read_trainer_log(jsonl)
            if state_path is not None:
                _complete(log, read_trainer_state(state_path))
            return log
        if state_path is not None:
            return read_trainer_state(state_path)
        raise LogNotFoundError(
            f"{p}: no trainer_log.jsonl or trainer_state.json here or in checkpoint-*/; point "
            "`report` at the training output_dir, or give --losses for a per-sample report"
        )
    if not p.exists():
        raise InputError(f"{p}: not found")
    if p.suffix == ".jsonl":
        return read_trainer_log(p)
    if p.suffix == ".json":
        return read_trainer_state(p)
    raise InputError(f"{p}: expected trainer_log.jsonl, trainer_state.json or a run folder")


def _complete(log: TrainingLog, state: TrainingLog) -> None:
    if not log.evals and state.evals:
        log.evals = state.evals
    for name in ("num_train_epochs", "save_steps", "eval_steps", "train_batch_size"):
        if getattr(log, name) is None:
            setattr(log, name, getattr(state, name))
    if log.total_steps is None:
        log.total_steps = state.total_steps
    if state.logging_steps:
        log.logging_steps = state.logging_steps
