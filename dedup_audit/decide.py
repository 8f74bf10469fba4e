"""Keep policy -> exactly one Decision per record, each removal carrying its reason and evidence.

Only clusters of the dedup view whose kind means "the same sample again" (exact, near, semantic)
remove records. Conflicting clusters are reported, not removed, unless asked: which of two answers
is right is a judgement the data cannot make. Contamination hits remove the training record.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

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
    kind: str = "contamination"  # or "indexed": already in an older corpus (--index)
    estimate: float | None = None

    @property
    def reason(self) -> str:
        """contamination -> "against:<reference>"; indexed -> "index:<index name>"."""
        return f"{'index' if self.kind == 'indexed' else 'against'}:{self.reference}"


def best_hits(hits: Sequence[AgainstHit]) -> dict[int, AgainstHit]:
    """Per training record, its strongest contamination hit (highest score; ties: the first in
    the given order). One function for the decision and removed.jsonl, so the reference named
    as `kept_id` is the one whose score is reported as `similarity`."""
    best: dict[int, AgainstHit] = {}
    for hit in hits:
        prev = best.get(hit.index)
        if prev is None or hit.score > prev.score:
            best[hit.index] = hit
    return best


def keep_priority(
    records: Sequence[Record], keep: KeepPolicy, seed: int
) -> Callable[[int], tuple[Any, ...]]:
    """Sort key over record indices: the smallest is the record to keep. Ties fall back to the
    earliest record, so every policy is a total order. Policies that read records compute
    every key in one ordered pass (cheap in memory, and lazily read data is parsed once)."""
    if keep.policy == "first":
        return lambda m: (m,)
    key = _record_priority(records, keep, seed)
    table = [key(m, r) for m, r in enumerate(records)]
    return table.__getitem__


def _record_priority(
    records: Sequence[Record], keep: KeepPolicy, seed: int
) -> Callable[[int, Record], tuple[Any, ...]]:
    if keep.policy in ("longest", "shortest"):
        sign = -1 if keep.policy == "longest" else 1
        return lambda m, r: (sign * len(view_text(r.sample, "full")), m)
    if keep.policy == "random":
        # Hash of (seed, record id): independent of cluster order and of the other clusters.
        def draw(m: int, r: Record) -> tuple[Any, ...]:
            digest = hashlib.blake2b(f"{seed}:{r.id}".encode(), digest_size=8)
            return (digest.hexdigest(), m)

        return draw
    column = keep.column
    assert column is not None, "KeepPolicy(policy='column') needs a column"
    sign = -1 if keep.direction == "max" else 1
    return lambda m, r: (sign * _numeric(r, column), m)


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


Removal = tuple[int, int, Pair, int | None]
"""(removed record, kept twin, the edge that is the evidence, the member that edge leads to when
it is not the kept twin itself)."""


def _component_removals(
    alive: Sequence[int], pairs: Sequence[Pair], priority: Callable[[int], tuple[Any, ...]]
) -> list[Removal]:
    """Connected-components mode: the best member by `priority` is kept; every other member is
    removed with the edge that reached it on the strongest-first walk from the keeper."""
    keeper = min(alive, key=priority)
    tree = _evidence_tree(keeper, pairs)
    removals: list[Removal] = []
    for m in alive:
        if m != keeper:
            edge = tree[m]  # every member is on an edge of its own cluster
            other = edge.b if edge.a == m else edge.a
            removals.append((m, keeper, edge, None if other == keeper else other))
    return removals


def _star_removals(
    alive: Sequence[int], pairs: Sequence[Pair], priority: Callable[[int], tuple[Any, ...]]
) -> list[Removal]:
    """Greedy star clustering inside one connected cluster: walk members best-first; a member is
    removed only if it is directly similar (an edge at or above the threshold, or identical
    text) to a member already kept, else it is kept as a new representative. Unlike connected
    components, a chain a~b~c never removes c for a kept a it does not resemble.

    The evidence edge links the removed record directly to its kept twin (or to a record with
    identical text), so `via` is always None.
    """
    exact = [p for p in pairs if p.method == "exact"]
    group: dict[int, int] = {}
    for p in sorted(exact, key=lambda p: (p.a, p.b)):
        root = group.get(p.a, p.a)
        group[p.a] = root
        group[p.b] = root
    adj: dict[int, list[Pair]] = {}
    for p in pairs:
        if p.method != "exact":
            ga, gb = group.get(p.a, p.a), group.get(p.b, p.b)
            adj.setdefault(ga, []).append(p)
            adj.setdefault(gb, []).append(p)
    kept_in_group: dict[int, int] = {}
    removals: list[Removal] = []
    for m in sorted(alive, key=priority):
        g = group.get(m, m)
        if g in kept_in_group:
            twin = kept_in_group[g]
            lo, hi = min(m, twin), max(m, twin)
            removals.append((m, twin, Pair(lo, hi, 1.0, "exact", pairs[0].view), None))
            continue
        best: tuple[float, int, Pair] | None = None
        for p in adj.get(g, []):
            other = group.get(p.b, p.b) if group.get(p.a, p.a) == g else group.get(p.a, p.a)
            kept = kept_in_group.get(other)
            if kept is not None and (best is None or (p.score, -kept) > (best[0], -best[1])):
                best = (p.score, kept, p)
        if best is None:
            kept_in_group[g] = m
        else:
            removals.append((m, best[1], best[2], None))
    return removals


def decide(
    records: Sequence[Record],
    clusters: Sequence[Cluster],
    *,
    dedup_view: str,
    keep: KeepPolicy,
    seed: int = 0,
    remove_conflicting: bool = False,
    against: Mapping[int, AgainstHit] | None = None,
    mode: str = "auto",
) -> list[Decision]:
    """One Decision per record, in record order. kept + removed == input by construction.

    mode "components" keeps one record per connected cluster; "star" keeps every record that is
    not directly similar to an already kept one (see `_star_removals`); "auto" (the default) is
    star for clusters with an embedding edge and components otherwise: a paraphrase link is not
    transitive, so a semantic removal is always directly similar to its kept twin.
    """
    priority = keep_priority(records, keep, seed)
    decisions: dict[int, Decision] = {}
    for hit in sorted((against or {}).values(), key=lambda h: h.index):
        decisions[hit.index] = Decision(
            hit.index,
            keep=False,
            reason=hit.reason,
            kind=hit.kind,
            view=hit.view,
            method=hit.method,
            score=hit.score,
            estimate=hit.estimate,
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
        star = mode == "star" or (
            mode == "auto" and any(p.method == "embedding" for p in cluster.pairs)
        )
        if star and cluster.kind != "conflicting":
            removals = _star_removals(alive, cluster.pairs, priority)
        else:
            removals = _component_removals(alive, cluster.pairs, priority)
        for m, twin, edge, via in removals:
            kind = (
                "conflicting"
                if cluster.kind == "conflicting"
                else KIND_OF_METHOD.get(edge.method, cluster.kind)
            )
            decisions[m] = Decision(
                m,
                keep=False,
                reason=f"{kind}:{cluster.view}",
                kept_twin=twin,
                cluster_id=cluster.id,
                kind=kind,
                view=cluster.view,
                method=edge.method,
                score=edge.score,
                estimate=edge.estimate,
                via=via,
            )
    return [decisions.get(i, Decision(i, keep=True)) for i in range(len(records))]
