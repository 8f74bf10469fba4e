"""The per-sample section of report.json: who memorized what, by cluster size and kind.

From the joined record curves (see `curves`) it computes the memorization score, mean curves per
group, each group's share of every boundary drop, the exposure check, the unit-level statistics,
the drop histograms and the most memorized units with their members side by side.

Memorization score of a unit: log(L_start / L_last) - median over held-out samples of the same
quantity (start = epoch 0 when the base model was scored, else the first measured epoch). It is
the log-loss reduction beyond what samples never trained on got. Held-out rows measured only at
the last epoch give log(median held-out L_last / L_last) instead; without held-out samples the raw
log-loss reduction is used (the AUC does not change: a constant shift keeps the ranking).
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from statistics import mean, median
from typing import Any

from dedup_audit.training.curves import (
    SIZE_BUCKETS,
    Unit,
    log_ratio,
    record_curves,
    size_bucket,
    units_of,
)
from dedup_audit.training.exposures import exposures
from dedup_audit.training.losses import Issue, LossTable
from dedup_audit.training.membership import Membership
from dedup_audit.training.staircase import rounded
from dedup_audit.training.stats import mann_whitney, spearman

TOP_N = 10
GUESSED = "guessed"


@dataclass(frozen=True)
class Epochs:
    """The measured epochs: start (0 = base model when scored), first trained, last."""

    all: list[float]
    start: float
    first: float
    last: float

    @classmethod
    def of(cls, curves: Mapping[int, Mapping[float, float]]) -> Epochs:
        epochs = sorted({e for c in curves.values() for e in c})
        trained = [e for e in epochs if e > 0]
        return cls(epochs, epochs[0], trained[0] if trained else epochs[0], epochs[-1])


@dataclass(frozen=True)
class ScoreReference:
    """How a unit's memorization score is measured against the held-out samples."""

    ref: float | None
    definition: str
    final_form: bool  # held-out rows measured only at the last epoch
    start: float
    last: float

    def score(self, curve: Mapping[float, float]) -> float | None:
        if self.final_form:
            b = curve.get(self.last)
            ok = b and b > 0 and self.ref and self.ref > 0
            return math.log((self.ref or 0.0) / b) if ok and b else None
        r = log_ratio(curve, self.start, self.last)
        return None if r is None else r - (self.ref or 0.0)


def score_reference(held: Mapping[str, Mapping[float, float]], ep: Epochs) -> ScoreReference:
    """The held-out median log-loss reduction (or final loss) a unit's score is relative to."""
    start, last = ep.start, ep.last
    held_last = [v[last] for v in held.values() if last in v]
    held_ratios = [r for v in held.values() if (r := log_ratio(v, start, last)) is not None]
    if held_ratios and start != last:
        return ScoreReference(
            median(held_ratios),
            f"log(L[{start:g}]/L[{last:g}]) minus the held-out median of the same "
            f"(n={len(held_ratios)})",
            False,
            start,
            last,
        )
    if held_last:
        return ScoreReference(
            median(held_last),
            f"log(median held-out L[{last:g}] / L[{last:g}]) (n held-out={len(held_last)})",
            True,
            start,
            last,
        )
    return ScoreReference(
        None, "raw log-loss reduction (no held-out reference)", False, start, last
    )


@dataclass(frozen=True)
class UnitValues:
    """One unit's memorization score, drop since the first trained epoch and total drop."""

    unit: Unit
    score: float | None
    drop: float | None
    total_drop: float | None


def _issues(losses: LossTable, issues: list[Issue]) -> list[Issue]:
    out = list(losses.issues) + issues
    guessed = [w for w in losses.scored_with() if GUESSED in w]
    if guessed:
        out.append(
            Issue(
                "guessed_settings",
                len(guessed),
                "the losses were scored with guessed settings (no training YAML or flags): "
                "their tokens may differ from the trained ones; rescore with "
                "`dedup-audit losses --config train.yaml`",
                guessed[:5],
            )
        )
    return out


def _membership_summary(membership: Membership | None) -> dict[str, Any] | None:
    if membership is None:
        return None
    return {
        "source": membership.source,
        "view": membership.view,
        "records": membership.n_records,
        "duplicated_records": membership.duplicated_records,
        "clusters": len(membership.members),
    }


def _mean_curve(values: list[Mapping[float, float]], epochs: list[float]) -> dict[str, Any]:
    curve = {}
    for e in epochs:
        vals = [v[e] for v in values if e in v]
        curve[f"{e:g}"] = rounded(mean(vals)) if vals else None
    return curve


def group_curves(
    curves: Mapping[int, Mapping[float, float]],
    held: Mapping[str, Mapping[float, float]],
    epochs: list[float],
    groups_of: Callable[[int], list[str]],
) -> dict[str, Any]:
    """Mean loss per epoch of every group (size bucket, kind, other views) and of held-out."""
    group_records: dict[str, list[int]] = defaultdict(list)
    for idx in sorted(curves):
        for g in groups_of(idx):
            group_records[g].append(idx)
    gorder = {f"size:{g}": i for i, g in enumerate(SIZE_BUCKETS)}
    groups: dict[str, Any] = {}
    for g, idxs in sorted(group_records.items(), key=lambda kv: (gorder.get(kv[0], 99), kv[0])):
        groups[g] = {
            "records": len(idxs),
            "mean_loss": _mean_curve([curves[i] for i in idxs], epochs),
        }
    if held:
        groups["heldout"] = {
            "records": len(held),
            "mean_loss": _mean_curve(list(held.values()), epochs),
        }
    return groups


