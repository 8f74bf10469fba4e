"""Detect the epoch-boundary loss staircase in a training log, with the figures behind the verdict.

The test, per boundary between epoch k and k+1 (`fit_jump`):

- A local model over the epochs around the boundary (k-1 .. k+2; epoch 1 only for the first
  boundary and then only its second half, because the warmup and the steep initial fall are not
  the trend of later epochs): one intercept per epoch and a common linear + quadratic trend in
  the step, so a smooth curve may bend but only the intercepts can step. The fitted `jump` is the intercept of k minus that of k+1 (positive = the
  loss fell at the boundary beyond the trend).
- Noise is modelled per epoch (weighted least squares, each epoch's residual variance estimated
  from a first pass), because duplicated data makes later epochs noisier than early ones.
- Calibration: the same statistic at mid-epoch placebo cuts (epochs 2 and later only), where no
  boundary exists. If their t-values spread wider than a t-distribution (curvature the model
  misses, correlated noise), every t is divided by that spread (`placebo_inflation`, never < 1,
  shrunk towards 1 because a few cuts alone would inflate by chance). With fewer than 3 cuts and
  fewer than MIN_POINTS_PER_EPOCH points per epoch (coarse logging) nothing is called: the
  boundary says what it saw and which `logging_steps` would make it testable.
- Run-level test (`run_test`): the boundaries' calibrated one-sided p-values are combined twice,
  by Stouffer's pooled z (many moderate steps) and by Bonferroni on the strongest (one big step),
  each at `alpha`/2; boundaries with an lr jump or a resume are left out. A boundary is
  `staircase` when the run-level test passes, its own p < `boundary_alpha`, and its window drop
  is at least `min_ratio` x the trend's. The gate keeps the false-staircase rate per run below
  1% while a run's steps, each one noisy, are found together: benchmarks/staircase_power.py.
- `rise` when the loss jumps *up* beyond the trend at p < `rise_alpha` (for example a cosine
  schedule restarting at each epoch), with the learning-rate evidence at that boundary.
- `smooth` when neither a drop nor a rise is significant at 0.05; `inconclusive` otherwise.
  A learning-rate jump or a resumed run at the boundary turns `staircase` into `inconclusive`,
  because either can drop the loss without any memorization.

Reported beside the test (for people, not for the verdict): `drop` = mean loss over the last
`window` of epoch k minus the mean over the first `window` of k+1; `trend_drop` = the drop the
fitted trend predicts across the gap between those windows; `ratio` = drop / trend_drop.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from statistics import median
from typing import Any

from dedup_audit.errors import ConfigError
from dedup_audit.training.trainer_log import LogEntry, TrainingLog

#: fewer logged points per epoch than this and the report recommends a smaller logging_steps
MIN_POINTS_PER_EPOCH = 20
#: highest power of the step in the common trend (fewer with fewer segments)
MAX_DEGREE = 2
#: pseudo placebo cuts at t^2 = 1 that the measured inflation is shrunk towards
PRIOR_PLACEBOS = 6


@dataclass(frozen=True)
class StaircaseConfig:
    window: float = 0.25  # fraction of an epoch's logged points in the reported drop windows
    min_points: int = 3  # fewer logged points than this next to a boundary -> inconclusive
    alpha: float = 0.005  # run-level test (false-staircase rate per run, see the benchmark)
    boundary_alpha: float = 0.1  # each boundary, once the run-level test passes
    rise_alpha: float = 0.001  # a rise at one boundary (tested alone)
    min_ratio: float = 1.5  # the window drop must be at least this x the trend's
    context_epochs: int = 1  # epochs on each side of the two around a boundary, in the fit

    def __post_init__(self) -> None:
        if not 0.0 < self.window <= 0.5:
            raise ConfigError(f"staircase window must be in (0, 0.5], got {self.window}")
        if self.min_points < 2:
            raise ConfigError(f"min_points must be >= 2, got {self.min_points}")
        for name in ("alpha", "boundary_alpha", "rise_alpha"):
            v = getattr(self, name)
            if not 0.0 < v < 0.5:
                raise ConfigError(f"staircase {name} must be in (0, 0.5), got {v}")
        if self.context_epochs < 0:
            raise ConfigError(f"context_epochs must be >= 0, got {self.context_epochs}")


def rounded_p(x: float | None) -> float | None:
    """Report p-values keep 3 significant digits (a tiny p must not round to 0)."""
    if x is None or not math.isfinite(x):
        return None
    return float(f"{x:.3g}")


def rounded(x: float | None, nd: int = 6) -> float | None:
    """Report figures keep `nd` decimals; NaN and infinity become null (JSON has neither)."""
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


@dataclass(frozen=True)
class JumpFit:
    """The fitted step at one split of a run of points (see the module docstring)."""

    jump: float  # intercept before minus intercept after: > 0 when the loss fell at the split
    se: float
    t: float  # jump / se (before placebo calibration)
    df: int
    slope: float  # the fitted trend's slope per step at the split
    noise_sd: float  # per-step residual sd of the two segments next to the split
    n: int


def fit_jump(
    segments: Sequence[Sequence[LogEntry]], split: int, groups: Sequence[int]
) -> JumpFit | None:
    """Fit one intercept per segment plus a common (quadratic) trend; test the step between
    segment `split - 1` and `split`. `groups[i]` is the noise group (epoch) of segment i: each
    group gets its own residual variance (weighted least squares, two passes)."""
    import numpy as np

    if not 0 < split < len(segments) or any(len(s) == 0 for s in segments):
        return None
    steps = np.array([float(e.step) for s in segments for e in s])
    y = np.array([float(e.loss or 0.0) for s in segments for e in s])
    seg = np.concatenate([np.full(len(s), i) for i, s in enumerate(segments)])
    grp = np.array([groups[i] for i in seg])
    split_step = (segments[split - 1][-1].step + segments[split][0].step) / 2.0
    center = steps.mean()
    scale = max(1.0, float(np.abs(steps - center).max()))
    x = (steps - center) / scale
    degree = max(1, min(MAX_DEGREE, len(segments) - 1))
    cols = [(seg == i).astype(float) for i in range(len(segments))]
    cols += [x**p for p in range(1, degree + 1)]
    design = np.column_stack(cols)
    n, k = design.shape
    if n - k < 2 or np.linalg.matrix_rank(design) < k:
        return None
    weights = np.ones(n)
    coef = resid = None
    for _ in range(2):
        sw = np.sqrt(weights)
        coef, *_ = np.linalg.lstsq(design * sw[:, None], y * sw, rcond=None)
        resid = y - design @ coef
        share = (n - k) / n  # residual degrees of freedom spread evenly over the points
        variances = {}
        for g in set(grp.tolist()):
            m = grp == g
            variances[g] = float(resid[m] @ resid[m]) / max(share * int(m.sum()), 1e-9)
        floor = 1e-12 + 1e-9 * max(variances.values(), default=0.0)
        weights = np.array([1.0 / max(variances[g], floor) for g in grp.tolist()])
    assert coef is not None and resid is not None
    sw = np.sqrt(weights)
    xw = design * sw[:, None]
    rw = resid * sw
    df = n - k
    s2 = float(rw @ rw) / df
    try:
        cov = s2 * np.linalg.inv(xw.T @ xw)
    except np.linalg.LinAlgError:
        return None
    contrast = np.zeros(k)
    contrast[split - 1], contrast[split] = 1.0, -1.0
    jump = float(contrast @ coef)
    se = math.sqrt(max(float(contrast @ cov @ contrast), 0.0))
    xs = (split_step - center) / scale
    trend = coef[len(segments) :]
    slope = sum(p * float(trend[p - 1]) * xs ** (p - 1) for p in range(1, degree + 1)) / scale
    near = (seg == split - 1) | (seg == split)
    noise = math.sqrt(float(resid[near] @ resid[near]) / max(1, int(near.sum()) - 2))
    t = jump / se if se > 0 else math.copysign(math.inf, jump) if jump else 0.0
    return JumpFit(jump, se, t, df, slope, noise, n)


def _t_sf(t: float, df: float) -> float:
    """One-sided p of a t-value (upper tail)."""
    from scipy import stats

    if math.isnan(t):
        return 1.0
    if not math.isfinite(t):
        return 0.0 if t > 0 else 1.0
    return float(stats.t.sf(t, df))


def _z_of_p(p: float) -> float:
    from scipy import stats

    return float(stats.norm.isf(min(max(p, 1e-300), 1 - 1e-16)))


@dataclass
class Boundary:
    """One epoch boundary: its figures, the test and the verdict (report.json `boundaries[]`)."""

    boundary: int
    step: int
    verdict: str = "inconclusive"
    reasons: list[str] = field(default_factory=list)
    lr_before: float | None = None
    lr_after: float | None = None
    lr_relative_change: float | None = None
    lr_jump: bool = False
    resumed_here: bool = False
    aligned_events: dict[str, list[int]] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "boundary": self.boundary,
            "between_epochs": [self.boundary, self.boundary + 1],
            "step": self.step,
            "reasons": self.reasons,
        }
        if self.lr_before is not None:
            out.update(
                lr_before=self.lr_before,
                lr_after=self.lr_after,
                lr_relative_change=self.lr_relative_change,
                lr_jump=self.lr_jump,
            )
        out["resumed_here"] = self.resumed_here
        out["aligned_events"] = self.aligned_events
        out.update(self.figures)
        out["verdict"] = self.verdict
        return out


@dataclass(frozen=True)
class Split:
    """The figures of one split (a boundary, a placebo cut or an event): reported drop windows and
    the fitted jump."""

    n_before: int
    n_after: int
    mean_before: float
    mean_after: float
    drop: float
    gap_steps: float
    trend_drop: float
    fit: JumpFit

    @property
    def ratio(self) -> float | None:
        eps = 1e-12 + 1e-9 * abs(self.mean_before)
        return self.drop / self.trend_drop if self.trend_drop > eps else None

    def figures(self, t_cal: float, p: float, p_rise: float) -> dict[str, Any]:
        f = self.fit
        return {
            "n_before": self.n_before,
            "n_after": self.n_after,
            "n_fit": f.n,
            "mean_before": rounded(self.mean_before),
            "mean_after": rounded(self.mean_after),
            "drop": rounded(self.drop),
            "relative_drop": rounded(self.drop / self.mean_before) if self.mean_before else None,
            "gap_steps": rounded(self.gap_steps),
            "slope_per_step": rounded(f.slope),
            "trend_drop": rounded(self.trend_drop),
            "ratio": rounded(self.ratio),
            "excess_drop": rounded(self.drop - self.trend_drop),
            "jump": rounded(f.jump),
            "se_jump": rounded(f.se),
            "t": rounded(f.t, 3),
            "t_calibrated": rounded(t_cal, 3),
            "df": f.df,
            "p_value": rounded_p(p),
            "p_rise": rounded_p(p_rise),
            "noise_sd": rounded(f.noise_sd),
        }


def _split(
    segments: list[list[LogEntry]], split: int, groups: list[int], nw: int, min_points: int
) -> Split | None:
    before, after = segments[split - 1], segments[split]
    if len(before) < min_points or len(after) < min_points:
        return None
    fit = fit_jump(segments, split, groups)
    if fit is None:
        return None
    a, b = before[-nw:], after[:nw]
    mean_a = sum(e.loss or 0.0 for e in a) / len(a)
    mean_b = sum(e.loss or 0.0 for e in b) / len(b)
    gap = sum(e.step for e in b) / len(b) - sum(e.step for e in a) / len(a)
    return Split(len(a), len(b), mean_a, mean_b, mean_a - mean_b, gap, -fit.slope * gap, fit)


def _window(by_epoch: dict[int, list[LogEntry]], lo: int, hi: int, context: int) -> list[int]:
    """Epochs in a fit around [lo, hi]: `context` more each side, epoch 1 only when lo is 1."""
    first = 1 if lo == 1 else 2
    return [k for k in range(max(first, lo - context), hi + context + 1) if k in by_epoch]


def boundary_split(
    by_epoch: dict[int, list[LogEntry]], k: int, cfg: StaircaseConfig, nw: int
) -> Split | None:
    """The test at the boundary after epoch k."""
    eps = _window(by_epoch, k, k + 1, cfg.context_epochs)
    if k not in eps or k + 1 not in eps:
        return None
    segments = [_late(by_epoch, j, cfg) for j in eps]
    return _split(segments, eps.index(k + 1), eps, nw, cfg.min_points)


def _late(by_epoch: dict[int, list[LogEntry]], k: int, cfg: StaircaseConfig) -> list[LogEntry]:
    """An epoch's points for a fit; of epoch 1 only the second half: the warmup and the initial
    fall are no trend of the later epochs."""
    pts = by_epoch[k]
    if k == 1 and len(pts) >= 2 * cfg.min_points:
        return pts[len(pts) // 2 :]
    return pts


def inner_split(
    by_epoch: dict[int, list[LogEntry]], k: int, pos: int, cfg: StaircaseConfig, nw: int
) -> Split | None:
    """The same test at point `pos` inside epoch k (placebo cuts, save/eval events)."""
    eps = _window(by_epoch, k, k, cfg.context_epochs)
    segments: list[list[LogEntry]] = []
    groups: list[int] = []
    split = 0
    for j in eps:
        if j == k:
            segments += [by_epoch[j][:pos], by_epoch[j][pos:]]
            groups += [j, j]
            split = len(segments) - 1
        else:
            segments.append(_late(by_epoch, j, cfg))
            groups.append(j)
    return _split(segments, split, groups, nw, cfg.min_points)


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
                "lr_relative_change": rounded(rel) if math.isfinite(rel) else None,
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


@dataclass(frozen=True)
class Calibration:
    """Placebo cuts inside epochs 2+ and the inflation of t-values they imply."""

    placebo: list[dict[str, Any]]
    inflation: float
    level: float | None  # median |excess drop| at the placebos (reported, for scale)
    calibrated: bool  # enough placebo cuts (3+) to measure the inflation


def placebo_calibration(
    by_epoch: dict[int, list[LogEntry]], per_epoch: int, cfg: StaircaseConfig, nw: int
) -> Calibration:
    """The boundary statistic at each full epoch's midpoint (from epoch 2 on), where no boundary
    exists: how wide the t-values spread when nothing happens."""
    rows: list[dict[str, Any]] = []
    ts: list[float] = []
    excess: list[float] = []
    for k in sorted(by_epoch):
        pts = by_epoch[k]
        if k < 2 or len(pts) < max(2 * cfg.min_points, per_epoch * 3 // 4):
            continue
        pos = len(pts) // 2
        res = inner_split(by_epoch, k, pos, cfg, nw)
        if res is None:
            continue
        ts.append(res.fit.t)
        excess.append(res.drop - res.trend_drop)
        rows.append(
            {
                "epoch": k,
                "step": pts[pos].step,
                "excess_drop": rounded(res.drop - res.trend_drop),
                "jump": rounded(res.fit.jump),
                "t": rounded(res.fit.t, 3),
                "p_value": rounded_p(_t_sf(res.fit.t, res.fit.df)),
            }
        )
    finite = [t for t in ts if math.isfinite(t)]
    inflation = 1.0
    if len(finite) >= 3:
        # mean t^2 shrunk towards 1 (PRIOR_PLACEBOS pseudo-cuts): a handful of placebos alone
        # would inflate by chance half the time and cost power for nothing
        ss = sum(t * t for t in finite) + PRIOR_PLACEBOS
        inflation = max(1.0, math.sqrt(ss / (len(finite) + PRIOR_PLACEBOS)))
    level = median(abs(x) for x in excess) if excess else None
    return Calibration(rows, inflation, level, len(finite) >= 3)


def _lr_reason(b: Boundary) -> str:
    if b.lr_before is None:
        return "the log has no learning rate to check"
    if b.lr_jump:
        direction = "up" if (b.lr_after or 0.0) > b.lr_before else "down"
        return f"the learning rate jumps {direction} here ({b.lr_before:.3g} -> {b.lr_after:.3g})"
    return f"the learning rate is continuous here ({b.lr_before:.3g} -> {b.lr_after:.3g})"


def _judge(
    b: Boundary,
    res: Split,
    cal: Calibration,
    run_passes: bool,
    run_p: float | None,
    cfg: StaircaseConfig,
    coarse: str | None = None,
) -> None:
    """The verdict of one tested boundary, with its reasons (see the module docstring).

    `coarse` (a logging advice) is set when too few points per epoch were logged to calibrate
    the test on placebo cuts: then a drop or a rise is reported but not called."""
    t_cal = res.fit.t / cal.inflation
    p = _t_sf(t_cal, res.fit.df)
    p_rise = _t_sf(-t_cal, res.fit.df)
    b.figures = res.figures(t_cal, p, p_rise)
    ratio = res.ratio
    big = ratio is None or ratio >= cfg.min_ratio
    if p_rise < cfg.rise_alpha and res.fit.jump < 0:
        b.verdict = "rise" if coarse is None else "inconclusive"
        b.reasons.append(
            f"the loss rises {-res.fit.jump:.4g} at the boundary beyond its trend "
            f"(t={t_cal:.1f}, p={p_rise:.2g}); {_lr_reason(b)}"
            + (
                ": a schedule restart raises the loss"
                if b.lr_jump and (b.lr_after or 0.0) > (b.lr_before or 0.0)
                else ""
            )
            + (f"; not called: {coarse}" if coarse else "")
        )
        return
    if p < cfg.boundary_alpha and res.fit.jump > 0 and res.drop > 0 and big:
        what = (
            f"drop {res.drop:.4g} is "
            + (f"{ratio:.1f}x" if ratio is not None else "far above")
            + f" the trend's {res.trend_drop:.4g} (jump {res.fit.jump:.4g}, t={t_cal:.1f}, p={p:.2g})"
        )
        if b.lr_jump:
            b.reasons.append(
                f"{what}, but {_lr_reason(b)}; a schedule change alone can drop the loss"
            )
        elif b.resumed_here:
            b.reasons.append(
                f"{what}, but the run was resumed at this boundary (a resume artefact?)"
            )
        elif coarse:
            b.reasons.append(f"{what}, but not called: {coarse}")
        elif not run_passes:
            b.reasons.append(
                f"{what}, but the run-level test over the boundaries does not pass"
                + (f" (p={run_p:.2g})" if run_p is not None else "")
            )
        else:
            b.verdict = "staircase"
            b.reasons.append(what)
        return
    if p >= 0.05 and p_rise >= 0.05:
        b.verdict = "smooth"
        b.reasons.append("the drop across the boundary is what the trend predicts")
        return
    if res.fit.jump < 0:
        b.reasons.append(
            f"the loss rises {-res.fit.jump:.4g} beyond the trend (p={p_rise:.2g}), below the "
            f"rise bar (p < {cfg.rise_alpha:g})"
        )
        return
    b.reasons.append(
        f"a drop beyond the trend (jump {res.fit.jump:.4g}, p={p:.2g}) below the staircase bar"
        + (f" (the drop is only {ratio:.1f}x the trend's)" if ratio is not None and not big else "")
    )


def run_test(
    tested: list[tuple[Boundary, Split]], cal: Calibration, cfg: StaircaseConfig
) -> dict[str, Any]:
    """Stouffer's pooled z over the tested boundaries, leaving out those with an lr jump or a
    resume (they have their own explanation)."""
    used = [(b, r) for b, r in tested if not b.lr_jump and not b.resumed_here]
    if not used:
        return {"boundaries": [], "z": None, "p_value": None, "passes": False}
    ps = [_t_sf(r.fit.t / cal.inflation, r.fit.df) for _, r in used]
    z = sum(_z_of_p(p) for p in ps) / math.sqrt(len(ps))
    p_pooled = 1.0 - _norm_cdf(z)
    p_min = min(1.0, min(ps) * len(ps))  # Bonferroni: one strong step is not diluted
    p = min(1.0, 2 * min(p_pooled, p_min))  # either test at alpha/2
    return {
        "boundaries": [b.boundary for b, _ in used],
        "z": rounded(z, 3),
        "p_pooled": rounded_p(p_pooled),
        "p_strongest": rounded_p(p_min),
        "p_value": rounded_p(p),
        "passes": p < cfg.alpha,
        "alpha": cfg.alpha,
    }


def _norm_cdf(z: float) -> float:
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


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
        spe0 = steps_per_epoch(entries, log)
        epochs = log.num_train_epochs or 1.0
        per = int(len(entries) / epochs)
        out["logging_advice"] = logging_advice(spe0, per)
        out["reasons"].append(
            f"fewer than 2 logged training losses ({len(entries)}): {out['logging_advice']}"
        )
        out["logged_points_per_epoch"] = per
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
    out["steps_per_epoch"] = rounded(spe)
    out["logged_points_per_epoch"] = per_epoch
    out["num_epochs_logged"] = n_epochs
    nw = max(cfg.min_points, round(cfg.window * per_epoch))
    out["window_points"] = nw
    out["epochs"] = _epoch_rows(by_epoch, nw)
    typical_lr_step, lr_at = _lr_jumps(entries, idx)
    cal = placebo_calibration(by_epoch, per_epoch, cfg, nw)
    out["placebo"] = cal.placebo
    out["placebo_level"] = rounded(cal.level)
    out["placebo_inflation"] = rounded(cal.inflation, 4)
    tol = max(1, log.logging_steps or 1)
    boundaries: list[Boundary] = []
    tested: list[tuple[Boundary, Split]] = []
    for k in range(1, n_epochs):
        if k not in by_epoch or k + 1 not in by_epoch:
            continue
        before, after = by_epoch[k], by_epoch[k + 1]
        b = Boundary(boundary=k, step=before[-1].step)
        lr = lr_at.get(k)
        if lr is not None:
            b.lr_before, b.lr_after = lr["lr_before"], lr["lr_after"]
            b.lr_relative_change, b.lr_jump = lr["lr_relative_change"], lr["lr_jump"]
        lo_step = before[-min(nw, len(before))].step - tol
        hi_step = after[: max(nw, 1)][-1].step + tol
        b.resumed_here = any(lo_step <= r.resumed_at_step <= hi_step for r in log.resumes)
        aligned = {
            name: [s for s in steps if abs(s - b.step) <= tol] for name, steps in events.items()
        }
        b.aligned_events = {k2: v for k2, v in aligned.items() if v}
        boundaries.append(b)
        res = boundary_split(by_epoch, k, cfg, nw)
        if res is None:
            b.reasons.append(
                f"too few logged points around the boundary (need {cfg.min_points} per side); "
                f"{logging_advice(spe, per_epoch)}"
            )
            continue
        tested.append((b, res))
    run = run_test(tested, cal, cfg)
    out["run_test"] = run
    coarse = None
    if not cal.calibrated and per_epoch < MIN_POINTS_PER_EPOCH:
        coarse = "too few points per epoch to calibrate the test; " + logging_advice(spe, per_epoch)
    for b, res in tested:
        _judge(b, res, cal, bool(run["passes"]), run["p_value"], cfg, coarse)
    out["boundaries"] = [b.to_dict() for b in boundaries]
    out["verdict"], reasons = _run_verdict(n_epochs, boundaries)
    out["reasons"] += reasons
    if per_epoch < MIN_POINTS_PER_EPOCH:
        out["logging_advice"] = logging_advice(spe, per_epoch)
    out["off_boundary_events"] = _event_drops(events, by_epoch, out["boundaries"], cfg, nw, tol)
    out["lr"] = {
        "present": log.has_lr,
        "typical_within_epoch_step": rounded(typical_lr_step, 12),
        "jumps_at_boundaries": sorted(k for k, v in lr_at.items() if v["lr_jump"]),
    }
    # plot series: raw points, and a rolling mean computed inside each epoch only
    width = max(1, per_epoch // 10)
    smooth: list[float] = []
    for k in sorted(by_epoch):
        smooth += _smooth_within([e.loss or 0.0 for e in by_epoch[k]], width)
    out["series"] = {
        "step": [e.step for e in entries],
        "epoch": [rounded(e.epoch) for e in entries],
        "epoch_index": idx,
        "loss": [rounded(e.loss) for e in entries],
        "smoothed_within_epoch": [rounded(v) for v in smooth],
        "lr": [rounded(e.lr, 12) for e in entries] if log.has_lr else [],
        "boundary_steps": [b.step for b in boundaries],
        "eval_step": [e.step for e in log.evals],
        "eval_loss": [rounded(e.eval_loss) for e in log.evals],
    }
    out["eval"] = eval_gap(log, entries, nw)
    return out


def logging_advice(spe: float | None, per_epoch: int) -> str:
    """The logging_steps that gives about MIN_POINTS_PER_EPOCH+ points per epoch."""
    if spe:
        value = max(1, int(spe // (MIN_POINTS_PER_EPOCH + 10)))
        return (
            f"{per_epoch} logged point(s) per epoch of {spe:g} steps; set logging_steps: {value} "
            f"(at least {MIN_POINTS_PER_EPOCH} points per epoch make each boundary testable)"
        )
    return f"{per_epoch} logged point(s) per epoch; set logging_steps: 1"


def _epoch_rows(by_epoch: dict[int, list[LogEntry]], nw: int) -> list[dict[str, Any]]:
    rows = []
    for k in sorted(by_epoch):
        pts = by_epoch[k]
        ls = [e.loss or 0.0 for e in pts]
        rows.append(
            {
                "epoch": k,
                "first_step": pts[0].step,
                "last_step": pts[-1].step,
                "points": len(pts),
                "mean_loss": rounded(sum(ls) / len(ls)),
                "first_part_mean": rounded(sum(ls[:nw]) / len(ls[:nw])),
                "last_part_mean": rounded(sum(ls[-nw:]) / len(ls[-nw:])),
            }
        )
    return rows


def _run_verdict(n_epochs: int, boundaries: list[Boundary]) -> tuple[str, list[str]]:
    verdicts = [b.verdict for b in boundaries]
    if n_epochs < 2:
        return "inconclusive", ["a single epoch was logged: there is no boundary to test"]
    if not boundaries:
        return "inconclusive", ["no two consecutive epochs have logged points"]
    if "staircase" in verdicts:
        ks = ", ".join(str(b.boundary) for b in boundaries if b.verdict == "staircase")
        return "staircase", [f"staircase at boundary(ies) {ks} (after epoch k)"]
    if "rise" in verdicts:
        ks = ", ".join(str(b.boundary) for b in boundaries if b.verdict == "rise")
        return "rise", [f"the loss rises at boundary(ies) {ks} (after epoch k)"]
    if all(v == "smooth" for v in verdicts):
        return "smooth", ["every boundary drop matches the trend"]
    return "inconclusive", ["no boundary passes the staircase test, not all look smooth"]


def _event_drops(
    events: dict[str, list[int]],
    by_epoch: dict[int, list[LogEntry]],
    boundaries: list[dict[str, Any]],
    cfg: StaircaseConfig,
    nw: int,
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
            for k, pts in sorted(by_epoch.items()):
                pos = next((i for i, e in enumerate(pts) if e.step > s), None)
                if pos is None or pos == 0:
                    continue
                res = inner_split(by_epoch, k, pos, cfg, nw)
                if res is not None:
                    p = _t_sf(res.fit.t, res.fit.df)
                    ratio = res.ratio
                    significant = (
                        p < cfg.alpha and res.drop > 0 and (ratio is None or ratio >= cfg.min_ratio)
                    )
                    out.append(
                        {
                            "kind": kind,
                            "step": s,
                            "drop": rounded(res.drop),
                            "excess_drop": rounded(res.drop - res.trend_drop),
                            "t": rounded(res.fit.t, 3),
                            "p_value": rounded_p(p),
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
                "epoch": rounded(ev.epoch),
                "eval_loss": rounded(ev.eval_loss),
                "train_loss": rounded(train),
                "gap": rounded(ev.eval_loss - train),
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
        "gap_growth": rounded(growth),
        "best_eval_step": points[best]["step"],
        "best_eval_epoch": points[best]["epoch"],
        "eval_rising_after_best": best < len(points) - 1 and evals[-1] > evals[best] * 1.01,
        "gap_growing": len(points) > 1 and growth > 0.05 * abs(raw[0][1] or 1.0),
    }
