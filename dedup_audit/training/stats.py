"""Rank statistics for the per-sample analysis (Mann-Whitney U with its AUC, Spearman's rho).

Kept apart so the tests and the diagnosis share one definition of each number and its rounding;
scipy is imported inside the functions so importing the package stays light.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dedup_audit.training.staircase import rounded, rounded_p


def mann_whitney(x: Sequence[float], y: Sequence[float]) -> dict[str, Any]:
    """One-sided U test (x > y) and AUC = U / (n_x n_y), with the sample sizes."""
    out: dict[str, Any] = {"n_x": len(x), "n_y": len(y), "U": None, "p_value": None, "auc": None}
    if not x or not y:
        return out
    from scipy import stats

    res = stats.mannwhitneyu(list(x), list(y), alternative="greater")
    u = float(res.statistic)
    out.update(
        U=rounded(u, 3), p_value=rounded_p(float(res.pvalue)), auc=rounded(u / (len(x) * len(y)), 4)
    )
    return out


def spearman(x: Sequence[float], y: Sequence[float]) -> dict[str, Any]:
    """Rank correlation with its p-value; None values when there are too few or constant points."""
    out: dict[str, Any] = {"n": len(x), "rho": None, "p_value": None}
    if len(x) < 3 or len(set(x)) < 2 or len(set(y)) < 2:
        return out
    from scipy import stats

    res = stats.spearmanr(list(x), list(y))
    out.update(rho=rounded(float(res.statistic), 4), p_value=rounded_p(float(res.pvalue)))
    return out