def boundary_shares(
    curves: Mapping[int, Mapping[float, float]],
    held: Mapping[str, Mapping[float, float]],
    epochs: list[float],
    size_of: Mapping[int, int],
    kind_of: Mapping[int, str],
) -> list[dict[str, Any]]:
    """Each group's share of every boundary drop: total = sum over groups of share x drop."""
    out = []
    order = {g: i for i, g in enumerate(SIZE_BUCKETS)}
    for a, b in itertools.pairwise(epochs):
        both = [i for i in curves if a in curves[i] and b in curves[i]]
        if not both:
            continue
        total = mean(curves[i][a] - curves[i][b] for i in both)
        shares: dict[str, Any] = {}
        for family in ("size", "kind"):
            fam: dict[str, list[float]] = defaultdict(list)
            for i in both:
                g = size_bucket(size_of[i]) if family == "size" else kind_of[i]
                fam[g].append(curves[i][a] - curves[i][b])
            part: dict[str, Any] = {}
            for g, drops in sorted(fam.items(), key=lambda kv: (order.get(kv[0], 99), kv[0])):
                w = len(drops) / len(both)
                d = mean(drops)
                part[g] = {
                    "records": len(drops),
                    "row_share": rounded(w),
                    "mean_drop": rounded(d),
                    "contribution": rounded(w * d),
                    "share_of_drop": rounded(w * d / total) if total else None,
                }
            shares[family] = part
        singles = [curves[i][a] - curves[i][b] for i in both if size_of[i] == 1]
        hd = [v[a] - v[b] for v in held.values() if a in v and b in v]
        out.append(
            {
                "from_epoch": a,
                "to_epoch": b,
                "records": len(both),
                "total_mean_drop": rounded(total),
                "shares": shares,
                "singleton_fraction_dropping": rounded(
                    sum(1 for d in singles if d > 0) / len(singles)
                )
                if singles
                else None,
                "heldout_mean_drop": rounded(mean(hd)) if hd else None,
            }
        )
    return out


def unit_values(
    units: list[Unit],
    curves: Mapping[int, Mapping[float, float]],
    reference: ScoreReference,
    ep: Epochs,
) -> list[UnitValues]:
    out = []
    for u in units:
        ucurves = [curves[i] for i in u.records]
        sc = [s for c in ucurves if (s := reference.score(c)) is not None]
        dr = [c[ep.first] - c[ep.last] for c in ucurves if ep.first in c and ep.last in c]
        tot = [c[ep.start] - c[ep.last] for c in ucurves if ep.start in c and ep.last in c]
        out.append(
            UnitValues(
                u, mean(sc) if sc else None, mean(dr) if dr else None, mean(tot) if tot else None
            )
        )
    return out


def unit_statistics(
    values: list[UnitValues],
    curves: Mapping[int, Mapping[float, float]],
    held: Mapping[str, Mapping[float, float]],
    ep: Epochs,
) -> dict[str, Any]:
    """AUC / Mann-Whitney / Spearman over units (one value per cluster or singleton)."""
    dup = [v.score for v in values if v.unit.size > 1 and v.score is not None]
    uni = [v.score for v in values if v.unit.size == 1 and v.score is not None]
    dup_d = [v.drop for v in values if v.unit.size > 1 and v.drop is not None]
    uni_d = [v.drop for v in values if v.unit.size == 1 and v.drop is not None]
    sp = [(float(v.unit.size), v.drop) for v in values if v.drop is not None]
    spt = [(float(v.unit.size), v.total_drop) for v in values if v.total_drop is not None]
    stats_out: dict[str, Any] = {
        "unit": "cluster (mean over its members) or singleton record",
        "auc_memorization_duplicated_vs_unique": mann_whitney(dup, uni),
        "mannwhitney_drop_since_first_duplicated_vs_unique": mann_whitney(dup_d, uni_d),
        "spearman_copies_vs_total_drop": spearman([a for a, _ in spt], [b for _, b in spt]),
        "spearman_copies_vs_drop_since_first": spearman([a for a, _ in sp], [b for _, b in sp]),
        "total_drop": {"from_epoch": ep.start, "to_epoch": ep.last},
        "drop_since_first": {"from_epoch": ep.first, "to_epoch": ep.last},
    }
    tr = [x for c in curves.values() if (x := log_ratio(c, ep.first, ep.last)) is not None]
    hr = [x for v in held.values() if (x := log_ratio(v, ep.first, ep.last)) is not None]
    stats_out["train_vs_heldout_log_drop"] = {
        **mann_whitney(tr, hr),
        "train_median": rounded(median(tr)) if tr else None,
        "heldout_median": rounded(median(hr)) if hr else None,
    }
    return stats_out


