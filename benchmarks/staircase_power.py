"""Detection power and false-staircase rate of `detect_staircase`, calibrated on simulated runs.

Why a simulation: only a simulation knows the truth (where the steps are and how big), and the
false-staircase rate has to be measured over hundreds of runs that have no memorization at all.

Model of an SFT run (per-epoch reshuffle, batch 8, HF-style logging):
- every content c has a difficulty d_c (lognormal); a row's loss when trained on is
  d_c * gen(t) * mem_c, times a lognormal batch noise on the batch mean;
- gen(t) = 0.55 + 0.45 * exp(-cumulative lr / C): smooth generalization, steep in epoch 1;
- mem_c = floor + (1 - floor) * exp(-rate * sum of lr/peak over c's earlier exposures): each time a
  sample is trained on, it is memorized a little (scaled by the lr then). A unique row is seen once
  per epoch, so its loss steps down at every boundary; a row with k copies gets k exposures per
  epoch. rate = 0 is the no-memorization control;
- the learning rate: cosine with 5% warmup, cosine restarting at every epoch, or step decay
  (x0.5 per epoch); the loss also carries `kappa * lr/peak` (a higher lr holds the loss up), so a
  restart raises it and a step decay drops it at the boundary, with no memorization;
- logging every `logging_steps` steps logs the mean loss of those steps (as the HF Trainer does).

Truth for a memorization run: the noise-free expected logged loss E(t) = gen(t) x the mean of
d_c * mem_c over the rows not yet seen in the epoch (the batch is drawn from those). The true step
at a boundary is the jump the detector's own local model fits on E(t); its size is given in units
of the per-step noise sd sigma (logged loss - E(t)) around the boundary. A "true step" is one of
at least `--min-true` sigma (default 1): a step as large as the noise of a single logged point.

    .venv/bin/python benchmarks/staircase_power.py              # ~1-2 min on 2 cores
    .venv/bin/python benchmarks/staircase_power.py --runs 100   # quicker, coarser
"""

from __future__ import annotations

import argparse
import itertools
import math
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np

from dedup_audit.training.staircase import StaircaseConfig, boundary_split, detect_staircase
from dedup_audit.training.trainer_log import LogEntry, TrainingLog

PEAK = 2e-3


@dataclass(frozen=True)
class Setting:
    name: str
    rate: float = 0.0  # memorization per exposure (0 = control)
    rows: int = 244
    dup_share: float = 0.5  # share of rows that are copies of another row
    epochs: int = 5
    batch: int = 8
    spread: float = 0.25  # sd of log difficulty (the batch-composition noise)
    noise: float = 0.03  # extra lognormal noise on each batch mean
    schedule: str = "cosine"  # cosine | restarts | step
    kappa: float = 0.0  # loss held up by kappa x lr/peak
    logging_steps: int = 1


