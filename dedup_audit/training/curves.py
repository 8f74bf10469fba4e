"""Per-record loss curves joined to the scan's clusters, and the units the statistics count.

Units. The trainer averages over rows, so per-epoch curves and each group's share of a boundary
drop weight every dataset record (row) once: a loss keyed by content hash stands for every exact
copy. Statistics (Mann-Whitney U, Spearman, AUC) use one value per *unit* - a duplicate cluster
(mean over its members) or a singleton - so k identical copies are not counted as k independent
observations. This module turns a loss table plus a `Membership` into those record curves and
units; `samples` computes everything else from them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dedup_audit.errors import InputError
from dedup_audit.training.losses import Issue, LossTable, join_keys
from dedup_audit.training.membership import Membership

SIZE_BUCKETS = ("singleton", "2", "3-4", "5+")


def size_bucket(size: int) -> str:
    """The cluster-size group a record is reported in (sizes above 4 are rare, so pooled)."""
    if size <= 1:
        return "singleton"
    if size == 2:
        return "2"
    if size <= 4:
        return "3-4"
    return "5+"


@dataclass
class Unit:
    """A cluster (or singleton) with the records of it that have losses."""

    uid: str
    cluster_id: int | None
    size: int
    kind: str
    records: list[int]


def record_curves(
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
    notes["joined_by_content"] = join.by_content
    notes["joined_by_id_only"] = join.id_only
    notes["ids_disagree_with_content"] = len(join.mismatched)
    mismatch = join.mismatch_issue(len(train))
    if mismatch:
        issues.append(mismatch)
    if membership.source == "scan":
        # keys outside every cluster (their content is no cluster member's): singletons we
        # cannot check against the dataset
        nxt = max([*membership.record_ids, -1]) + 1
        outside = sorted([*join.unmatched, *join.conflicting])
        notes["assumed_singletons"] = len(outside)
        join.unmatched, join.conflicting = outside, []
        for k in join.unmatched:
            join.key_to_records[k] = (nxt,)
            membership.record_ids[nxt] = k
            nxt += 1
        join.unmatched = []
    else:
        if join.conflicting:
            shown = ", ".join(sorted(join.conflicting)[:3])
            raise InputError(
                f"{losses.path}: {len(join.conflicting)} loss key(s) (e.g. {shown}) name records of "
                "the data whose content differs from the content they were scored on, and that "
                "content is nowhere in the data, so the join is ambiguous: the losses were scored "
                "on another version of the file. Pass the file they were scored on, or rescore "
                "with `dedup-audit losses`"
            )
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


def units_of(curves: Mapping[int, Any], membership: Membership | None) -> list[Unit]:
    """Group the scored records into units: one per cluster, one per record outside clusters."""
    units: dict[str, Unit] = {}
    for idx in sorted(curves):
        c = membership.cluster_of.get(idx) if membership else None
        if c is None:
            units[f"r{idx}"] = Unit(f"r{idx}", None, 1, "unique", [idx])
        else:
            cid, size, kind = c
            u = units.setdefault(f"c{cid}", Unit(f"c{cid}", cid, size, kind, []))
            u.records.append(idx)
    return list(units.values())


def log_ratio(curve: Mapping[float, float], start: float, end: float) -> float | None:
    """log(L[start] / L[end]), or None when either loss is missing or not positive."""
    a, b = curve.get(start), curve.get(end)
    if a is None or b is None or a <= 0 or b <= 0:
        return None
    return math.log(a / b)
