"""Join per-sample losses with the scan's clusters and say what the data shows about memorization.

Units. The trainer averages over rows, so per-epoch curves and each group's share of a boundary
drop weight every dataset record (row) once: a loss keyed by content hash stands for every exact
copy. Statistics (Mann-Whitney U, Spearman, AUC) use one value per *unit* - a duplicate cluster
(mean over its members) or a singleton - so k identical copies are not counted as k independent
observations.

Memorization score of a unit: log(L_start / L_last) - median over held-out samples of the same
quantity (start = epoch 0 when the base model was scored, else the first measured epoch). It is
the log-loss reduction beyond what samples never trained on got. Held-out rows measured only at
the last epoch give log(median held-out L_last / L_last) instead; without held-out samples the raw
log-loss reduction is used (the AUC does not change: a constant shift keeps the ranking).

Exposures. A record in a cluster of k copies is seen k times per epoch, so at epoch e it has had
k*e exposures. If the curves of different cluster sizes overlap when plotted against exposures,
exposure count explains their difference; if they do not, something else does.

The per-epoch reshuffle gives every sample one more exposure at each boundary, so a staircase
needs no duplicates at all; duplicates add exposures inside epochs. The diagnosis therefore
compares groups instead of assuming that duplicates cause the step.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean, median
from typing import Any

from dedup_audit.errors import InputError
from dedup_audit.memorization.losses import Issue, LossTable, join_keys
from dedup_audit.memorization.staircase import _p, _r
from dedup_audit.records import Cluster, Dataset, Sample, sample_key

SIZE_BUCKETS = ("singleton", "2", "3-4", "5+")
TOP_N = 10
TEXT_CHARS = 240


def size_bucket(size: int) -> str:
    if size <= 1:
        return "singleton"
    if size == 2:
        return "2"
    if size <= 4:
        return "3-4"
    return "5+"


@dataclass
class Membership:
    """Which records exist, how loss keys reach them, and which dedup-view cluster holds each."""

    source: str  # "data" | "scan"
    view: str
    n_records: int | None  # None when only a scan report is known (records outside clusters unseen)
    ids: dict[str, int]
    hashes: dict[str, tuple[int, ...]]
    record_ids: dict[int, str]
    cluster_of: dict[int, tuple[int, int, str]]  # index -> (cluster id, size, kind)
    members: dict[int, tuple[int, ...]]
    texts: dict[int, dict[str, str]] = field(default_factory=dict)
    other_views: dict[int, list[str]] = field(default_factory=dict)

    @property
    def duplicated_records(self) -> int:
        return len(self.cluster_of)


def _text(sample: Sample) -> dict[str, str]:
    prompt = "\n".join(t.text for t in sample.turns if t.role != "assistant")
    response = "\n".join(t.text for t in sample.turns if t.role == "assistant")
    clip = lambda s: s if len(s) <= TEXT_CHARS else s[: TEXT_CHARS - 1] + "…"  # noqa: E731
    return {"prompt": clip(prompt), "response": clip(response)}


def membership_from_dataset(
    dataset: Dataset, clusters: Sequence[Cluster], view: str = "full"
) -> Membership:
    """From a loaded dataset and the scan's clusters (any object with .clusters works too)."""
    ids: dict[str, int] = {}
    hashes: dict[str, list[int]] = defaultdict(list)
    record_ids: dict[int, str] = {}
    texts: dict[int, dict[str, str]] = {}
    for r in dataset.records:
        ids[r.id] = r.index
        hashes[sample_key(r.sample)].append(r.index)
        record_ids[r.index] = r.id
        texts[r.index] = _text(r.sample)
    cluster_of: dict[int, tuple[int, int, str]] = {}
    members: dict[int, tuple[int, ...]] = {}
    other: dict[int, list[str]] = defaultdict(list)
    for c in clusters:
        if c.view == view:
            members[c.id] = tuple(c.members)
            for m in c.members:
                cluster_of[m] = (c.id, c.size, c.kind)
        else:
            for m in c.members:
                other[m].append(f"{c.view}:{c.kind}")
    return Membership(
        source="data",
        view=view,
        n_records=len(dataset.records),
        ids=ids,
        hashes={k: tuple(v) for k, v in hashes.items()},
        record_ids=record_ids,
        cluster_of=cluster_of,
        members=members,
        texts=texts,
        other_views={k: sorted(set(v)) for k, v in other.items()},
    )


