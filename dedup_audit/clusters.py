"""Union-find over every detector's pairs of one view -> Clusters, each with an SFT kind."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from dedup_audit.records import Cluster, Pair

KIND_OF_METHOD = {"exact": "exact", "minhash": "near", "embedding": "semantic", "ngram": "near"}

DIFFERENT_ANSWER = "different_answer"
"""Semantic links between records whose final answers differ (GSM8K inverse problems, MMLU
questions sharing a stem): the same story, another task. Reported, never removed."""

UNCONFIRMED = "unconfirmed"
"""Semantic links of the dedup view where no answer could be read and the prompt and response
views do not both link the pair: similar, but not shown to be the same task with the same
answer. Reported, never removed."""


def split_semantic(
    view: str,
    pairs: Sequence[Pair],
    *,
    answers: Sequence[str | None],
    numbers: Sequence[tuple[str, ...]],
    linked: Callable[[int, int], bool] | None,
) -> tuple[list[Pair], list[Pair], list[Pair]]:
    """(duplicate edges, different-answer links, unconfirmed links) of one view.

    Only embedding pairs are checked; exact and MinHash evidence passes through. In every view
    but `response` (where differing prompts already make a cluster "canned"), an embedding pair
    whose two final answers are known and differ is a DIFFERENT_ANSWER link. `linked(a, b)` is
    given for the dedup view only; there a pair stays a duplicate edge only when its tasks state
    the same quantities (`numbers`) and either the answers are equal or, when an answer is
    unknown, the prompt and response views both link it. Otherwise it is UNCONFIRMED.
    """
    from dedup_audit.answers import answers_agree

    if view == "response":
        return list(pairs), [], []
    keep: list[Pair] = []
    different: list[Pair] = []
    unconfirmed: list[Pair] = []
    for p in pairs:
        if p.method != "embedding":
            keep.append(p)
            continue
        agree = answers_agree(answers[p.a], answers[p.b])
        if agree is False:
            different.append(p)
        elif linked is not None and (
            numbers[p.a] != numbers[p.b] or (agree is None and not linked(p.a, p.b))
        ):
            unconfirmed.append(p)
        else:
            keep.append(p)
    return keep, different, unconfirmed


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


def cluster_kind(
    view: str,
    members: Sequence[int],
    pairs: Sequence[Pair],
    prompts: Sequence[str],
    responses: Sequence[str],
) -> str:
    """exact / near / semantic from the evidence; conflicting or canned from what the other half
    of the conversation does: a prompt-view cluster whose responses differ teaches the model two
    answers to one question; a response-view cluster whose prompts differ is a canned answer."""
    if view in ("prompt", "first_turn") and len({responses[m] for m in members}) > 1:
        return "conflicting"
    if view == "response" and len({prompts[m] for m in members}) > 1:
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
    prompts: Sequence[str],
    responses: Sequence[str],
    first_id: int = 0,
    kind: str | None = None,
) -> list[Cluster]:
    """Clusters of one view, numbered from `first_id` in order of their smallest member.

    `prompts`/`responses` are the normalised prompt and response views, used only for the kind;
    `kind` forces one kind on every cluster (the answer check's DIFFERENT_ANSWER / UNCONFIRMED).
    """
    comps = components(n, pairs)
    clusters: list[Cluster] = []
    for offset, root in enumerate(sorted(comps)):
        cpairs = sorted(comps[root], key=lambda p: (p.a, p.b, p.method))
        members = tuple(sorted({m for p in cpairs for m in (p.a, p.b)}))
        if kind is None:
            kind_here = cluster_kind(view, members, cpairs, prompts, responses)
        else:
            kind_here = kind
        clusters.append(Cluster(first_id + offset, view, kind_here, members, cpairs))
    return clusters
