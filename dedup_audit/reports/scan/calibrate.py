"""Calibration: how likely LSH is to catch a pair, which pairs sit on a threshold, and what a
saved scan looks like at other thresholds (no similarity is recomputed).

MinHash-LSH with b bands of r rows proposes a pair of Jaccard s with probability
1 - (1 - s^r)^b (the "S-curve"). The scan picks (b, r) so that a pair exactly at the threshold
is proposed with probability >= 0.98 (every candidate is verified by exact Jaccard, so extra
candidates cost only time); the curve shows what that choice means.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from dedup_audit.detect.minhash import candidate_probability, lsh_bands
from dedup_audit.errors import ConfigError, InputError
from dedup_audit.records import Pair, PairSet

S_POINTS: tuple[float, ...] = (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)


def lsh_params(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows) the scan uses for this threshold and num_perm (tuned for recall at the
    threshold, see `dedup_audit.detect.minhash.lsh_bands`)."""
    if not 0.0 < threshold <= 1.0:
        raise ConfigError(f"--threshold must be in (0, 1], got {threshold}")
    if num_perm < 4:
        raise ConfigError(f"--num-perm must be >= 4, got {num_perm}")
    return lsh_bands(threshold, num_perm)


def s_curve(
    threshold: float, num_perm: int, points: Sequence[float] = S_POINTS
) -> list[tuple[float, float]]:
    """(Jaccard, probability of being a candidate) at each point, for the scan's (b, r)."""
    b, r = lsh_params(threshold, num_perm)
    return [(s, candidate_probability(s, b, r)) for s in points]


def borderline_pairs(
    pairs: Iterable[Pair],
    thresholds: Mapping[str, float],
    *,
    margin: float = 0.05,
    limit: int | None = 20,
) -> dict[str, list[Pair]]:
    """Per method, pairs whose score is within `margin` of that method's threshold (on either
    side), closest first, ties by (view, a, b): the ones worth a person's eyes before trusting
    the threshold. Methods without a threshold (exact) are skipped."""
    out: dict[str, list[Pair]] = {}
    for p in pairs:
        thr = thresholds.get(p.method)
        if thr is not None and abs(p.score - thr) <= margin:
            out.setdefault(p.method, []).append(p)
    for method, ps in out.items():
        ps.sort(key=lambda p: (abs(p.score - thresholds[method]), p.view, p.a, p.b))
        if limit is not None:
            out[method] = ps[:limit]
    return dict(sorted(out.items()))


def pairs_from_report(report: Mapping[str, Any]) -> list[Pair]:
    """Scored pairs from a read scan report (`scored_pairs`: {view: [Pair or [a, b, method,
    score, estimate], ...]})."""
    scored = report.get("scored_pairs")
    if not isinstance(scored, Mapping):
        raise InputError("report.json has no `scored_pairs`; was it written by `dedup-audit scan`?")
    pairs: list[Pair] = []
    for view, rows in sorted(scored.items()):
        if isinstance(rows, PairSet):
            pairs += rows.pairs()
            continue
        for row in rows:
            if isinstance(row, Pair):
                pairs.append(row)
                continue
            a, b, method, score, estimate = row
            pairs.append(
                Pair(
                    int(a),
                    int(b),
                    float(score),
                    str(method),
                    str(view),
                    None if estimate is None else float(estimate),
                )
            )
    return pairs


def report_thresholds(report: Mapping[str, Any]) -> dict[str, float]:
    """The thresholds a saved scan ran with, keyed by pair method."""
    cfg = report.get("config", {})
    out: dict[str, float] = {}
    if "minhash" in cfg:
        out["minhash"] = float(cfg["minhash"]["threshold"])
    sem = cfg.get("semantic") or {}
    if sem.get("enabled"):
        out["embedding"] = float(sem["threshold"])
    return out
