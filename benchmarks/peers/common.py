"""What every peer runner shares: read the corpus, build the same normalised text, shingle it the
same way, join candidates with union-find and write clusters as JSONL.

Standalone on purpose (standard library only, no dedup_audit import): the peers are the pipelines a
user would write instead of running dedup-audit, and they must keep working while dedup-audit's
own engine changes. The normalisation copies dedup-audit's `full` view with default settings
(alpaca row -> "<user>\\n{instruction}\\n{input}\\n<assistant>\\n{output}", NFKC, lowercase,
whitespace collapsed, punctuation kept) and its word 3-gram shingles (`\\w+` words; a text of at
most 3 words is one shingle), so every method compares the same sets. `corpus.py` checks this
copy against dedup_audit.views when the project is importable.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Iterator
from pathlib import Path

_WS = re.compile(r"\s+")
_WORD = re.compile(r"\w+", re.UNICODE)
NGRAM = 3
THRESHOLD = 0.8
NUM_PERM = 128
SEED = 1


def full_view(row: dict[str, str]) -> str:
    """dedup-audit's raw `full` view of an alpaca row (user turn = instruction + "\\n" + input)."""
    user = "\n".join(p for p in (row.get("instruction") or "", row.get("input") or "") if p)
    return f"<user>\n{user}\n<assistant>\n{row.get('output') or ''}"


def normalize(text: str) -> str:
    """NFKC, lowercase, collapse whitespace: dedup-audit's default NormalizeConfig."""
    return _WS.sub(" ", unicodedata.normalize("NFKC", text).lower()).strip()


def shingles(text: str, n: int = NGRAM) -> set[str]:
    """Word n-grams of a normalised text; a text of at most n words is one shingle."""
    words = _WORD.findall(text)
    if len(words) <= n:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}


def jaccard(a: set[str], b: set[str]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def read_rows(path: Path) -> Iterator[dict[str, str]]:
    """The corpus JSONL, one alpaca row per line."""
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            yield json.loads(line)


def read_shingle_sets(path: Path) -> list[set[str]]:
    """Shingle sets of the normalised full view of every row, in row order."""
    return [shingles(normalize(full_view(row))) for row in read_rows(path)]


class UnionFind:
    """Path-halving union-find over 0..n-1, the way users join LSH candidates."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, x: int) -> int:
        parent = self.parent
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            if ra < rb:
                self.parent[rb] = ra
            else:
                self.parent[ra] = rb

    def clusters(self) -> list[list[int]]:
        groups: dict[int, list[int]] = {}
        for i in range(len(self.parent)):
            groups.setdefault(self.find(i), []).append(i)
        return [g for g in groups.values() if len(g) > 1]


def write_clusters(path: Path, clusters: Iterable[list[int]]) -> None:
    """One JSON list of row indices per line, sorted, so every method is scored the same way."""
    lines = sorted(sorted(c) for c in clusters)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(c) + "\n" for c in lines), encoding="utf-8")
    tmp.replace(path)
