"""Union-find over every detector's pairs of one view -> Clusters, each with an SFT kind."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from dedup_audit.records import Cluster, Pair

KIND_OF_METHOD = {"exact": "exact", "minhash": "near", "embedding": "semantic", "ngram": "near"}


class UnionFind:
    """Path-halving union-find; the smaller index becomes the root so results are order-free."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, x: int) -> int:
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            lo, hi = (ra, rb) if ra < rb else (rb, ra)
            self.parent[hi] = lo


def components(n: int, pairs: Iterable[Pair]) -> dict[int, list[Pair]]:
    """Root -> the pairs inside that component (only components with at least one pair)."""
    pairs = list(pairs)
    uf = UnionFind(n)
    for p in pairs:
        uf.union(p.a, p.b)
    by_root: dict[int, list[Pair]] = {}
    for p in pairs:
        by_root.setdefault(uf.find(p.a), []).append(p)
    return by_root


def _differ(texts: Any, members: Sequence[int]) -> bool:
    """Whether the members' texts differ: `texts` is per-record text or an (n, 2) array of
    per-record text hashes (equal hashes <=> equal normalised text)."""
    if isinstance(texts, np.ndarray):
        sub = texts[list(members)]
        return bool((sub != sub[0]).any())
    return len({texts[m] for m in members}) > 1


def cluster_kind(
    view: str,
    members: Sequence[int],
    pairs: Sequence[Pair],
    prompts: Any,
    responses: Any,
) -> str:
    """exact / near / semantic from the evidence; conflicting or canned from what the other half
    of the conversation does: a prompt-view cluster whose responses differ teaches the model two
    answers to one question; a response-view cluster whose prompts differ is a canned answer."""
    if view in ("prompt", "first_turn") and _differ(responses, members):
        return "conflicting"
    if view == "response" and _differ(prompts, members):
        return "canned"
    methods = {p.method for p in pairs}
    if "embedding" in methods:
        return "semantic"
    if methods == {"exact"}:
        return "exact"
    return "near"


def build_clusters(
    n: int,
    view: str,
    pairs: Iterable[Pair],
    *,
    prompts: Any,
    responses: Any,
    first_id: int = 0,
) -> list[Cluster]:
    """Clusters of one view, numbered from `first_id` in order of their smallest member.

    `prompts`/`responses` are the prompt and response views' texts or per-record text hashes
    (see `_differ`), used only for the kind.
    """
    comps = components(n, pairs)
    clusters: list[Cluster] = []
    for offset, root in enumerate(sorted(comps)):
        cpairs = sorted(comps[root], key=lambda p: (p.a, p.b, p.method))
        members = tuple(sorted({m for p in cpairs for m in (p.a, p.b)}))
        kind = cluster_kind(view, members, cpairs, prompts, responses)
        clusters.append(Cluster(first_id + offset, view, kind, members, cpairs))
    return clusters
