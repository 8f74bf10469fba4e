"""Detect the epoch-boundary loss staircase in a training log, with the figures behind the verdict.

Per boundary between epoch k and k+1:

- `drop` = mean loss over the last part of epoch k minus the mean over the first part of k+1
  (`window` = fraction of an epoch's logged points, at least `min_points` each side);
- `trend_drop` = the drop the within-epoch linear trend predicts across the gap between those two
  windows: -slope x (mean step of the k+1 window - mean step of the k window). The slope is the
  common slope of a local model fitted on the second half of epoch k and the first half of k+1:
  loss = a + slope * step + jump * [step after the boundary], so the cliff cannot inflate the slope;
- `ratio` = drop / trend_drop (null when the trend predicts no drop at all);
- significance: t = -jump / se(jump) from that OLS fit (df = n - 3), one-sided p for "the loss fell
  at the boundary more than the trend explains".

A boundary is `staircase` when p < alpha, the drop is positive, ratio >= min_ratio (or the trend is
flat/rising) and its excess drop beats the same statistic at mid-epoch placebo points (which sees
curvature and noise, never a boundary); `smooth` when p >= 0.05 or ratio < smooth_ratio; otherwise
`inconclusive`. A learning-rate jump or a resumed run at the boundary turns `staircase` into
`inconclusive`, because either can drop the loss without any memorization.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from statistics import median
from typing import Any

from dedup_audit.errors import ConfigError
from dedup_audit.memorization.trainer_log import LogEntry, TrainingLog


@dataclass(frozen=True)
class StaircaseConfig:
    window: float = 0.25  # fraction of an epoch's logged points compared on each side
    min_points: int = 3  # fewer logged points than this on a side -> inconclusive
    alpha: float = 0.01
    min_ratio: float = 3.0
    smooth_ratio: float = 1.5
    placebo_factor: float = 2.0  # boundary excess must beat placebo level x this

    def __post_init__(self) -> None:
        if not 0.0 < self.window <= 0.5:
            raise ConfigError(f"staircase window must be in (0, 0.5], got {self.window}")
        if self.min_points < 2:
            raise ConfigError(f"min_points must be >= 2, got {self.min_points}")


def _p(x: float | None) -> float | None:
    """p-values keep 3 significant digits (a tiny p must not round to 0)."""
    if x is None or not math.isfinite(x):
        return None
    return float(f"{x:.3g}")


def _r(x: float | None, nd: int = 6) -> float | None:
    if x is None or not math.isfinite(x):
        return None
    return round(float(x), nd)


def steps_per_epoch(entries: list[LogEntry], log: TrainingLog | None = None) -> float | None:
    """Optimizer steps per epoch, fitted as step ~ spe x epoch (robust to epochs rounded to 0.01)."""
    pts = [(e.step, e.epoch) for e in entries if e.epoch is not None and e.epoch > 0]
    if len(pts) >= 2:
        spe = sum(s * s for s, _ in pts) / sum(s * ep for s, ep in pts)
    elif log is not None and log.total_steps and log.num_train_epochs:
        spe = log.total_steps / log.num_train_epochs
    else:
        return None
    if abs(spe - round(spe)) < 0.01 * spe:
        spe = float(round(spe))
    return spe if spe > 0 else None


def assign_epochs(entries: list[LogEntry], spe: float | None) -> list[int]:
    """1-based epoch index of every entry. The entry logged at epoch == k ends epoch k.

    Exact fractional epochs are used directly. When the log rounded epochs to 0.01 and an epoch
    has more than 50 steps, rounding cannot tell the last step of k from the first of k+1, so
    the step count per epoch decides instead.
    """
    epochs = [e.epoch for e in entries]
    rounded = all(ep is None or abs(ep * 100 - round(ep * 100)) < 1e-6 for ep in epochs)
    out = []
    for e in entries:
        if spe is not None and (e.epoch is None or (rounded and spe > 50)):
            idx = math.ceil(e.step / spe - 1e-6)
        elif e.epoch is not None:
            idx = math.ceil(e.epoch - 1e-6)
        else:
            idx = 1
        out.append(max(1, idx))
    return out


def _ols_jump(xs: list[float], ys: list[float], after: list[int]) -> dict[str, float] | None:
    """OLS of y = a + s*x + J*after; returns slope, jump, se_jump, residual sd, df."""
    import numpy as np

    n = len(xs)
    if n < 4 or sum(after) == 0 or sum(after) == n:
        return None
    x = np.asarray(xs, dtype=float)
    x = x - x.mean()
    design = np.column_stack([np.ones(n), x, np.asarray(after, dtype=float)])
    y = np.asarray(ys, dtype=float)
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - design @ coef
    df = n - 3
    sigma2 = float(resid @ resid) / df if df > 0 else float("nan")
    try:
        cov = sigma2 * np.linalg.inv(design.T @ design)
    except np.linalg.LinAlgError:
        return None
    se = math.sqrt(max(float(cov[2, 2]), 0.0))
    return {
        "slope": float(coef[1]),
        "jump": float(coef[2]),
        "se_jump": se,
        "sigma": math.sqrt(sigma2) if sigma2 == sigma2 else float("nan"),
        "df": float(df),
    }


def _one_sided_p(t: float, df: float) -> float:
    from scipy import stats

    if not math.isfinite(t):
        return 0.0 if t > 0 else 1.0
    return float(stats.t.sf(t, df))


def _compare(
    before: list[LogEntry], after: list[LogEntry], cfg: StaircaseConfig, per_epoch: int
) -> dict[str, Any] | None:
    """The drop/trend/significance figures for a split of two consecutive runs of points."""
    nw = max(cfg.min_points, round(cfg.window * per_epoch))
    if len(before) < cfg.min_points or len(after) < cfg.min_points:
        return None
    a = before[-nw:]
    b = after[:nw]
    hb, ha = before, after
    fit = _ols_jump(
        [e.step for e in hb + ha],
        [e.loss or 0.0 for e in hb + ha],
        [0] * len(hb) + [1] * len(ha),
    )
    if fit is None:
        return None
    mean_a = sum(e.loss or 0.0 for e in a) / len(a)
    mean_b = sum(e.loss or 0.0 for e in b) / len(b)
    drop = mean_a - mean_b
    gap = sum(e.step for e in b) / len(b) - sum(e.step for e in a) / len(a)
    trend = -fit["slope"] * gap
    eps = 1e-12 + 1e-9 * abs(mean_a)
    ratio = drop / trend if trend > eps else None
    se = fit["se_jump"]
    t = -fit["jump"] / se if se > 0 else (math.inf if fit["jump"] < 0 else -math.inf)
    p = _one_sided_p(t, fit["df"])
    return {
        "n_before": len(a),
        "n_after": len(b),
        "n_fit": len(hb) + len(ha),
        "mean_before": mean_a,
        "mean_after": mean_b,
        "drop": drop,
        "relative_drop": drop / mean_a if mean_a else None,
        "gap_steps": gap,
        "slope_per_step": fit["slope"],
        "trend_drop": trend,
        "ratio": ratio,
        "excess_drop": drop - trend,
        "jump": -fit["jump"],
        "se_jump": se,
        "t": t,
        "df": fit["df"],
        "p_value": p,
        "noise_sd": fit["sigma"],
    }


def _lr_jumps(entries: list[LogEntry], idx: list[int]) -> tuple[float, dict[int, dict[str, Any]]]:
    """Typical within-epoch lr step and, per boundary k, the lr just before and after it."""
    within = [
        abs((entries[i].lr or 0.0) - (entries[i - 1].lr or 0.0))
        for i in range(1, len(entries))
        if idx[i] == idx[i - 1] and entries[i].lr is not None and entries[i - 1].lr is not None
    ]
    typical = median(within) if within else 0.0
    out: dict[int, dict[str, Any]] = {}
    for i in range(1, len(entries)):
        if idx[i] != idx[i - 1] and entries[i].lr is not None and entries[i - 1].lr is not None:
            before, after = entries[i - 1].lr or 0.0, entries[i].lr or 0.0
            change = after - before
            rel = abs(change) / before if before > 0 else (math.inf if change else 0.0)
            jump = abs(change) > 3 * typical + 1e-15 and rel > 0.05
            out[idx[i - 1]] = {
                "lr_before": before,
                "lr_after": after,
                "lr_relative_change": _r(rel) if math.isfinite(rel) else None,
                "lr_jump": jump,
            }
    return typical, out


def _smooth_within(values: list[float], width: int) -> list[float]:
    """Centered rolling mean that never reaches past the ends (used per epoch only)."""
    n = len(values)
    out = []
    for i in range(n):
        lo, hi = max(0, i - width // 2), min(n, i + width // 2 + 1)
        seg = values[lo:hi]
        out.append(sum(seg) / len(seg))
    return out


def detect_staircase(
    log: TrainingLog,
    config: StaircaseConfig | None = None,
    *,
    events: dict[str, list[int]] | None = None,
) -> dict[str, Any]:
    """The staircase section of report.json: per-boundary figures, verdicts and plot series.

    `events` maps "save" / "eval" to the steps where those happened (checkpoint folders, eval
    entries, save_steps), so drops aligned with them are flagged.
    """
    cfg = config or StaircaseConfig()
    events = {k: sorted(set(v)) for k, v in (events or {}).items()}
    entries = [e for e in log.train if e.loss is not None]
    out: dict[str, Any] = {
        "config": asdict(cfg),
        "verdict": "inconclusive",
        "reasons": [],
        "boundaries": [],
        "placebo": [],
        "epochs": [],
        "series": {},
    }
    if len(entries) < 2:
        out["reasons"].append("fewer than 2 logged training losses")
        return out
    has_epoch = any(e.epoch is not None for e in entries)
    spe = steps_per_epoch(entries, log)
    if not has_epoch and spe is None:
        out["reasons"].append(
            "the log has no 'epoch' field and no steps-per-epoch; boundaries cannot be placed"
        )
        return out
    idx = assign_epochs(entries, spe)
    n_epochs = max(idx)
    by_epoch: dict[int, list[LogEntry]] = {}
    for e, k in zip(entries, idx, strict=True):
        by_epoch.setdefault(k, []).append(e)
    per_epoch = int(median(len(v) for v in by_epoch.values()))
    out["steps_per_epoch"] = _r(spe)
    out["logged_points_per_epoch"] = per_epoch
    out["num_epochs_logged"] = n_epochs
    nw = max(cfg.min_points, round(cfg.window * per_epoch))
    out["window_points"] = nw
    for k in sorted(by_epoch):
        pts = by_epoch[k]
        ls = [e.loss or 0.0 for e in pts]
        out["epochs"].append(
            {
                "epoch": k,
                "first_step": pts[0].step,
                "last_step": pts[-1].step,
                "points": len(pts),
                "mean_loss": _r(sum(ls) / len(ls)),
                "first_part_mean": _r(sum(ls[:nw]) / len(ls[:nw])),
                "last_part_mean": _r(sum(ls[-nw:]) / len(ls[-nw:])),
            }
        )
    typical_lr_step, lr_at = _lr_jumps(entries, idx)
    # placebo: the same statistic at each epoch's midpoint, where no boundary exists
    placebo_excess: list[float] = []
    for k in sorted(by_epoch):
        pts = by_epoch[k]
        if len(pts) < per_epoch // 2:  # a truncated last epoch
            continue
        for frac in (1 / 3, 1 / 2, 2 / 3):
            pos = round(frac * len(pts))
            res = _compare(pts[:pos], pts[pos:], cfg, per_epoch)
            if res is None:
                continue
            placebo_excess.append(res["excess_drop"])
            out["placebo"].append(
                {
                    "epoch": k,
                    "step": pts[pos].step,
                    "excess_drop": _r(res["excess_drop"]),
                    "t": _r(res["t"], 3),
                    "p_value": _p(res["p_value"]),
                }
            )
    placebo_level = median(abs(x) for x in placebo_excess) if placebo_excess else None
    out["placebo_level"] = _r(placebo_level)
    tol = max(1, log.logging_steps or 1)
    verdicts = []
    for k in range(1, n_epochs):
        if k not in by_epoch or k + 1 not in by_epoch:
            continue
        before, after = by_epoch[k], by_epoch[k + 1]
        boundary_step = before[-1].step
        b: dict[str, Any] = {
            "boundary": k,
            "between_epochs": [k, k + 1],
            "step": boundary_step,
            "reasons": [],
        }
        res = _compare(before, after, cfg, per_epoch)
        lr = lr_at.get(k, {})
        b.update(lr)
        near = [
            r
            for r in log.resumes
            if before[-max(nw, 1)].step - tol
            <= r.resumed_at_step
            <= after[: max(nw, 1)][-1].step + tol
        ]
        b["resumed_here"] = bool(near)
        aligned = {
            name: [s for s in steps if abs(s - boundary_step) <= tol]
            for name, steps in events.items()
        }
        b["aligned_events"] = {k2: v for k2, v in aligned.items() if v}
        if res is None:
            b["verdict"] = "inconclusive"
            b["reasons"].append(
                f"too few logged points around the boundary (need {cfg.min_points} per side; "
                "set logging_steps: 1)"
            )
            verdicts.append("inconclusive")
            out["boundaries"].append(b)
            continue
        for name, value in res.items():
            b[name] = (
                (_p(value) if name == "p_value" else _r(value, 3 if name == "t" else 6))
                if isinstance(value, float)
                else value
            )
        significant = res["p_value"] < cfg.alpha and res["drop"] > 0
        big = res["ratio"] is None or res["ratio"] >= cfg.min_ratio
        beats_placebo = (
            placebo_level is None or res["excess_drop"] > cfg.placebo_factor * placebo_level
        )
        verdict = "inconclusive"
        if significant and big and beats_placebo:
            verdict = "staircase"
            b["reasons"].append(
                f"drop {res['drop']:.4g} is "
                + (f"{res['ratio']:.1f}x" if res["ratio"] is not None else "far above")
                + f" the trend's {res['trend_drop']:.4g} (t={res['t']:.1f}, p={res['p_value']:.2g})"
            )
        elif (res["ratio"] is not None and res["ratio"] < cfg.smooth_ratio) or (
            res["p_value"] >= 0.05 and res["ratio"] is not None and res["ratio"] < cfg.min_ratio
        ):
            verdict = "smooth"
            b["reasons"].append(
                "the drop across the boundary is what the within-epoch trend predicts"
            )
        else:
            if not beats_placebo:
                b["reasons"].append(
                    f"excess drop {res['excess_drop']:.4g} does not beat {cfg.placebo_factor:g}x the "
                    f"mid-epoch placebo level {placebo_level:.4g}"
                )
            else:
                b["reasons"].append("drop above trend but below the significance/ratio bar")
        if verdict == "staircase" and lr.get("lr_jump"):
            verdict = "inconclusive"
            b["reasons"].append(
                f"learning rate jumps at this boundary ({lr['lr_before']:.3g} -> {lr['lr_after']:.3g});"
                " a schedule restart alone can drop the loss"
            )
        if verdict == "staircase" and near:
            verdict = "inconclusive"
            b["reasons"].append(
                "the run was resumed at this boundary; the drop may be a resume artefact"
            )
        b["verdict"] = verdict
        verdicts.append(verdict)
        out["boundaries"].append(b)
    if n_epochs < 2:
        out["reasons"].append("a single epoch was logged: there is no boundary to test")
    elif not out["boundaries"]:
        out["reasons"].append("no two consecutive epochs have logged points")
    elif "staircase" in verdicts:
        out["verdict"] = "staircase"
        ks = [str(b["boundary"]) for b in out["boundaries"] if b["verdict"] == "staircase"]
        out["reasons"].append(f"staircase at boundary(ies) {', '.join(ks)} (after epoch k)")
    elif all(v == "smooth" for v in verdicts):
        out["verdict"] = "smooth"
        out["reasons"].append("every boundary drop matches the within-epoch trend")
    else:
        out["reasons"].append("no boundary passes the staircase test, not all look smooth")
    out["off_boundary_events"] = _event_drops(
        events, by_epoch, out["boundaries"], cfg, per_epoch, tol
    )
    out["lr"] = {
        "present": log.has_lr,
        "typical_within_epoch_step": _r(typical_lr_step, 12),
        "jumps_at_boundaries": sorted(k for k, v in lr_at.items() if v["lr_jump"]),
    }
    # plot series: raw points, and a rolling mean computed inside each epoch only
    width = max(1, per_epoch // 10)
    smooth: list[float] = []
    for k in sorted(by_epoch):
        smooth += _smooth_within([e.loss or 0.0 for e in by_epoch[k]], width)
    out["series"] = {
        "step": [e.step for e in entries],
        "epoch": [_r(e.epoch) for e in entries],
        "epoch_index": idx,
        "loss": [_r(e.loss) for e in entries],
        "smoothed_within_epoch": [_r(v) for v in smooth],
        "lr": [_r(e.lr, 12) for e in entries] if log.has_lr else [],
        "boundary_steps": [b["step"] for b in out["boundaries"]],
        "eval_step": [e.step for e in log.evals],
        "eval_loss": [_r(e.eval_loss) for e in log.evals],
    }
    out["eval"] = eval_gap(log, entries, nw)
    return out


def _event_drops(
    events: dict[str, list[int]],
    by_epoch: dict[int, list[LogEntry]],
    boundaries: list[dict[str, Any]],
    cfg: StaircaseConfig,
    per_epoch: int,
    tol: int,
) -> list[dict[str, Any]]:
    """The staircase statistic at save/eval events that fall inside an epoch, not at a boundary:
    a drop there would point at the event rather than at the new pass over the data."""
    bsteps = [b["step"] for b in boundaries]
    out = []
    for kind, steps in sorted(events.items()):
        for s in steps:
            if any(abs(s - b) <= tol for b in bsteps):
                continue
            for pts in by_epoch.values():
                pos = next((i for i, e in enumerate(pts) if e.step > s), None)
                if pos is None or pos == 0:
                    continue
                res = _compare(pts[:pos], pts[pos:], cfg, per_epoch)
                if res is not None:
                    significant = (
                        res["p_value"] < cfg.alpha
                        and res["drop"] > 0
                        and (res["ratio"] is None or res["ratio"] >= cfg.min_ratio)
                    )
                    out.append(
                        {
                            "kind": kind,
                            "step": s,
                            "drop": _r(res["drop"]),
                            "excess_drop": _r(res["excess_drop"]),
                            "t": _r(res["t"], 3),
                            "p_value": _p(res["p_value"]),
                            "significant": significant,
                        }
                    )
                break
    return out


def eval_gap(log: TrainingLog, entries: list[LogEntry], window: int) -> dict[str, Any]:
    """Train/eval gap at each eval point: a growing gap while train loss falls is overfitting."""
    if not log.evals:
        return {"present": False}
    points: list[dict[str, Any]] = []
    raw: list[tuple[float, float]] = []  # (eval, train) unrounded
    for ev in log.evals:
        prior = [e.loss or 0.0 for e in entries if e.step <= ev.step][-window:]
        if not prior or ev.eval_loss is None:
            continue
        train = sum(prior) / len(prior)
        raw.append((ev.eval_loss, train))
        points.append(
            {
                "step": ev.step,
                "epoch": _r(ev.epoch),
                "eval_loss": _r(ev.eval_loss),
                "train_loss": _r(train),
                "gap": _r(ev.eval_loss - train),
            }
        )
    if not points:
        return {"present": False}
    evals = [e for e, _ in raw]
    gaps = [e - t for e, t in raw]
    best = min(range(len(evals)), key=lambda i: evals[i])
    growth = gaps[-1] - gaps[0]
    return {
        "present": True,
        "points": points,
        "gap_first": points[0]["gap"],
        "gap_last": points[-1]["gap"],
        "gap_growth": _r(growth),
        "best_eval_step": points[best]["step"],
        "best_eval_epoch": points[best]["epoch"],
        "eval_rising_after_best": best < len(points) - 1 and evals[-1] > evals[best] * 1.01,
        "gap_growing": len(points) > 1 and growth > 0.05 * abs(raw[0][1] or 1.0),
    }
