"""Calibration: how likely LSH is to catch a pair, which pairs sit on a threshold, and which
threshold a few dozen human-labelled pairs ask for (no similarity is recomputed).

MinHash-LSH with b bands of r rows proposes a pair of Jaccard s with probability
1 - (1 - s^r)^b (the "S-curve"). The scan picks (b, r) so that a pair exactly at the threshold
is proposed with probability >= 0.98 (every candidate is verified by exact Jaccard, so extra
candidates cost only time); the curve shows what that choice means.

`fit_threshold` turns labelled borderline pairs (is this pair a duplicate: yes/no) and their
saved scores into scikit-learn's precision/recall curve and picks the threshold: the best F1,
or the lowest threshold that keeps a required precision.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from dedup_audit.config import MinHashConfig
from dedup_audit.detect.minhash import candidate_probability, lsh_bands
from dedup_audit.errors import ConfigError, InputError
from dedup_audit.records import PAIR_METHODS, Pair, PairSet

S_POINTS: tuple[float, ...] = (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)


def lsh_params(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows) the scan uses for this threshold and num_perm (tuned for recall at the
    threshold, see `dedup_audit.detect.minhash.lsh_bands`)."""
    cfg = MinHashConfig(threshold=threshold, num_perm=num_perm)  # the scan's own validation
    return lsh_bands(cfg.threshold, cfg.num_perm)


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


@dataclass(frozen=True)
class LabelledPair:
    """One human judgement: are records `a` and `b` (ids) duplicates in `view` by `method`?"""

    line: int
    view: str
    method: str
    a: str
    b: str
    duplicate: bool


def read_labels(path: Path, default_view: str) -> list[LabelledPair]:
    """A labels file: JSON Lines, one pair a line, `{"a": ID, "b": ID, "duplicate": true|false}`
    with optional `"view"` (default: the scan's dedup view) and `"method"` (`minhash`, the
    default, or `embedding`). Ids are the record ids the scan reports."""
    out: list[LabelledPair] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InputError(f"{path}: cannot read the labels ({exc.strerror or exc})") from exc
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: line {n} is not valid JSON ({exc.msg})") from exc
        if not isinstance(row, dict) or not {"a", "b", "duplicate"} <= set(row):
            raise InputError(
                f'{path}: line {n} needs {{"a": ID, "b": ID, "duplicate": true|false}}, got '
                f"{line[:80]!r}"
            )
        if not isinstance(row["duplicate"], bool):
            raise InputError(f"{path}: line {n}: `duplicate` must be true or false")
        method = str(row.get("method", "minhash"))
        if method not in ("minhash", "embedding"):
            raise InputError(f"{path}: line {n}: `method` must be minhash or embedding")
        view = str(row.get("view", default_view))
        out.append(LabelledPair(n, view, method, str(row["a"]), str(row["b"]), row["duplicate"]))
    if not out:
        raise InputError(f"{path}: no labelled pairs")
    return out


def label_scores(
    labels: Sequence[LabelledPair],
    pairs: Mapping[str, PairSet],
    index_of: Mapping[str, int],
    path: Path,
) -> list[float | None]:
    """The saved score of each labelled pair; None for a pair the scan did not keep (it
    scored below the floor, or LSH never proposed it): no threshold at or above the floor
    joins it."""
    lookup: dict[tuple[str, int, int, int], float] = {}
    for view, ps in pairs.items():
        for a, b, m, score in zip(
            ps.a.tolist(), ps.b.tolist(), ps.method.tolist(), ps.score.tolist(), strict=True
        ):
            lookup[(view, min(a, b), max(a, b), m)] = score
    out: list[float | None] = []
    for lab in labels:
        if lab.view not in pairs:
            raise InputError(
                f"{path}: line {lab.line}: view {lab.view!r} was not scanned "
                f"(scanned: {', '.join(pairs)})"
            )
        ends = []
        for rid in (lab.a, lab.b):
            if rid not in index_of:
                raise InputError(
                    f"{path}: line {lab.line}: no record with id {rid!r} in the scanned data"
                )
            ends.append(index_of[rid])
        a, b = min(ends), max(ends)
        score = lookup.get((lab.view, a, b, PAIR_METHODS.index(lab.method)))
        if score is None and lookup.get((lab.view, a, b, PAIR_METHODS.index("exact"))):
            score = 1.0  # identical texts: joined by the exact edge at any threshold
        out.append(score)
    return out


