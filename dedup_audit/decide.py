"""Keep policy -> exactly one Decision per record, each removal carrying its reason and evidence.

Only clusters of the dedup view whose kind means "the same sample again" (exact, near, semantic)
remove records. Conflicting clusters are reported, not removed, unless asked: which of two answers
is right is a judgement the data cannot make. Contamination hits remove the training record.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from dedup_audit.clusters import KIND_OF_METHOD
from dedup_audit.config import KeepPolicy
from dedup_audit.errors import ConfigError
from dedup_audit.records import Cluster, Decision, Pair, Record
from dedup_audit.views import view_text

REMOVING_KINDS = frozenset({"exact", "near", "semantic"})


@dataclass(frozen=True)
class AgainstHit:
    """A training record that overlaps a reference (eval/benchmark) set."""

    index: int
    reference: str  # name of the reference set
    ref_id: str
    method: str
    score: float
    view: str
    ref_text: str = ""  # the reference sample's text in `view`, to show both sides


def choose_keeper(
    members: Sequence[int], records: Sequence[Record], keep: KeepPolicy, seed: int
) -> int:
    """The member that survives. Ties always fall back to the earliest record."""
    if keep.policy == "first":
        return min(members)
    if keep.policy in ("longest", "shortest"):
        sign = -1 if keep.policy == "longest" else 1
        return min(members, key=lambda m: (sign * len(view_text(records[m].sample, "full")), m))
    if keep.policy == "random":
        # Hash of (seed, record id): independent of cluster order and of the other clusters.
        def draw(m: int) -> str:
            return hashlib.blake2b(f"{seed}:{records[m].id}".encode(), digest_size=8).hexdigest()

        return min(members, key=lambda m: (draw(m), m))
    column = keep.column
    assert column is not None, "KeepPolicy(policy='column') needs a column"
    sign = -1 if keep.direction == "max" else 1
    return min(members, key=lambda m: (sign * _numeric(records[m], column), m))


def _numeric(record: Record, column: str) -> float:
    value = record.row.get(column)
    if isinstance(value, bool) or not isinstance(value, int | float):
        keys = ", ".join(sorted(record.row)) or "(none)"
        raise ConfigError(
            f"--keep-by {column}: record {record.id} has {column}={value!r}, not a number "
            f"(keys found: {keys}); pick a numeric column or another --keep-by policy"
        )
    return float(value)


def _evidence_tree(keeper: int, pairs: Sequence[Pair]) -> dict[int, Pair]:
    """BFS from the keeper over the cluster's edges: member -> the edge that reached it.

    Edges are visited strongest first (exact before fuzzy, higher score first), so a removed
    record's evidence is the most direct and strongest link towards the keeper.
    """
    adj: dict[int, list[Pair]] = {}
    for p in sorted(pairs, key=lambda p: (p.method != "exact", -p.score, p.a, p.b)):
        adj.setdefault(p.a, []).append(p)
        adj.setdefault(p.b, []).append(p)
    reached: dict[int, Pair] = {}
    seen = {keeper}
    queue = deque([keeper])
    while queue:
        node = queue.popleft()
        for p in adj.get(node, []):
            other = p.b if p.a == node else p.a
            if other not in seen:
                seen.add(other)
                reached[other] = p
                queue.append(other)
    return reached


def decide(
    records: Sequence[Record],
    clusters: Sequence[Cluster],
    *,
    dedup_view: str,
    keep: KeepPolicy,
    seed: int = 0,
    remove_conflicting: bool = False,
    against: Mapping[int, AgainstHit] | None = None,
) -> list[Decision]:
    """One Decision per record, in record order. kept + removed == input by construction."""
    decisions: dict[int, Decision] = {}
    for hit in sorted((against or {}).values(), key=lambda h: h.index):
        decisions[hit.index] = Decision(
            hit.index,
            keep=False,
            reason=f"against:{hit.reference}",
            kind="contamination",
            view=hit.view,
            method=hit.method,
            score=hit.score,
        )
    for cluster in clusters:
        removing = (cluster.view == dedup_view and cluster.kind in REMOVING_KINDS) or (
            remove_conflicting and cluster.kind == "conflicting"
        )
        if not removing:
            continue
        alive = [m for m in cluster.members if m not in decisions]
        if len(alive) < 2:
            continue
        keeper = choose_keeper(alive, records, keep, seed)
        tree = _evidence_tree(keeper, cluster.pairs)
        for m in alive:
            if m == keeper:
                continue
            edge = tree.get(m)
            via = None if edge is None else (edge.b if edge.a == m else edge.a)
            kind = (
                "conflicting"
                if cluster.kind == "conflicting"
                else (KIND_OF_METHOD.get(edge.method, cluster.kind) if edge else cluster.kind)
            )
            decisions[m] = Decision(
                m,
                keep=False,
                reason=f"{kind}:{cluster.view}",
                kept_twin=keeper,
                cluster_id=cluster.id,
                kind=kind,
                view=cluster.view,
                method=edge.method if edge else "",
                score=edge.score if edge else None,
                estimate=edge.estimate if edge else None,
                via=None if via == keeper else via,
            )
    return [decisions.get(i, Decision(i, keep=True)) for i in range(len(records))]
