"""Plots for the memorization report, drawn only from report.json data (matplotlib, Agg, PNG).

Rules that keep the plots honest: epoch boundaries are always marked; the smoothed loss is the
within-epoch rolling mean stored in report.json, drawn as one line per epoch so no line ever
bridges a boundary; every plot says its sample sizes in the legend.
"""

from __future__ import annotations

import base64
import io
import itertools
from typing import Any

GROUP_COLORS = {
    "singleton": "#4c72b0",
    "2": "#dd8452",
    "3-4": "#c44e52",
    "5+": "#8172b3",
    "heldout": "#55a868",
}


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _figure(width: float = 8.0, height: float = 3.6) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width, height))
    ax.grid(alpha=0.25)
    return fig, ax


def loss_plot(stair: dict[str, Any]) -> str | None:
    """Training loss with epoch boundaries; smoothing stays inside each epoch."""
    s = stair.get("series") or {}
    if not s.get("step"):
        return None
    fig, ax = _figure()
    ax.plot(
        s["step"], s["loss"], ".", ms=3, color="#999999", label=f"logged loss (n={len(s['step'])})"
    )
    by_epoch: dict[int, tuple[list[int], list[float]]] = {}
    for st, sm, k in zip(s["step"], s["smoothed_within_epoch"], s["epoch_index"], strict=False):
        xs, ys = by_epoch.setdefault(k, ([], []))
        xs.append(st)
        ys.append(sm)
    for i, (_k, (xs, ys)) in enumerate(sorted(by_epoch.items())):
        ax.plot(xs, ys, "-", color="#4c72b0", lw=2, label="mean within epoch" if i == 0 else None)
    verdicts = {b["step"]: b["verdict"] for b in stair.get("boundaries", [])}
    colors = {
        "staircase": "#c44e52",
        "smooth": "#55a868",
        "inconclusive": "#dd8452",
        "rise": "#8172b3",
    }
    labelled: set[str] = set()
    for b in s.get("boundary_steps", []):
        v = verdicts.get(b, "inconclusive")
        label = None if v in labelled else f"boundary: {v}"
        labelled.add(v)
        ax.axvline(b + 0.5, color=colors[v], ls="--", lw=1.2, label=label)
    if s.get("eval_step"):
        ax.plot(
            s["eval_step"],
            s["eval_loss"],
            "o-",
            color="#55a868",
            label=f"eval loss (n={len(s['eval_step'])})",
        )
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    ax.set_title("Training loss, epoch boundaries marked")
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return _png(fig)


def lr_plot(stair: dict[str, Any]) -> str | None:
    s = stair.get("series") or {}
    if not s.get("lr"):
        return None
    fig, ax = _figure(height=2.4)
    ax.plot(s["step"], s["lr"], "-", color="#8172b3")
    for b in s.get("boundary_steps", []):
        ax.axvline(b + 0.5, color="#999999", ls="--", lw=1)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("learning rate")
    ax.set_title("Learning rate (continuity at boundaries)")
    fig.tight_layout()
    return _png(fig)


def group_curves_plot(samples: dict[str, Any]) -> str | None:
    groups = samples.get("groups") or {}
    names = [g for g in groups if g.startswith("size:")] + (
        ["heldout"] if "heldout" in groups else []
    )
    if not names:
        return None
    fig, ax = _figure()
    for g in names:
        curve = groups[g]["mean_loss"]
        xs = [float(e) for e, v in curve.items() if v is not None]
        ys = [v for v in curve.values() if v is not None]
        label = g.split(":", 1)[-1]
        ax.plot(
            xs, ys, "o-", color=GROUP_COLORS.get(label), label=f"{label} (n={groups[g]['records']})"
        )
    ax.set_xlabel("epoch (checkpoint)")
    ax.set_ylabel("mean per-sample loss")
    ax.set_title("Per-sample loss by duplicate-cluster size")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)


def drop_distribution_plot(samples: dict[str, Any]) -> str | None:
    dist = samples.get("drop_distribution") or {}
    edges = dist.get("edges") or []
    if len(edges) < 2:
        return None
    fig, ax = _figure()
    centers = [(a + b) / 2 for a, b in itertools.pairwise(edges)]
    width = (edges[1] - edges[0]) if len(edges) > 1 else 1.0
    names = list(dist["counts"])
    for j, name in enumerate(names):
        counts = dist["counts"][name]
        total = sum(counts) or 1
        off = (j - (len(names) - 1) / 2) * width / max(1, len(names))
        ax.bar(
            [c + off for c in centers],
            [c / total for c in counts],
            width=width / max(1, len(names)),
            color=GROUP_COLORS.get(name),
            label=f"{name} (n={sum(counts)})",
        )
    ax.set_xlabel(f"loss drop, epoch {dist.get('from_epoch')} -> {dist.get('to_epoch')}")
    ax.set_ylabel("share of group")
    ax.set_title("Distribution of per-sample loss drops")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)


def exposures_plot(samples: dict[str, Any]) -> str | None:
    curves = (samples.get("exposures") or {}).get("curves") or {}
    if not curves:
        return None
    fig, ax = _figure()
    for k, pts in curves.items():
        xs = [p["exposures"] for p in pts]
        ys = [p["mean_loss"] for p in pts]
        n = max((p["records"] for p in pts), default=0)
        label = "1 copy" if k == "1" else f"{k} copies"
        ax.plot(xs, ys, "o-", label=f"{label} (n={n})")
    ax.set_xlabel("prior exposures (copies x epoch)")
    ax.set_ylabel("mean per-sample loss")
    ax.set_title("Loss against number of prior exposures")
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    return _png(fig)


def render_plots(report: dict[str, Any]) -> dict[str, str]:
    """name -> base64 PNG for every plot the report's data allows, in page order."""
    out: dict[str, str] = {}
    stair = report.get("staircase")
    samples = report.get("samples")
    todo: list[tuple[str, Any, Any]] = []
    if stair:
        todo += [("loss", loss_plot, stair), ("lr", lr_plot, stair)]
    if samples and samples.get("available"):
        todo += [
            ("group_curves", group_curves_plot, samples),
            ("drop_distribution", drop_distribution_plot, samples),
            ("exposures", exposures_plot, samples),
        ]
    for name, fn, data in todo:
        png = fn(data)
        if png:
            out[name] = png
    return out