def lr_schedule(kind: str, total: int, spe: int) -> np.ndarray:
    steps = np.arange(1, total + 1, dtype=float)
    if kind == "restarts":
        pos = ((steps - 1) % spe) / spe
        return PEAK * 0.5 * (1 + np.cos(np.pi * pos))
    if kind == "step":
        return PEAK * 0.5 ** ((steps - 1) // spe)
    warm = max(1, round(0.05 * total))
    cos = PEAK * 0.5 * (1 + np.cos(np.pi * (steps - warm) / max(1, total - warm)))
    return np.where(steps <= warm, PEAK * steps / warm, cos)


def simulate(s: Setting, rng: np.random.Generator) -> tuple[TrainingLog, list[float], int]:
    """A training log, the noise-free expected logged loss E(t) per logged point, and spe."""
    n_unique = round(s.rows * (1 - s.dup_share))
    content = list(range(n_unique))
    while len(content) < s.rows:  # copies: x2, x3, x5 of random unique rows
        c = int(rng.integers(n_unique))
        content += [c] * int(rng.choice([1, 2, 4]))
    content_arr = np.array(content[: s.rows])
    d = np.exp(rng.normal(math.log(6.0), s.spread, n_unique))
    spe = math.ceil(s.rows / s.batch)
    total = spe * s.epochs
    lr = lr_schedule(s.schedule, total, spe)
    cum = np.cumsum(lr) / PEAK
    gen = 0.55 + 0.45 * np.exp(-cum / (0.6 * spe))
    expo = np.zeros(n_unique)  # lr-weighted exposures per content
    step_loss = np.empty(total)
    expect = np.empty(total)
    t = 0
    for _ in range(s.epochs):
        order = rng.permutation(s.rows)
        unseen = np.ones(s.rows, dtype=bool)
        for b in range(spe):
            batch = order[b * s.batch : (b + 1) * s.batch]
            mem = 0.2 + 0.8 * np.exp(-s.rate * expo)
            held = 1 + s.kappa * lr[t] / PEAK
            expect[t] = (
                gen[t] * held * float(np.mean(d[content_arr[unseen]] * mem[content_arr[unseen]]))
            )
            vals = d[content_arr[batch]] * mem[content_arr[batch]] * gen[t] * held
            step_loss[t] = float(vals.mean()) * math.exp(rng.normal(0, s.noise))
            np.add.at(expo, content_arr[batch], lr[t] / PEAK)
            unseen[batch] = False
            t += 1
    entries: list[LogEntry] = []
    expected: list[float] = []
    ls = s.logging_steps
    for end in range(ls, total + 1, ls):
        sl = slice(end - ls, end)
        entries.append(
            LogEntry(
                step=end,
                epoch=end / spe,
                loss=float(step_loss[sl].mean()),
                lr=float(lr[end - 1]),
            )
        )
        expected.append(float(expect[sl].mean()))
    log = TrainingLog(
        path="sim",
        source="llamafactory",
        train=entries,
        total_steps=total,
        num_train_epochs=float(s.epochs),
        logging_steps=ls,
    )
    return log, expected, spe


def true_steps(log: TrainingLog, expected: list[float], cfg: StaircaseConfig) -> dict[int, float]:
    """Per boundary: the detector's local model fitted on E(t), in units of the noise sd."""
    noisy: dict[int, list[LogEntry]] = defaultdict(list)
    clean: dict[int, list[LogEntry]] = defaultdict(list)
    spe = log.total_steps / (log.num_train_epochs or 1) if log.total_steps else 1
    for e, ex in zip(log.train, expected, strict=True):
        k = max(1, math.ceil(e.step / spe - 1e-9))
        noisy[k].append(e)
        clean[k].append(LogEntry(e.step, e.epoch, ex, e.lr))
    out = {}
    for k in sorted(noisy):
        if k + 1 not in noisy:
            continue
        res = boundary_split(clean, k, cfg, 3)
        if res is None:
            continue
        resid = [
            (e.loss or 0.0) - (c.loss or 0.0)
            for j in (k, k + 1)
            for e, c in zip(noisy[j], clean[j], strict=True)
        ]
        sigma = float(np.std(resid, ddof=1)) if len(resid) > 2 else float("nan")
        out[k] = res.fit.jump / sigma if sigma > 0 else float("nan")
    return out


CONTROLS = [
    Setting("smooth, low noise", spread=0.12, noise=0.02),
    Setting("smooth, high noise", spread=0.35, noise=0.06),
    Setting("smooth, 8 epochs, 456 rows", epochs=8, rows=456),
    Setting("lr restarts every epoch", schedule="restarts", kappa=0.4),
    Setting("step-decay lr (x0.5 per epoch)", schedule="step", kappa=0.4),
    Setting("coarse logging (every 10 steps)", logging_steps=10, epochs=8),
]

MEMO = [
    Setting("memorization, 244 rows, 5 ep", rate=0.6),
    Setting("memorization, 244 rows, 8 ep", rate=0.4, epochs=8),
    Setting("memorization, 456 rows, 4 ep", rate=0.5, rows=456, epochs=4),
    Setting("memorization, noisy", rate=0.7, spread=0.35, noise=0.06),
    Setting("memorization, weak", rate=0.25, epochs=6),
    Setting("memorization, no duplicates", rate=0.5, dup_share=0.0),
    Setting("memorization, 3 epochs", rate=0.6, epochs=3),
]


def run(
    settings: list[Setting], runs: int, seed: int, cfg: StaircaseConfig
) -> list[dict[str, Any]]:
    rows = []
    for i, s in enumerate(settings):
        rng = np.random.default_rng([seed, i])
        tally: dict[str, Any] = defaultdict(int)
        bins: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for _ in range(runs):
            log, expected, _spe = simulate(s, rng)
            st = detect_staircase(log, cfg)
            tally["runs"] += 1
            tally["run_staircase"] += st["verdict"] == "staircase"
            tally["run_rise"] += st["verdict"] == "rise"
            for b in st["boundaries"]:
                tally["boundaries"] += 1
                tally[b["verdict"]] += 1
            if s.rate > 0:
                truth = true_steps(log, expected, cfg)
                for b in st["boundaries"]:
                    z = truth.get(b["boundary"])
                    if z is None or not math.isfinite(z):
                        continue
                    label = _bin(z)
                    bins[label][0] += 1
                    bins[label][1] += b["verdict"] == "staircase"
                    if b["boundary"] >= 2:
                        bins["from2:" + label][0] += 1
                        bins["from2:" + label][1] += b["verdict"] == "staircase"
        for v in ("staircase", "rise", "inconclusive", "smooth"):
            tally.setdefault(v, 0)
        rows.append({"setting": s, **tally, "bins": dict(bins)})
    return rows


BIN_EDGES = (0.5, 1.0, 1.5, 2.0, 3.0)


def _bin(z: float) -> str:
    if z < BIN_EDGES[0]:
        return f"<{BIN_EDGES[0]}"
    for lo, hi in itertools.pairwise(BIN_EDGES):
        if z < hi:
            return f"{lo}-{hi}"
    return f">={BIN_EDGES[-1]}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--runs", type=int, default=300, help="simulated runs per setting")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--min-true", type=float, default=1.0, help="true step: jump >= this x sigma")
    args = ap.parse_args()
    cfg = StaircaseConfig()
    t0 = time.perf_counter()
    ctrl = run(CONTROLS, args.runs, args.seed, cfg)
    print("Controls (no memorization): false staircase per run and per boundary\n")
    print(
        "| control | runs | runs called staircase | boundaries | staircase | rise | inconclusive | smooth |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    worst = 0.0
    for r in ctrl:
        rate = r["run_staircase"] / r["runs"]
        worst = max(worst, rate)
        print(
            f"| {r['setting'].name} | {r['runs']} | {r['run_staircase']} ({100 * rate:.1f}%) | "
            f"{r['boundaries']} | {r['staircase']} | {r['rise']} | {r['inconclusive']} | {r['smooth']} |"
        )
    memo = run(MEMO, args.runs, args.seed + 1, cfg)
    print("\nMemorization runs: share of boundaries called staircase, by true step size (sigma)\n")
    labels = (
        [f"<{BIN_EDGES[0]}"]
        + [f"{lo}-{hi}" for lo, hi in itertools.pairwise(BIN_EDGES)]
        + [f">={BIN_EDGES[-1]}"]
    )
    cuts = (args.min_true, 1.5, 2.0)
    print(
        "| setting | runs | "
        + " | ".join(labels)
        + " | "
        + " | ".join(f"epoch 2+, >= {c:g} sigma" for c in cuts)
        + " |"
    )
    print("|---|---:|" + "---:|" * (len(labels) + len(cuts)))
    found = dict.fromkeys(cuts, 0)
    total = dict.fromkeys(cuts, 0)
    for r in memo:
        cells = []
        for lab in labels:
            n, k = r["bins"].get(lab, [0, 0])
            cells.append(f"{k}/{n}" if n else "-")
        for c in cuts:
            n2 = sum(n for lab, (n, _) in r["bins"].items() if _from2(lab, c))
            k2 = sum(k for lab, (_, k) in r["bins"].items() if _from2(lab, c))
            found[c] += k2
            total[c] += n2
            cells.append(f"{k2}/{n2} = {100 * k2 / n2:.0f}%" if n2 else "-")
        print(f"| {r['setting'].name} | {r['runs']} | " + " | ".join(cells) + " |")
    print()
    for c in cuts:
        print(
            f"True steps >= {c:g} sigma from epoch 2 on: {found[c]}/{total[c]} = "
            f"{100 * found[c] / max(1, total[c]):.1f}% found"
        )
    print(
        f"Worst control: {100 * worst:.1f}% of runs called staircase "
        f"({time.perf_counter() - t0:.0f} s)"
    )


def _from2(label: str, cut: float) -> bool:
    return label.startswith("from2:") and _lo(label[6:]) >= cut - 1e-9


def _lo(label: str) -> float:
    if label.startswith("<"):
        return 0.0
    if label.startswith(">="):
        return float(label[2:])
    return float(label.split("-")[0])


if __name__ == "__main__":
    main()
