"""Exact duplicates: identical normalised text of one view."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from dedup_audit.records import Pair


def text_hash(text: str) -> str:
    """128-bit content hash; collisions are negligible at any dataset size people fine-tune on."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


def exact_groups(texts: Sequence[str]) -> list[list[int]]:
    """Indices grouped by identical non-empty text, groups in first-occurrence order."""
    groups: dict[str, list[int]] = {}
    for i, text in enumerate(texts):
        if text:
            groups.setdefault(text_hash(text), []).append(i)
    return list(groups.values())


def find_exact(texts: Sequence[str], view: str) -> list[Pair]:
    """One edge from the first member of each identical group to every other member.

    A star is enough for union-find and keeps the pair count linear (a prompt repeated 167 times
    gives 166 pairs, not 13,861).
    """
    pairs: list[Pair] = []
    for group in exact_groups(texts):
        head = group[0]
        pairs.extend(Pair(head, other, 1.0, "exact", view) for other in group[1:])
    return pairs