@dataclass(frozen=True)
class ThresholdFit:
    """The threshold labelled pairs ask for, with scikit-learn's precision/recall curve."""

    method: str
    threshold: float
    precision: float
    recall: float
    f1: float
    average_precision: float
    positives: int
    negatives: int
    unscored: int  # labelled pairs the scan did not keep (below every threshold here)
    curve: list[tuple[float, float, float]]  # (threshold, precision, recall), rising threshold
    rule: str


def fit_threshold(
    scores: Sequence[float | None],
    duplicate: Sequence[bool],
    *,
    method: str = "minhash",
    floor: float = 0.0,
    min_precision: float | None = None,
) -> ThresholdFit:
    """The threshold that best separates labelled duplicates from non-duplicates.

    Every distinct saved score is a candidate cut (`sklearn.metrics.precision_recall_curve`);
    pairs the scan did not keep count as scoring below all of them. With `min_precision`, the
    lowest cut whose precision reaches it (the most recall at that precision); otherwise the
    cut with the best F1 (ties: the higher cut).

    Examples:
        >>> fit = fit_threshold([0.95, 0.9, 0.74, 0.71, None], [True, True, True, False, False])
        >>> fit.threshold, fit.precision, fit.recall
        (0.74, 1.0, 1.0)
    """
    import numpy as np
    from sklearn.metrics import average_precision_score, precision_recall_curve

    if len(scores) != len(duplicate):
        raise ValueError("one label per score")
    y = np.asarray(duplicate, dtype=bool)
    if y.all() or not y.any():
        raise ConfigError(
            "the labels need both duplicates and non-duplicates to place a threshold between "
            f"them (got {int(y.sum())} duplicates of {len(y)})"
        )
    if min_precision is not None and not 0.0 < min_precision <= 1.0:
        raise ConfigError(f"--min-precision must be in (0, 1], got {min_precision}")
    unscored = sum(s is None for s in scores)
    below = min(floor, *(s for s in scores if s is not None)) - 1.0
    x = np.asarray([below if s is None else float(s) for s in scores], dtype=np.float64)
    precision, recall, cuts = precision_recall_curve(y, x)
    precision, recall = precision[:-1], recall[:-1]  # the last point has no threshold
    keep = cuts > below  # a cut below the floor would need a rescan, not a rethreshold
    precision, recall, cuts = precision[keep], recall[keep], cuts[keep]
    f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    if min_precision is not None:
        ok = np.flatnonzero(precision >= min_precision - 1e-12)
        if not len(ok):
            raise ConfigError(
                f"no threshold reaches precision {min_precision} on these labels (best "
                f"{float(precision.max()):.3f}); lower --min-precision or label more pairs"
            )
        k = int(ok[0])
        rule = f"lowest threshold with precision >= {min_precision}"
    else:
        k = int(np.flatnonzero(f1 == f1.max())[-1])
        rule = "best F1"
    return ThresholdFit(
        method=method,
        threshold=round(float(cuts[k]), 6),
        precision=round(float(precision[k]), 6),
        recall=round(float(recall[k]), 6),
        f1=round(float(f1[k]), 6),
        average_precision=round(float(average_precision_score(y, x)), 6),
        positives=int(y.sum()),
        negatives=int((~y).sum()),
        unscored=unscored,
        curve=[
            (round(float(t), 6), round(float(p), 6), round(float(r), 6))
            for t, p, r in zip(cuts, precision, recall, strict=True)
        ],
        rule=rule,
    )
