"""Union-find over every detector's pairs of one view -> Clusters, each with an SFT kind."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from dedup_audit.records import PAIR_METHODS, Cluster, Pair, PairSet

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
    pairs: Sequence[Pair] | PairSet,
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
    methods = pairs.methods() if isinstance(pairs, PairSet) else {p.method for p in pairs}
    if "embedding" in methods:
        return "semantic"
    if methods == {"exact"}:
        return "exact"
    return "near"


def build_clusters(
    n: int,
    view: str,
    pairs: Iterable[Pair] | PairSet,
    *,
    prompts: Any,
    responses: Any,
    first_id: int = 0,
    kind: str | None = None,
    labels_of: Callable[[Any, Any, int], Any] | None = None,
) -> list[Cluster]:
    """Clusters of one view (connected components of the edges), numbered from `first_id` in
    order of their smallest member; each cluster's edges sorted by (a, b, method).

    `prompts`/`responses` are the prompt and response views' texts or per-record text hashes
    (see `_differ`), used only for the kind; `kind` forces one kind on every cluster (the answer
    check's DIFFERENT_ANSWER / UNCONFIRMED). Components come from scipy's connected_components,
    or from `labels_of(a, b, nodes)` (an engine's own components, e.g. distributed), and every
    grouping is an argsort, so a view with millions of edges costs no Python loop per
    edge.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    edges = pairs if isinstance(pairs, PairSet) else PairSet.from_pairs(view, list(pairs))
    if not len(edges):
        return []
    nodes = np.unique(np.concatenate([edges.a, edges.b]))
    ia = np.searchsorted(nodes, edges.a)
    ib = np.searchsorted(nodes, edges.b)
    m = len(nodes)
    if labels_of is None:
        graph = coo_matrix((np.ones(len(edges), np.int8), (ia, ib)), shape=(m, m))
        count, labels = connected_components(graph, directed=False)
    else:  # an engine's components (e.g. distributed): any labelling of the same partition
        _, labels = np.unique(labels_of(ia, ib, m), return_inverse=True)
        count = int(labels.max()) + 1
    _, first = np.unique(labels, return_index=True)  # first (smallest) node of each label
    rank = np.empty(count, np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(count)
    node_rank = rank[labels]
    node_order = np.argsort(node_rank, kind="stable")  # nodes ascending within a cluster
    node_bounds = np.searchsorted(node_rank[node_order], np.arange(count + 1))
    method_key = _METHOD_SORT[edges.method]
    edge_rank = node_rank[ia]
    edge_order = np.lexsort((method_key, edges.b, edges.a, edge_rank))
    sorted_edges = edges.take(edge_order)
    edge_bounds = np.searchsorted(edge_rank[edge_order], np.arange(count + 1))
    members_all = nodes[node_order].tolist()
    clusters: list[Cluster] = []
    for c in range(count):
        members = tuple(members_all[node_bounds[c] : node_bounds[c + 1]])
        cedges = sorted_edges.take(slice(edge_bounds[c], edge_bounds[c + 1]))
        if kind is None:
            kind_here = cluster_kind(view, members, cedges, prompts, responses)
        else:
            kind_here = kind
        clusters.append(Cluster(first_id + c, view, kind_here, members, cedges))
    return clusters


_METHOD_SORT = np.array([sorted(PAIR_METHODS).index(m) for m in PAIR_METHODS], np.int8)
"""Sort key per method code: the methods' alphabetical order, as sorting Pairs by name did."""


def spanning_forest(edges: PairSet, *, return_rows: bool = False) -> Any:
    """A maximum spanning forest of the edges, strongest first: exact before other methods,
    then by score, then by (a, b): the same forest Kruskal gives over that order (the weights
    are ranks, all distinct, so the forest is unique). Returns the forest's edges sorted by
    (a, b, method), and with `return_rows` also their row numbers in `edges`."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import minimum_spanning_tree

    if not len(edges):
        return (edges, np.empty(0, np.int64)) if return_rows else edges
    not_exact = (edges.method != PAIR_METHODS.index("exact")).astype(np.int8)
    order = np.lexsort((edges.b, edges.a, -edges.score, not_exact))
    weight = np.empty(len(edges), np.float64)
    weight[order] = np.arange(1, len(edges) + 1)
    nodes = np.unique(np.concatenate([edges.a, edges.b]))
    ia = np.searchsorted(nodes, edges.a)
    ib = np.searchsorted(nodes, edges.b)
    # parallel edges (two methods on one pair): keep the strongest (lowest rank) per node pair
    lo, hi = np.minimum(ia, ib), np.maximum(ia, ib)
    best = np.lexsort((weight, hi, lo))
    first = np.concatenate(
        ([True], (lo[best][1:] != lo[best][:-1]) | (hi[best][1:] != hi[best][:-1]))
    )
    rows = best[first]
    m = len(nodes)
    graph = coo_matrix((weight[rows], (lo[rows], hi[rows])), shape=(m, m)).tocsr()
    tree = minimum_spanning_tree(graph).tocoo()
    # map tree entries back to edge rows by their unique weight (rank)
    chosen = order[tree.data.astype(np.int64) - 1]
    chosen = chosen[
        np.lexsort((_METHOD_SORT[edges.method[chosen]], edges.b[chosen], edges.a[chosen]))
    ]
    forest = edges.take(chosen)
    return (forest, chosen) if return_rows else forest
