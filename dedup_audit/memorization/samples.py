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
from collections.abc import Iterable, Mapping
from statistics import mean, median
from typing import Any

from dedup_audit.memorization.curves import (
    SIZE_BUCKETS,
    log_ratio,
    record_curves,
    size_bucket,
    units_of,
)
from dedup_audit.memorization.exposures import exposures
from dedup_audit.memorization.losses import Issue, LossTable
from dedup_audit.memorization.membership import Membership
from dedup_audit.memorization.staircase import _r
from dedup_audit.memorization.stats import mann_whitney, spearman

TOP_N = 10
GUESSED = "guessed"


def analyze_samples(
    losses: LossTable,
    membership: Membership | None = None,
    *,
    heldout_keys: Iterable[str] = (),
    top_n: int = TOP_N,
) -> dict[str, Any]:
    """The per-sample section of report.json (see the module docstring for every definition)."""
    held_set = set(heldout_keys)
    curves, used_key, held, issues, notes = record_curves(losses, membership, held_set)
    issues = list(losses.issues) + issues
    guessed = [w for w in losses.scored_with() if GUESSED in w]
    if guessed:
        issues.append(
            Issue(
                "guessed_settings",
                len(guessed),
                "the losses were scored with guessed settings (no training YAML or flags): "
                "their tokens may differ from the trained ones; rescore with "
                "`dedup-audit losses --config train.yaml`",
                guessed[:5],
            )
        )
    out: dict[str, Any] = {
        "available": bool(curves),
        "losses_path": losses.path,
        "rows_read": losses.raw_rows,
        "issues": [i.to_dict() for i in issues],
        "join": notes,
        "scored_with": losses.scored_with(),
        "membership": None
        if membership is None
        else {
            "source": membership.source,
            "view": membership.view,
            "records": membership.n_records,
            "duplicated_records": membership.duplicated_records,
            "clusters": len(membership.members),
        },
    }
    if not curves:
        out["reason"] = "no usable per-sample loss joined the data"
        return out
    epochs = sorted({e for c in curves.values() for e in c})
    trained = [e for e in epochs if e > 0]
    start = epochs[0]
    last = epochs[-1]
    first = trained[0] if trained else start
    out["epochs"] = epochs
    out["epoch_steps"] = {f"{e:g}": s for e, s in sorted(losses.steps().items())}
    units = units_of(curves, membership)
    size_of = {i: u.size for u in units for i in u.records}
    kind_of = {i: u.kind for u in units for i in u.records}

    # --- memorization score reference from held-out samples
    ref: float | None = None
    method = "raw log-loss reduction (no held-out reference)"
    held_last = [v[last] for v in held.values() if last in v]
    held_ratios = [r for v in held.values() if (r := log_ratio(v, start, last)) is not None]
    final_form = False
    if held_ratios and start != last:
        ref = median(held_ratios)
        method = f"log(L[{start:g}]/L[{last:g}]) minus the held-out median of the same (n={len(held_ratios)})"
    elif held_last:
        final_form = True
        ref = median(held_last)
        method = f"log(median held-out L[{last:g}] / L[{last:g}]) (n held-out={len(held_last)})"

    def score(curve: Mapping[float, float]) -> float | None:
        if final_form:
            b = curve.get(last)
            return math.log((ref or 0.0) / b) if b and b > 0 and ref and ref > 0 else None
        r = log_ratio(curve, start, last)
        return None if r is None else r - (ref or 0.0)

    out["memorization_score"] = {"definition": method, "reference": _r(ref)}

    # --- groups: mean curves and boundary shares (records weighted, as the trainer weights rows)
    def groups_of(idx: int) -> list[str]:
        gs = [f"size:{size_bucket(size_of[idx])}"]
        gs.append(f"kind:{kind_of[idx]}")
        if membership is not None:
            gs += [f"view:{v}" for v in membership.other_views.get(idx, [])]
        return gs

    group_records: dict[str, list[int]] = defaultdict(list)
    for idx in sorted(curves):
        for g in groups_of(idx):
            group_records[g].append(idx)
    groups: dict[str, Any] = {}
    gorder = {f"size:{g}": i for i, g in enumerate(SIZE_BUCKETS)}
    for g, idxs in sorted(group_records.items(), key=lambda kv: (gorder.get(kv[0], 99), kv[0])):
        curve = {}
        for e in epochs:
            vals = [curves[i][e] for i in idxs if e in curves[i]]
            curve[f"{e:g}"] = _r(mean(vals)) if vals else None
        groups[g] = {"records": len(idxs), "mean_loss": curve}
    if held:
        curve = {}
        for e in epochs:
            vals = [v[e] for v in held.values() if e in v]
            curve[f"{e:g}"] = _r(mean(vals)) if vals else None
        groups["heldout"] = {"records": len(held), "mean_loss": curve}
    out["groups"] = groups

    boundaries = []
    for a, b in itertools.pairwise(epochs):
        both = [i for i in curves if a in curves[i] and b in curves[i]]
        if not both:
            continue
        total = mean(curves[i][a] - curves[i][b] for i in both)
        shares: dict[str, Any] = {}
        for family in ("size", "kind"):
            part: dict[str, Any] = {}
            fam = defaultdict(list)
            for i in both:
                g = size_bucket(size_of[i]) if family == "size" else kind_of[i]
                fam[g].append(curves[i][a] - curves[i][b])
            order = {g: i for i, g in enumerate(SIZE_BUCKETS)}
            for g, drops in sorted(fam.items(), key=lambda kv: (order.get(kv[0], 99), kv[0])):
                w = len(drops) / len(both)
                d = mean(drops)
                part[g] = {
                    "records": len(drops),
                    "row_share": _r(w),
                    "mean_drop": _r(d),
                    "contribution": _r(w * d),
                    "share_of_drop": _r(w * d / total) if total else None,
                }
            shares[family] = part
        singles = [curves[i][a] - curves[i][b] for i in both if size_of[i] == 1]
        hd = [v[a] - v[b] for v in held.values() if a in v and b in v]
        boundaries.append(
            {
                "from_epoch": a,
                "to_epoch": b,
                "records": len(both),
                "total_mean_drop": _r(total),
                "shares": shares,
                "singleton_fraction_dropping": _r(sum(1 for d in singles if d > 0) / len(singles))
                if singles
                else None,
                "heldout_mean_drop": _r(mean(hd)) if hd else None,
            }
        )
    out["boundaries"] = boundaries

    out["exposures"] = exposures(curves, size_of)

    # --- unit-level values and statistics
    unit_rows = []
    total_drop: dict[str, float | None] = {}
    for u in units:
        ucurves = [curves[i] for i in u.records]
        sc = [s for c in ucurves if (s := score(c)) is not None]
        dr = [c[first] - c[last] for c in ucurves if first in c and last in c]
        tot = [c[start] - c[last] for c in ucurves if start in c and last in c]
        unit_rows.append((u, mean(sc) if sc else None, mean(dr) if dr else None))
        total_drop[u.uid] = mean(tot) if tot else None
    dup = [s for u, s, _ in unit_rows if u.size > 1 and s is not None]
    uni = [s for u, s, _ in unit_rows if u.size == 1 and s is not None]
    dup_d = [d for u, _, d in unit_rows if u.size > 1 and d is not None]
    uni_d = [d for u, _, d in unit_rows if u.size == 1 and d is not None]
    sp = [(float(u.size), d) for u, _, d in unit_rows if d is not None]
    spt = [(float(u.size), t) for u, _, _ in unit_rows if (t := total_drop[u.uid]) is not None]
    stats_out: dict[str, Any] = {
        "unit": "cluster (mean over its members) or singleton record",
        "auc_memorization_duplicated_vs_unique": mann_whitney(dup, uni),
        "mannwhitney_drop_since_first_duplicated_vs_unique": mann_whitney(dup_d, uni_d),
        "spearman_copies_vs_total_drop": spearman([a for a, _ in spt], [b for _, b in spt]),
        "spearman_copies_vs_drop_since_first": spearman([a for a, _ in sp], [b for _, b in sp]),
        "total_drop": {"from_epoch": start, "to_epoch": last},
        "drop_since_first": {"from_epoch": first, "to_epoch": last},
    }
    train_rel = [log_ratio(c, first, last) for c in curves.values()]
    held_rel = [log_ratio(v, first, last) for v in held.values()]
    tr = [x for x in train_rel if x is not None]
    hr = [x for x in held_rel if x is not None]
    stats_out["train_vs_heldout_log_drop"] = {
        **mann_whitney(tr, hr),
        "train_median": _r(median(tr)) if tr else None,
        "heldout_median": _r(median(hr)) if hr else None,
    }
    out["stats"] = stats_out
    # drop distributions for the plots: histogram per size bucket (records)
    out["drop_distribution"] = _histograms(
        [
            (size_bucket(size_of[i]), c[first] - c[last])
            for i, c in curves.items()
            if first in c and last in c
        ],
        [v[first] - v[last] for v in held.values() if first in v and last in v],
    )
    out["drop_distribution"]["from_epoch"] = first
    out["drop_distribution"]["to_epoch"] = last

    # --- most memorized units, members side by side
    ranked = sorted(
        (r for r in unit_rows if r[1] is not None), key=lambda r: (-(r[1] or 0.0), r[0].uid)
    )
    top = []
    for u, sc_u, dr_u in ranked[:top_n]:
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
                    "losses": {f"{e:g}": _r(v) for e, v in sorted(c.items())},
                    **((membership.texts.get(i) or {}) if membership else {}),
                }
            )
        top.append(
            {
                "unit": u.uid,
                "cluster_id": u.cluster_id,
                "copies": u.size,
                "kind": u.kind,
                "memorization_score": _r(sc_u),
                "drop_since_first": _r(dr_u),
                "members": mem_rows,
                "more_members": max(0, len(member_idx) - 6),
            }
        )
    out["top_memorized"] = top
    out["units"] = {"duplicated": len(dup), "unique": len(uni), "total": len(unit_rows)}
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
    return {"edges": [_r(e) for e in edges], "counts": counts}