def top_memorized(
    values: list[UnitValues],
    curves: Mapping[int, Mapping[float, float]],
    used_key: Mapping[int, str],
    membership: Membership | None,
    top_n: int,
) -> list[dict[str, Any]]:
    """The most memorized units, every member (up to 6) with its losses and text."""
    ranked = sorted(
        (v for v in values if v.score is not None), key=lambda v: (-(v.score or 0.0), v.unit.uid)
    )
    top = []
    for v in ranked[:top_n]:
        u = v.unit
        member_idx = (
            list(membership.members.get(u.cluster_id, u.records))
            if membership and u.cluster_id is not None
            else u.records
        )
        mem_rows = []
        for i in member_idx[:6]:
            c = curves.get(i, {})
            mem_rows.append(
                {
                    "id": membership.record_ids.get(i, used_key.get(i, ""))
                    if membership
                    else used_key.get(i, ""),
                    "loss_key": used_key.get(i),
                    "losses": {f"{e:g}": rounded(x) for e, x in sorted(c.items())},
                    **((membership.texts.get(i) or {}) if membership else {}),
                }
            )
        top.append(
            {
                "unit": u.uid,
                "cluster_id": u.cluster_id,
                "copies": u.size,
                "kind": u.kind,
                "memorization_score": rounded(v.score),
                "drop_since_first": rounded(v.drop),
                "members": mem_rows,
                "more_members": max(0, len(member_idx) - 6),
            }
        )
    return top


def analyze_samples(
    losses: LossTable,
    membership: Membership | None = None,
    *,
    heldout_keys: Iterable[str] = (),
    top_n: int = TOP_N,
) -> dict[str, Any]:
    """The per-sample section of report.json (see the module docstring for every definition),
    assembled from the stages above."""
    curves, used_key, held, issues, notes = record_curves(losses, membership, set(heldout_keys))
    out: dict[str, Any] = {
        "available": bool(curves),
        "losses_path": losses.path,
        "rows_read": losses.raw_rows,
        "issues": [i.to_dict() for i in _issues(losses, issues)],
        "join": notes,
        "scored_with": losses.scored_with(),
        "membership": _membership_summary(membership),
    }
    if not curves:
        out["reason"] = "no usable per-sample loss joined the data"
        return out
    ep = Epochs.of(curves)
    out["epochs"] = ep.all
    out["epoch_steps"] = {f"{e:g}": s for e, s in sorted(losses.steps().items())}
    units = units_of(curves, membership)
    size_of = {i: u.size for u in units for i in u.records}
    kind_of = {i: u.kind for u in units for i in u.records}
    reference = score_reference(held, ep)
    out["memorization_score"] = {
        "definition": reference.definition,
        "reference": rounded(reference.ref),
    }

    def groups_of(idx: int) -> list[str]:
        gs = [f"size:{size_bucket(size_of[idx])}", f"kind:{kind_of[idx]}"]
        if membership is not None:
            gs += [f"view:{v}" for v in membership.other_views.get(idx, [])]
        return gs

    out["groups"] = group_curves(curves, held, ep.all, groups_of)
    out["boundaries"] = boundary_shares(curves, held, ep.all, size_of, kind_of)
    out["exposures"] = exposures(curves, size_of)
    values = unit_values(units, curves, reference, ep)
    out["stats"] = unit_statistics(values, curves, held, ep)
    out["drop_distribution"] = _histograms(
        [
            (size_bucket(size_of[i]), c[ep.first] - c[ep.last])
            for i, c in curves.items()
            if ep.first in c and ep.last in c
        ],
        [v[ep.first] - v[ep.last] for v in held.values() if ep.first in v and ep.last in v],
    )
    out["drop_distribution"]["from_epoch"] = ep.first
    out["drop_distribution"]["to_epoch"] = ep.last
    out["top_memorized"] = top_memorized(values, curves, used_key, membership, top_n)
    n_dup = sum(1 for v in values if v.unit.size > 1 and v.score is not None)
    n_uni = sum(1 for v in values if v.unit.size == 1 and v.score is not None)
    out["units"] = {"duplicated": n_dup, "unique": n_uni, "total": len(values)}
    return out


def _histograms(
    values: list[tuple[str, float]], heldout: list[float], bins: int = 20
) -> dict[str, Any]:
    if not values:
        return {"edges": [], "counts": {}}
    allv = [v for _, v in values] + heldout
    lo, hi = min(allv), max(allv)
    if hi <= lo:
        hi = lo + 1e-6
    edges = [lo + (hi - lo) * i / bins for i in range(bins + 1)]

    def hist(vs: list[float]) -> list[int]:
        counts = [0] * bins
        for v in vs:
            j = min(bins - 1, int((v - lo) / (hi - lo) * bins))
            counts[j] += 1
        return counts

    groups: dict[str, list[float]] = defaultdict(list)
    for g, v in values:
        groups[g].append(v)
    counts = {g: hist(groups[g]) for g in SIZE_BUCKETS if g in groups}
    if heldout:
        counts["heldout"] = hist(heldout)
    return {"edges": [rounded(e) for e in edges], "counts": counts}