def membership_from_scan_report(report: Mapping[str, Any], view: str | None = None) -> Membership:
    """From a saved scan report.json ("clusters": [{id, view, kind, size, members: [{index, id,
    key}]}]). Records outside every cluster are unknown; loss keys that match no member are
    treated as singletons (and counted)."""
    if not isinstance(report.get("clusters"), list):
        raise InputError(
            "scan report has no 'clusters' list; pass the report.json `dedup-audit scan` wrote"
        )
    cfg = report.get("config") or {}
    view = view or str(cfg.get("dedup_view") or "full")
    ids: dict[str, int] = {}
    hashes: dict[str, list[int]] = defaultdict(list)
    record_ids: dict[int, str] = {}
    cluster_of: dict[int, tuple[int, int, str]] = {}
    members: dict[int, tuple[int, ...]] = {}
    other: dict[int, list[str]] = defaultdict(list)
    for c in report["clusters"]:
        try:
            mem = [(int(m["index"]), str(m["id"]), str(m.get("key", ""))) for m in c["members"]]
            cid, kind, cview = int(c["id"]), str(c["kind"]), str(c["view"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(
                f"scan report cluster {c!r:.80} lacks id/view/kind/members ({exc})"
            ) from exc
        for idx, rid, key in mem:
            ids[rid] = idx
            record_ids[idx] = rid
            if key and idx not in hashes[key]:
                hashes[key].append(idx)
        if cview == view:
            members[cid] = tuple(sorted(i for i, _, _ in mem))
            for idx, _, _ in mem:
                cluster_of[idx] = (cid, len(mem), kind)
        else:
            for idx, _, _ in mem:
                other[idx].append(f"{cview}:{kind}")
    rows = (report.get("dataset") or {}).get("rows")
    return Membership(
        source="scan",
        view=view,
        n_records=int(rows) if isinstance(rows, int) else None,
        ids=ids,
        hashes={k: tuple(sorted(v)) for k, v in hashes.items()},
        record_ids=record_ids,
        cluster_of=cluster_of,
        members=members,
        other_views={k: sorted(set(v)) for k, v in other.items()},
    )


# ---------------------------------------------------------------- statistics


def mann_whitney(x: Sequence[float], y: Sequence[float]) -> dict[str, Any]:
    """One-sided U test (x > y) and AUC = U / (n_x n_y), with the sample sizes."""
    out: dict[str, Any] = {"n_x": len(x), "n_y": len(y), "U": None, "p_value": None, "auc": None}
    if not x or not y:
        return out
    from scipy import stats

    res = stats.mannwhitneyu(list(x), list(y), alternative="greater")
    u = float(res.statistic)
    out.update(U=_r(u, 3), p_value=_p(float(res.pvalue)), auc=_r(u / (len(x) * len(y)), 4))
    return out


def spearman(x: Sequence[float], y: Sequence[float]) -> dict[str, Any]:
    out: dict[str, Any] = {"n": len(x), "rho": None, "p_value": None}
    if len(x) < 3 or len(set(x)) < 2 or len(set(y)) < 2:
        return out
    from scipy import stats

    res = stats.spearmanr(list(x), list(y))
    out.update(rho=_r(float(res.statistic), 4), p_value=_p(float(res.pvalue)))
    return out


# ---------------------------------------------------------------- per-sample analysis


@dataclass
class _Unit:
    """A cluster (or singleton) with the records of it that have losses."""

    uid: str
    cluster_id: int | None
    size: int
    kind: str
    records: list[int]


def _curves(
    losses: LossTable, membership: Membership | None, heldout_keys: set[str]
) -> tuple[
    dict[int, dict[float, float]],
    dict[int, str],
    dict[str, dict[float, float]],
    list[Issue],
    dict[str, Any],
]:
    """Per record loss curves (index -> epoch -> loss), the key used, held-out curves, issues."""
    train = {k: v for k, v in losses.by_key("train").items() if k not in heldout_keys}
    held = losses.by_key("heldout")
    held.update({k: v for k, v in losses.by_key("train").items() if k in heldout_keys})
    issues: list[Issue] = []
    notes: dict[str, Any] = {"loss_keys": len(train), "heldout_keys": len(held)}
    curves: dict[int, dict[float, float]] = {}
    used_key: dict[int, str] = {}
    if membership is None:
        for i, (k, v) in enumerate(sorted(train.items())):
            curves[i] = v
            used_key[i] = k
        notes["joined_by"] = "none"
        return curves, used_key, held, issues, notes
    join = join_keys(sorted(train), membership.ids, membership.hashes, losses.content_keys())
    notes["joined_by"] = join.matched_by
    notes["joined_keys"] = len(join.key_to_records)
    if membership.source == "scan":
        # keys outside every cluster: singletons we cannot check against the dataset
        nxt = max([*membership.record_ids, -1]) + 1
        notes["assumed_singletons"] = len(join.unmatched)
        for k in join.unmatched:
            join.key_to_records[k] = (nxt,)
            membership.record_ids[nxt] = k
            nxt += 1
        join.unmatched = []
    else:
        issue = join.issue(len(train))
        if issue:
            issues.append(issue)
    for k, idxs in sorted(join.key_to_records.items()):
        for idx in idxs:
            # a record id key beats a content-hash key for the same record
            if idx in curves and used_key[idx] in membership.ids and k not in membership.ids:
                continue
            curves[idx] = train[k]
            used_key[idx] = k
    if membership.n_records is not None and membership.source == "data":
        missing = membership.n_records - len(curves)
        notes["records_without_loss"] = missing
        if missing:
            ex = [
                membership.record_ids[i] for i in sorted(membership.record_ids) if i not in curves
            ][:5]
            issues.append(
                Issue(
                    "records_without_loss",
                    missing,
                    f"{missing} of {membership.n_records} dataset record(s) have no loss row; the "
                    "groups use the scored records only",
                    ex,
                )
            )
    return curves, used_key, held, issues, notes


def _units(curves: Mapping[int, Any], membership: Membership | None) -> list[_Unit]:
    units: dict[str, _Unit] = {}
    for idx in sorted(curves):
        c = membership.cluster_of.get(idx) if membership else None
        if c is None:
            units[f"r{idx}"] = _Unit(f"r{idx}", None, 1, "unique", [idx])
        else:
            cid, size, kind = c
            u = units.setdefault(f"c{cid}", _Unit(f"c{cid}", cid, size, kind, []))
            u.records.append(idx)
    return list(units.values())


def _log_ratio(curve: Mapping[float, float], start: float, end: float) -> float | None:
    a, b = curve.get(start), curve.get(end)
    if a is None or b is None or a <= 0 or b <= 0:
        return None
    return math.log(a / b)


def analyze_samples(
    losses: LossTable,
    membership: Membership | None = None,
    *,
    heldout_keys: Iterable[str] = (),
    top_n: int = TOP_N,
) -> dict[str, Any]:
    """The per-sample section of report.json (see the module docstring for every definition)."""
    held_set = set(heldout_keys)
    curves, used_key, held, issues, notes = _curves(losses, membership, held_set)
    issues = list(losses.issues) + issues
    out: dict[str, Any] = {
        "available": bool(curves),
        "losses_path": losses.path,
        "rows_read": losses.raw_rows,
        "issues": [i.to_dict() for i in issues],
        "join": notes,
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
    units = _units(curves, membership)
    size_of = {i: u.size for u in units for i in u.records}
    kind_of = {i: u.kind for u in units for i in u.records}

    # --- memorization score reference from held-out samples
    ref: float | None = None
    method = "raw log-loss reduction (no held-out reference)"
    held_last = [v[last] for v in held.values() if last in v]
    held_ratios = [r for v in held.values() if (r := _log_ratio(v, start, last)) is not None]
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
        r = _log_ratio(curve, start, last)
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

    # --- exposures: loss against k x epoch, per exact cluster size
    by_size: dict[int, dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    for i, c in curves.items():
        for e, v in c.items():
            by_size[size_of[i]][e].append(v)
    expo_curves = {
        str(k): [
            {"epoch": e, "exposures": _r(k * e, 3), "mean_loss": _r(mean(v)), "records": len(v)}
            for e, v in sorted(by_size[k].items())
        ]
        for k in sorted(by_size)
    }
    out["exposures"] = {"curves": expo_curves, **_exposure_overlap(by_size)}

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
    train_rel = [_log_ratio(c, first, last) for c in curves.values()]
    held_rel = [_log_ratio(v, first, last) for v in held.values()]
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


def _exposure_overlap(by_size: Mapping[int, Mapping[float, list[float]]]) -> dict[str, Any]:
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
        "mean_spread_at_equal_epoch": _r(se),
        "mean_spread_at_equal_exposures": _r(sx),
        "spread_ratio": _r(ratio),
        "shared_exposure_points": len(spread_x),
    }


# ---------------------------------------------------------------- training args, events


def read_training_args(path: str | Path) -> dict[str, Any]:
    """A LLaMA-Factory YAML, a training_args.json, or HF's all-args JSON -> dict."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: training args file not found")
    text = p.read_text(encoding="utf-8")
    if p.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError as exc:  # pragma: no cover - pyyaml ships with datasets
            raise InputError(f"{p}: reading YAML needs pyyaml (pip install pyyaml)") from exc
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InputError(f"{p}: not valid YAML ({exc})") from exc
    else:
        import json

        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"{p}: not valid JSON ({exc.msg}); give a YAML or JSON file") from exc
    if not isinstance(data, dict):
        raise InputError(f"{p}: expected a mapping of training arguments")
    return data


ARG_KEYS = (
    "num_train_epochs",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "learning_rate",
    "lr_scheduler_type",
    "warmup_ratio",
    "warmup_steps",
    "logging_steps",
    "save_strategy",
    "save_steps",
    "eval_strategy",
    "evaluation_strategy",
    "eval_steps",
    "val_size",
    "max_steps",
    "overwrite_output_dir",
    "resume_from_checkpoint",
    "dataset",
    "finetuning_type",
)


def relevant_args(args: Mapping[str, Any] | None) -> dict[str, Any]:
    if not args:
        return {}
    return {
        k: args[k] for k in ARG_KEYS if k in args and isinstance(args[k], (int, float, str, bool))
    }


# ---------------------------------------------------------------- differential diagnosis

SUPPORTED, NOT_SUPPORTED, UNDECIDED = "supported", "not supported", "undecided"


def _fmt(x: Any, spec: str = ".3g") -> str:
    return "n/a" if x is None else format(x, spec)


def _hyp(
    hid: str, title: str, verdict: str, evidence: list[str], decided_by: str
) -> dict[str, Any]:
    return {
        "id": hid,
        "hypothesis": title,
        "verdict": verdict,
        "evidence": evidence,
        "decided_by": decided_by,
    }


def diagnose(
    staircase: Mapping[str, Any] | None,
    samples: Mapping[str, Any] | None,
    *,
    args: Mapping[str, Any] | None = None,
    events: Mapping[str, Sequence[int]] | None = None,
    duplicated_records: int | None = None,
) -> list[dict[str, Any]]:
    """Verdicts for the four usual explanations of a staircase, each with evidence and the file or
    setting that would decide it when the inputs cannot."""
    args = args or {}
    st = staircase or {}
    sm = samples if samples and samples.get("available") else None
    stair = st.get("verdict")
    stair_b = [b for b in st.get("boundaries", []) if b.get("verdict") == "staircase"]
    out = []

    # (a) memorization of repeated samples
    ev: list[str] = []
    if staircase:
        ev.append(
            f"logs: staircase verdict '{stair}'"
            + (
                " at boundary(ies) "
                + ", ".join(
                    f"{b['boundary']} (drop {_fmt(b.get('drop'))} = {_fmt(b.get('ratio'), '.1f')}x trend, p={_fmt(b.get('p_value'), '.2g')})"
                    for b in stair_b
                )
                if stair_b
                else ""
            )
        )
    evl = st.get("eval") or {}
    eval_signal = bool(
        evl.get("present") and (evl.get("gap_growing") or evl.get("eval_rising_after_best"))
    )
    if evl.get("present"):
        ev.append(
            f"eval: train/eval gap {_fmt(evl.get('gap_first'))} -> {_fmt(evl.get('gap_last'))}"
            f" (growth {_fmt(evl.get('gap_growth'))}); best eval loss at epoch {_fmt(evl.get('best_eval_epoch'))}"
            + ("; eval loss rises after it" if evl.get("eval_rising_after_best") else "")
        )
    held_signal = False
    held_known = False
    sample_steps = False
    if sm:
        tvh = sm["stats"]["train_vs_heldout_log_drop"]
        if tvh.get("n_y"):
            held_known = True
            held_signal = bool(
                tvh.get("p_value") is not None
                and tvh["p_value"] < 0.01
                and (tvh.get("train_median") or 0) > (tvh.get("heldout_median") or 0)
            )
            ev.append(
                f"per-sample: median log-loss drop train {_fmt(tvh.get('train_median'))} vs held-out "
                f"{_fmt(tvh.get('heldout_median'))} (Mann-Whitney U={_fmt(tvh.get('U'), '.1f')}, "
                f"p={_fmt(tvh.get('p_value'), '.2g')}, n={tvh['n_x']} vs {tvh['n_y']})"
            )
        for b in sm.get("boundaries", []):
            f = b.get("singleton_fraction_dropping")
            if b["from_epoch"] > 0 and f is not None:
                sample_steps = sample_steps or f >= 0.8
                ev.append(
                    f"per-sample: epoch {b['from_epoch']:g}->{b['to_epoch']:g}: mean drop "
                    f"{_fmt(b['total_mean_drop'])}, {100 * f:.0f}% of unique samples dropped"
                    + (
                        f", held-out {_fmt(b['heldout_mean_drop'])}"
                        if b.get("heldout_mean_drop") is not None
                        else ""
                    )
                )
    if (stair == "staircase" or sample_steps) and (eval_signal or held_signal):
        verdict = SUPPORTED
    elif (
        (held_known or evl.get("present"))
        and not (eval_signal or held_signal)
        and stair != "staircase"
    ):
        verdict = NOT_SUPPORTED
    elif (held_known or evl.get("present")) and not (eval_signal or held_signal):
        verdict = UNDECIDED
        ev.append(
            "train loss steps down but the held-out/eval loss falls with it: generalization, not only memorization"
        )
    else:
        verdict = UNDECIDED
    out.append(
        _hyp(
            "a",
            "memorization of repeated samples (train loss falls at each new pass while held-out stalls)",
            verdict,
            ev,
            "a held-out reference: `val_size: 0.1` + `eval_strategy: epoch` in the LLaMA-Factory YAML "
            "(eval loss), or --heldout with per-sample losses of samples never trained on",
        )
    )

    # (b) duplicated or near-duplicated data
    ev = []
    if not sm or sm.get("membership") is None:
        verdict = UNDECIDED
        if duplicated_records is not None:
            ev.append(f"scan: {duplicated_records} record(s) sit in duplicate clusters")
        ev.append("no per-sample losses joined with the scan's clusters")
        if duplicated_records == 0:
            verdict = NOT_SUPPORTED
    else:
        mem = sm["membership"]
        st_auc = sm["stats"]["auc_memorization_duplicated_vs_unique"]
        sp = sm["stats"]["spearman_copies_vs_total_drop"]
        sp1 = sm["stats"]["spearman_copies_vs_drop_since_first"]
        ev.append(
            f"scan ({mem['source']}, view {mem['view']}): {mem['duplicated_records']} record(s) in "
            f"{mem['clusters']} duplicate cluster(s)"
        )
        if mem["duplicated_records"] == 0:
            verdict = NOT_SUPPORTED
        else:
            ev.append(
                f"memorization score duplicated vs unique: AUC={_fmt(st_auc.get('auc'))}, "
                f"Mann-Whitney U={_fmt(st_auc.get('U'), '.1f')}, p={_fmt(st_auc.get('p_value'), '.2g')}, "
                f"n={st_auc['n_x']} clusters vs {st_auc['n_y']} unique"
            )
            ev.append(
                f"Spearman(copies, drop epoch {sm['stats']['total_drop']['from_epoch']:g}->"
                f"{sm['stats']['total_drop']['to_epoch']:g}): rho={_fmt(sp.get('rho'))}, "
                f"p={_fmt(sp.get('p_value'), '.2g')}, n={sp['n']}; since epoch "
                f"{sm['stats']['drop_since_first']['from_epoch']:g}: rho={_fmt(sp1.get('rho'))}, n={sp1['n']}"
            )
            for b in sm.get("boundaries", []):
                sz = b["shares"]["size"]
                single = sz.get("singleton", {})
                dup_rows = 1 - (single.get("row_share") or 0.0)
                dup_drop = 1 - (single.get("share_of_drop") or 0.0) if single else 1.0
                ev.append(
                    f"epoch {b['from_epoch']:g}->{b['to_epoch']:g}: duplicated rows carry "
                    f"{100 * dup_drop:.0f}% of the mean drop from {100 * dup_rows:.0f}% of rows"
                )
            auc, p = st_auc.get("auc"), st_auc.get("p_value")
            if auc is not None and p is not None and auc >= 0.7 and p < 0.01 and st_auc["n_x"] >= 3:
                verdict = SUPPORTED
            elif auc is None or p is None:
                verdict = UNDECIDED
            elif auc < 0.6 or p >= 0.05:
                verdict = NOT_SUPPORTED
            else:
                verdict = UNDECIDED
            expo = sm.get("exposures", {})
            if expo.get("verdict"):
                ev.append(f"exposures: {expo['verdict']} ({expo.get('reason')})")
            b_single = [
                b.get("singleton_fraction_dropping")
                for b in sm.get("boundaries", [])
                if b["from_epoch"] > 0
            ]
            if b_single and min(x or 0 for x in b_single) >= 0.8:
                ev.append(
                    "unique samples also drop at every boundary: the reshuffle gives each sample one "
                    "more exposure per epoch, so the staircase does not need duplicates; duplicates deepen it"
                )
    out.append(
        _hyp(
            "b",
            "duplicated or near-duplicated data (extra exposures inside each epoch)",
            verdict,
            ev,
            "--data DATA (or --scan scan/report.json) together with --losses from `dedup-audit losses`",
        )
    )

    # (c) learning-rate schedule / batch size / gradient accumulation
    ev = []
    lr = st.get("lr") or {}
    sched = str(args.get("lr_scheduler_type") or "")
    if not staircase or not st.get("boundaries"):
        verdict = UNDECIDED
        ev.append("no training log with epoch boundaries")
    elif not lr.get("present"):
        verdict = UNDECIDED
        ev.append("the log has no learning rate ('lr' / 'learning_rate')")
    else:
        jumps = lr.get("jumps_at_boundaries") or []
        for b in st["boundaries"]:
            if b.get("lr_before") is not None:
                ev.append(
                    f"boundary {b['boundary']}: lr {b['lr_before']:.3g} -> {b['lr_after']:.3g}"
                    f" ({'jump' if b.get('lr_jump') else 'continuous'})"
                )
        verdict = SUPPORTED if jumps or "restart" in sched else NOT_SUPPORTED
    if sched:
        ev.append(f"lr_scheduler_type: {sched}")
    if st.get("steps_per_epoch"):
        ev.append(
            f"{st['steps_per_epoch']:g} optimizer steps per epoch, {st.get('logged_points_per_epoch')} logged points per epoch"
        )
    bs, ga = args.get("per_device_train_batch_size"), args.get("gradient_accumulation_steps")
    if bs or ga:
        ev.append(f"per_device_train_batch_size={bs}, gradient_accumulation_steps={ga}")
    out.append(
        _hyp(
            "c",
            "learning-rate schedule or batch-size / gradient-accumulation effects at the boundary",
            verdict,
            ev,
            "the `lr` field of trainer_log.jsonl and `lr_scheduler_type` / warmup in the YAML",
        )
    )

    # (d) evaluation / checkpoint events (or a resume) coinciding with boundaries
    ev = []
    events = {k: list(v) for k, v in (events or {}).items() if v}
    if not staircase or not st.get("boundaries"):
        verdict = UNDECIDED
        ev.append("no training log with epoch boundaries")
    else:
        resumed = [b["boundary"] for b in st["boundaries"] if b.get("resumed_here")]
        aligned = [b["boundary"] for b in st["boundaries"] if b.get("aligned_events")]
        off = st.get("off_boundary_events") or []
        sig_off = [e for e in off if e.get("significant")]
        for name, steps in sorted(events.items()):
            ev.append(
                f"{name} events at step(s) {', '.join(map(str, steps[:12]))}{' ...' if len(steps) > 12 else ''}"
            )
        if resumed:
            ev.append(f"the run was resumed at boundary(ies) {resumed}")
        if aligned:
            ev.append(f"events coincide with boundary(ies) {aligned}")
        if off:
            ev.append(
                f"{len(off)} event(s) inside epochs; {len(sig_off)} with a significant drop"
                + (
                    f" (e.g. step {sig_off[0]['step']}, p={_fmt(sig_off[0]['p_value'], '.2g')})"
                    if sig_off
                    else ""
                )
            )
        if (resumed and any(b in resumed for b in (x["boundary"] for x in stair_b))) or sig_off:
            verdict = SUPPORTED
        elif off:
            verdict = NOT_SUPPORTED
        elif not events and not st.get("boundaries"):
            verdict = UNDECIDED
        elif aligned:
            verdict = UNDECIDED
            ev.append(
                "every event sits on a boundary, so the log cannot separate them (saving or evaluating "
                "does not change the weights, but only a run with events off the boundaries proves it)"
            )
        elif events:
            verdict = NOT_SUPPORTED
            ev.append("no save/eval event or resume coincides with any boundary")
        else:
            verdict = UNDECIDED
            ev.append("no save/eval events known")
    out.append(
        _hyp(
            "d",
            "evaluation / checkpoint events (or a resume) coinciding with the boundaries",
            verdict,
            ev,
            "save_steps / eval_steps not a multiple of the steps per epoch (YAML), or the run's "
            "trainer_state.json and checkpoint-* folders",
        )
    )
    return out


def recommend(
    staircase: Mapping[str, Any] | None,
    samples: Mapping[str, Any] | None,
    diagnosis: Sequence[Mapping[str, Any]],
    *,
    args: Mapping[str, Any] | None = None,
    duplicated_records: int | None = None,
    data_path: str | None = None,
    checkpoints: int = 0,
) -> list[dict[str, Any]]:
    """What to change, each with the evidence behind it (never a recommendation without one)."""
    args = args or {}
    st = staircase or {}
    sm = samples if samples and samples.get("available") else None
    verdict = {d["id"]: d["verdict"] for d in diagnosis}
    recs: list[dict[str, Any]] = []
    dup_n = duplicated_records
    if sm and sm.get("membership"):
        dup_n = sm["membership"]["duplicated_records"] - sm["membership"]["clusters"]
    if dup_n:
        auc = sm["stats"]["auc_memorization_duplicated_vs_unique"] if sm else {}
        recs.append(
            {
                "action": f"remove the {dup_n} redundant row(s) (keep one per cluster)",
                "setting": f"dedup-audit clean {data_path or 'DATA'} -o DATA.clean.json",
                "evidence": (
                    f"duplicated samples are memorized more: AUC={_fmt(auc.get('auc'))} "
                    f"(p={_fmt(auc.get('p_value'), '.2g')}, n={auc.get('n_x')} vs {auc.get('n_y')})"
                    if auc and auc.get("auc") is not None
                    else "the scan found them; their effect is unmeasured without per-sample losses"
                ),
                "hypothesis": "b",
            }
        )
    evl = st.get("eval") or {}
    n_ep = args.get("num_train_epochs") or st.get("num_epochs_logged")
    if evl.get("present") and evl.get("eval_rising_after_best") and evl.get("best_eval_epoch"):
        best = max(1, round(evl["best_eval_epoch"]))
        recs.append(
            {
                "action": f"train for fewer epochs ({best} instead of {n_ep})",
                "setting": f"num_train_epochs: {best}",
                "evidence": f"eval loss is lowest at epoch {evl['best_eval_epoch']:g} and rises after it",
                "hypothesis": "a",
            }
        )
    elif st.get("verdict") == "staircase" and verdict.get("a") != NOT_SUPPORTED:
        recs.append(
            {
                "action": "measure a held-out loss to choose the number of epochs",
                "setting": "val_size: 0.1\neval_strategy: epoch",
                "evidence": "the loss steps down at every new pass over the data; without a held-out "
                "curve the report cannot tell memorization from learning",
                "hypothesis": "a",
            }
        )
    per = st.get("logged_points_per_epoch")
    if (args.get("logging_steps") or 1) > 1 or (per is not None and per < 12):
        recs.append(
            {
                "action": "log every step so each boundary has enough points to test",
                "setting": "logging_steps: 1",
                "evidence": f"{per} logged point(s) per epoch"
                + (
                    f" (logging_steps: {args['logging_steps']})"
                    if args.get("logging_steps")
                    else ""
                ),
                "hypothesis": "a",
            }
        )
    if not sm and (checkpoints == 0 or str(args.get("save_strategy", "")) not in ("epoch", "")):
        recs.append(
            {
                "action": "save a checkpoint at every epoch and score per-sample losses on each",
                "setting": "save_strategy: epoch\n# then: dedup-audit losses RUN_DIR --data DATA -o losses.jsonl",
                "evidence": f"{checkpoints} checkpoint folder(s) found; per-sample losses are what link the drops to samples",
                "hypothesis": "a, b",
            }
        )
    if not evl.get("present") and not (sm and sm["stats"]["train_vs_heldout_log_drop"].get("n_y")):
        recs.append(
            {
                "action": "hold out a validation split",
                "setting": "val_size: 0.1\neval_strategy: epoch",
                "evidence": "no eval loss in the log and no held-out per-sample losses",
                "hypothesis": "a",
            }
        )
    jumps = (st.get("lr") or {}).get("jumps_at_boundaries")
    if jumps:
        recs.append(
            {
                "action": "use a schedule without restarts at epoch boundaries",
                "setting": "lr_scheduler_type: cosine",
                "evidence": f"the learning rate jumps at boundary(ies) {jumps}",
                "hypothesis": "c",
            }
        )
    if (
        verdict.get("d") == UNDECIDED
        and (st.get("boundaries") or [])
        and any(b.get("aligned_events") for b in st.get("boundaries", []))
    ):
        spe = st.get("steps_per_epoch")
        recs.append(
            {
                "action": "to rule out checkpoint/eval events, place them off the epoch boundaries once",
                "setting": "save_strategy: steps\nsave_steps: "
                + (str(max(1, int(spe * 0.6))) if spe else "<not a multiple of steps per epoch>"),
                "evidence": "all save/eval events coincide with boundaries in this run",
                "hypothesis": "d",
            }
        )
    return recs
