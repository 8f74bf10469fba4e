"""A small, documented simulation of LLaMA-Factory SFT runs, for memorization-report tests.

Why a simulation: a real run takes minutes; the recorded real run lives in sample_data/run/ and
has its own tests. This one lets the tests control the truth (which rows are duplicated, whether
memorization exists at all) and check the report finds exactly that.

Model of a run (per content c, i.e. a row and its exact copies share c):
    loss_c(t, n) = d_c * g(t) * m(n)
    g(t) = 0.6 + 0.4 * exp(-t / (2 * steps_per_epoch))   smooth generalization, continuous in t
    m(n) = floor + (1 - floor) * exp(-rate * n)           memorization after n exposures of c
Each epoch reshuffles the rows (seeded) into batches of `batch_size`; a step's logged loss is the
batch mean times lognormal noise. Unique rows keep n fixed within an epoch (flat) and gain one
exposure at every boundary (the cliff); a row with k copies gains k exposures per epoch, some
inside the epoch. `memorize=False` gives m(n) = 1: no staircase. Held-out rows are never trained
on (n = 0) and give the eval loss. Field names follow LLaMA-Factory's trainer_log.jsonl.

Texts are real: rows are taken from LLaMA-Factory's alpaca_en_demo.json (see tests/data/SOURCES.md).
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ALPACA = Path("/work/shared/data/llamafactory/alpaca_en_demo.json")
LOCAL_ALPACA = Path(__file__).parent / "data" / "memo_alpaca_subset.json"


def load_alpaca(n: int) -> list[dict[str, str]]:
    """The first n distinct rows of alpaca_en_demo (copied subset committed beside this file)."""
    src = LOCAL_ALPACA if LOCAL_ALPACA.is_file() else ALPACA
    rows = json.loads(src.read_text(encoding="utf-8"))
    seen: set[str] = set()
    out = []
    for r in rows:
        sig = json.dumps(r, sort_keys=True)
        if sig not in seen:
            seen.add(sig)
            out.append(r)
        if len(out) == n:
            break
    return out


@dataclass
class SimRun:
    rows: list[dict[str, str]]  # the training file, duplicates included
    content: list[int]  # content id of every row
    copies: dict[int, int]  # content id -> number of rows carrying it
    near: set[int]  # content ids whose copies were lightly edited (near duplicates)
    heldout: list[dict[str, str]]
    log: list[dict[str, Any]] = field(default_factory=list)
    losses: list[dict[str, Any]] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)
    steps_per_epoch: int = 0


def _fmt(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{(s % 3600) // 60:02d}:{s % 60:02d}"


def simulate(
    *,
    n_unique: int = 64,
    dup_copies: tuple[int, ...] = (2,) * 6 + (3,) * 3 + (4,) * 2 + (6,) * 2,
    n_heldout: int = 16,
    epochs: int = 4,
    batch_size: int = 4,
    memorize: bool = True,
    lr_restart: bool = False,
    floor: float = 0.15,
    rate: float = 0.8,
    noise: float = 0.04,
    seed: int = 0,
    near_every: int = 3,
    round_epoch: bool = False,
) -> SimRun:
    rng = random.Random(seed)
    base = load_alpaca(n_unique + n_heldout)
    train_base, heldout = base[:n_unique], base[n_unique:]
    rows: list[dict[str, str]] = []
    content: list[int] = []
    near: set[int] = set()
    for c, row in enumerate(train_base):
        k = dup_copies[c] if c < len(dup_copies) else 1
        for j in range(k):
            r = dict(row)
            if j and c % near_every == 1:  # a near duplicate: same text plus a small edit
                r["output"] = r["output"] + " (see above)"
                near.add(c)
            rows.append(r)
            content.append(c)
    copies = {c: content.count(c) for c in set(content)}
    difficulty = {c: rng.uniform(1.8, 2.6) for c in range(n_unique + n_heldout)}
    spe = math.ceil(len(rows) / batch_size)
    total = spe * epochs

    def m(n: int) -> float:
        return floor + (1 - floor) * math.exp(-rate * n) if memorize else 1.0

    def g(t: float) -> float:
        return 0.6 + 0.4 * math.exp(-t / (2 * spe))

    def lr_at(step: int) -> float:
        warm = max(1, round(0.1 * total))
        if lr_restart:  # cosine restarting at each epoch: an lr jump at every boundary
            pos = ((step - 1) % spe) / spe
            return 5e-5 * 0.5 * (1 + math.cos(math.pi * pos))
        if step <= warm:
            return 5e-5 * step / warm
        return 5e-5 * 0.5 * (1 + math.cos(math.pi * (step - warm) / (total - warm)))

    exposures = dict.fromkeys(copies, 0)
    log: list[dict[str, Any]] = []
    losses: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    step = 0

    def checkpoint(epoch: int) -> None:
        t = epoch * spe
        for i, c in enumerate(content):
            loss = difficulty[c] * g(t) * m(exposures[c]) * math.exp(rng.gauss(0, 0.01))
            losses.append(
                {
                    "key": f"sim.json:{i}",
                    "epoch": float(epoch),
                    "step": t,
                    "checkpoint": f"checkpoint-{t}" if epoch else None,
                    "loss": round(loss, 6),
                    "split": "train",
                }
            )
        for h in range(len(heldout)):
            c = n_unique + h
            loss = difficulty[c] * g(t) * math.exp(rng.gauss(0, 0.01))
            losses.append(
                {
                    "key": f"heldout.json:{h}",
                    "epoch": float(epoch),
                    "step": t,
                    "checkpoint": f"checkpoint-{t}" if epoch else None,
                    "loss": round(loss, 6),
                    "split": "heldout",
                }
            )

    checkpoint(0)
    for ep in range(1, epochs + 1):
        order = list(range(len(rows)))
        rng.shuffle(order)
        for b in range(spe):
            batch = order[b * batch_size : (b + 1) * batch_size]
            step += 1
            vals = [difficulty[content[i]] * g(step) * m(exposures[content[i]]) for i in batch]
            for i in batch:
                exposures[content[i]] += 1
            loss = sum(vals) / len(vals) * math.exp(rng.gauss(0, noise))
            epoch_v = step / spe
            if round_epoch:
                epoch_v = round(epoch_v, 2)
            lr = lr_at(step)
            log.append(
                {
                    "current_steps": step,
                    "total_steps": total,
                    "loss": round(loss, 4),
                    "lr": lr,
                    "epoch": epoch_v,
                    "percentage": round(step / total * 100, 2),
                    "elapsed_time": _fmt(step * 2.5),
                    "remaining_time": _fmt((total - step) * 2.5),
                }
            )
            history.append(
                {
                    "epoch": epoch_v,
                    "grad_norm": 1.0,
                    "learning_rate": lr,
                    "loss": round(loss, 4),
                    "step": step,
                }
            )
        checkpoint(ep)
        ev = sum(difficulty[n_unique + h] * g(step) for h in range(len(heldout))) / max(
            1, len(heldout)
        )
        history.append({"epoch": float(ep), "eval_loss": round(ev, 4), "step": step})
    log.append(
        {
            "current_steps": total,
            "total_steps": total,
            "epoch": float(epochs),
            "percentage": 100.0,
            "elapsed_time": _fmt(total * 2.5),
            "remaining_time": "0:00:00",
        }
    )
    history.append(
        {"epoch": float(epochs), "step": total, "train_loss": 1.0, "train_runtime": total * 2.5}
    )
    state = {
        "best_model_checkpoint": None,
        "epoch": float(epochs),
        "global_step": total,
        "log_history": history,
        "logging_steps": 1,
        "max_steps": total,
        "num_train_epochs": epochs,
        "save_steps": spe,
        "eval_steps": spe,
        "train_batch_size": batch_size,
    }
    return SimRun(rows, content, copies, near, heldout, log, losses, state, spe)


def smooth_log(
    *, steps: int = 120, epochs: int = 4, seed: int = 1, noise: float = 0.04
) -> list[dict[str, Any]]:
    """A smooth exponential-decay curve with no boundary effect (the no-staircase control)."""
    rng = random.Random(seed)
    spe = steps // epochs
    out = []
    for s in range(1, steps + 1):
        loss = (1.2 + 1.6 * math.exp(-s / 45)) * math.exp(rng.gauss(0, noise))
        out.append(
            {
                "current_steps": s,
                "total_steps": steps,
                "loss": round(loss, 4),
                "lr": 5e-5 * 0.5 * (1 + math.cos(math.pi * s / steps)),
                "epoch": s / spe,
                "percentage": round(s / steps * 100, 2),
                "elapsed_time": _fmt(s),
                "remaining_time": _fmt(steps - s),
            }
        )
    out.append(
        {"current_steps": steps, "total_steps": steps, "epoch": float(epochs), "percentage": 100.0}
    )
    return out


def restart_log(
    *, steps_per_epoch: int = 40, epochs: int = 4, seed: int = 3, schedule: str = "restarts"
) -> list[dict[str, Any]]:
    """A run without memorization whose lr changes at every boundary: cosine restarting at each
    epoch ("restarts": the loss jumps UP when the lr does) or a x0.3 step decay per epoch ("step":
    the loss drops with the lr). The loss carries 0.4 x lr/peak: a high lr holds it up."""
    rng = random.Random(seed)
    total = steps_per_epoch * epochs
    out = []
    for s in range(1, total + 1):
        pos = ((s - 1) % steps_per_epoch) / steps_per_epoch
        if schedule == "restarts":
            lr = 5e-5 * 0.5 * (1 + math.cos(math.pi * pos))
        else:
            lr = 5e-5 * 0.3 ** ((s - 1) // steps_per_epoch)
        loss = (
            (1.2 + 1.0 * math.exp(-s / 60)) * (1 + 0.4 * lr / 5e-5) * math.exp(rng.gauss(0, 0.03))
        )
        out.append(
            {
                "current_steps": s,
                "total_steps": total,
                "loss": round(loss, 4),
                "lr": lr,
                "epoch": s / steps_per_epoch,
            }
        )
    return out


def write_run(run: SimRun, folder: Path, *, state: bool = True, losses: bool = True) -> Path:
    """Write the run the way LLaMA-Factory lays out output_dir, plus the dataset and losses."""
    folder.mkdir(parents=True, exist_ok=True)
    write_jsonl(folder / "trainer_log.jsonl", run.log)
    if state:
        (folder / "trainer_state.json").write_text(
            json.dumps(run.state, indent=2), encoding="utf-8"
        )
    for ep in range(1, int(run.state["num_train_epochs"]) + 1):
        (folder / f"checkpoint-{ep * run.steps_per_epoch}").mkdir(exist_ok=True)
    (folder / "sim.json").write_text(
        json.dumps(run.rows, indent=2, ensure_ascii=False), encoding="utf-8"
    )
    if losses:
        write_jsonl(folder / "losses.jsonl", run.losses)
    return folder


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
