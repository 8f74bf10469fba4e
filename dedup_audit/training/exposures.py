"""Do cluster sizes differ only by how often their records were seen?

Exposures. A record in a cluster of k copies is seen k times per epoch, so at epoch e it has had
k*e exposures. If the curves of different cluster sizes overlap when plotted against exposures,
exposure count explains their difference; if they do not, something else does.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from statistics import mean
from typing import Any

from dedup_audit.training.staircase import rounded


def exposures(
    curves: Mapping[int, Mapping[float, float]], size_of: Mapping[int, int]
) -> dict[str, Any]:
    """Mean loss against k x epoch per exact cluster size, with the overlap verdict."""
    by_size: dict[int, dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    for i, c in curves.items():
        for e, v in c.items():
            by_size[size_of[i]][e].append(v)
    expo_curves = {
        str(k): [
            {
                "epoch": e,
                "exposures": rounded(k * e, 3),
                "mean_loss": rounded(mean(v)),
                "records": len(v),
            }
            for e, v in sorted(by_size[k].items())
        ]
        for k in sorted(by_size)
    }
    return {"curves": expo_curves, **exposure_overlap(by_size)}


def exposure_overlap(by_size: Mapping[int, Mapping[float, list[float]]]) -> dict[str, Any]:
    """Do cluster-size curves overlap when aligned by exposures (k x epoch) rather than epochs?"""
    sizes = sorted(by_size)
    if len(sizes) < 2:
        return {"verdict": "undecided", "reason": "only one cluster size among scored records"}
    means = {k: {e: mean(v) for e, v in by_size[k].items() if e > 0} for k in sizes}
    epochs = sorted({e for k in sizes for e in means[k]})
    spread_epoch = [
        max(vals) - min(vals)
        for e in epochs
        if len(vals := [means[k][e] for k in sizes if e in means[k]]) >= 2
    ]
    by_x: dict[float, list[float]] = defaultdict(list)
    for k in sizes:
        for e, v in means[k].items():
            by_x[round(k * e, 6)].append(v)
    spread_x = [max(v) - min(v) for v in by_x.values() if len(v) >= 2]
    if not spread_epoch or not spread_x:
        return {
            "verdict": "undecided",
            "reason": "no exposure count is shared by two cluster sizes (measure more epochs)",
        }
    se, sx = mean(spread_epoch), mean(spread_x)
    ratio = sx / se if se > 0 else None
    if ratio is not None and ratio <= 0.5:
        verdict = "exposures explain"
        reason = "curves of different cluster sizes overlap when aligned by exposures"
    elif ratio is not None and ratio >= 0.8:
        verdict = "exposures do not explain"
        reason = (
            "curves still differ at equal exposures: something besides repetition count matters"
        )
    else:
        verdict = "partly"
        reason = "aligning by exposures narrows the gap between cluster sizes but does not close it"
    return {
        "verdict": verdict,
        "reason": reason,
        "mean_spread_at_equal_epoch": rounded(se),
        "mean_spread_at_equal_exposures": rounded(sx),
        "spread_ratio": rounded(ratio),
        "shared_exposure_points": len(spread_x),
    }
