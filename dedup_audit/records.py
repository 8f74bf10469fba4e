"""The one record type and the typed results that flow through the pipeline.

load -> views -> detectors -> clusters -> decisions -> outputs. Every stage speaks these types,
so a removal can always be traced back to the pair (and method) that caused it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

VIEWS: tuple[str, ...] = ("full", "prompt", "response", "first_turn")
"""The text views of a record. `full` is the whole conversation; `prompt` is system + user turns
(history included); `response` is the assistant turns (for pairwise data: the chosen answer);
`first_turn` is system + the opening user message, which is where templated multi-turn chats
repeat themselves ("What is up?" opening 167 different conversations). For single-turn data
`first_turn` equals `prompt` and is skipped."""


@dataclass(frozen=True)
class Turn:
    role: str  # "system" | "user" | "assistant" | "tool" | "function"
    text: str


@dataclass(frozen=True)
class Sample:
    """A record normalised to an SFT conversation, whatever its on-disk format.

    `turns` excludes the system prompt; `tools` is the serialized tool schema (sharegpt `tools`).
    Pairwise data keeps the chosen answer as the last assistant turn and `rejected` aside.
    """

    turns: tuple[Turn, ...]
    system: str = ""
    tools: str = ""
    rejected: str = ""


@dataclass(frozen=True)
class Record:
    """One row of the input. `row` is the original content, untouched, for a faithful round trip."""

    index: int  # 0-based position in the loaded dataset (across files, in load order)
    id: str  # stable id: "<file name>:<row>" or the value of --id-column
    row: dict[str, Any]
    sample: Sample
    source: str = ""  # file the row came from


@dataclass(frozen=True, slots=True)
class Pair:
    """Evidence that two records are duplicates in one view, found by one method.

    `a < b` are record indices. `score` is the verified similarity (exact Jaccard for MinHash,
    cosine for embeddings, 1.0 for exact); `estimate` is the method's cheap estimate when it has
    one (MinHash's estimated Jaccard).
    """

    a: int
    b: int
    score: float
    method: str  # "exact" | "minhash" | "embedding" | "ngram"
    view: str
    estimate: float | None = None


PAIR_METHODS: tuple[str, ...] = ("exact", "minhash", "embedding", "ngram")
_METHOD_CODE = {m: i for i, m in enumerate(PAIR_METHODS)}


@dataclass(frozen=True)
class PairSet:
    """Many Pairs of one view as columns (the engine emits millions on templated data; a
    Python object per pair would cost more than finding them). `estimate` is NaN where a
    method has none; `method` holds codes into PAIR_METHODS. Row i is `pairs()[i]`."""

    view: str
    a: np.ndarray
    b: np.ndarray
    score: np.ndarray
    estimate: np.ndarray
    method: np.ndarray

    @classmethod
    def empty(cls, view: str) -> PairSet:
        z = np.empty(0, np.int64)
        return cls(view, z, z, np.empty(0), np.empty(0), np.empty(0, np.int8))

    @classmethod
    def from_arrays(
        cls,
        view: str,
        method: str,
        a: np.ndarray,
        b: np.ndarray,
        score: np.ndarray,
        estimate: np.ndarray | None = None,
    ) -> PairSet:
        n = len(a)
        est = np.full(n, np.nan) if estimate is None else np.asarray(estimate, np.float64)
        return cls(
            view,
            np.asarray(a, np.int64),
            np.asarray(b, np.int64),
            np.asarray(score, np.float64),
            est,
            np.full(n, _METHOD_CODE[method], np.int8),
        )

    @classmethod
    def from_pairs(cls, view: str, pairs: Sequence[Pair]) -> PairSet:
        if not pairs:
            return cls.empty(view)
        return cls(
            view,
            np.fromiter((p.a for p in pairs), np.int64, len(pairs)),
            np.fromiter((p.b for p in pairs), np.int64, len(pairs)),
            np.fromiter((p.score for p in pairs), np.float64, len(pairs)),
            np.fromiter(
                (np.nan if p.estimate is None else p.estimate for p in pairs),
                np.float64,
                len(pairs),
            ),
            np.fromiter((_METHOD_CODE[p.method] for p in pairs), np.int8, len(pairs)),
        )

    @classmethod
    def concat(cls, view: str, sets: Sequence[PairSet]) -> PairSet:
        sets = [s for s in sets if len(s)]
        if not sets:
            return cls.empty(view)
        if len(sets) == 1:
            return sets[0]
        return cls(
            view,
            *(np.concatenate([getattr(s, f) for s in sets]) for f in _COLUMNS),
        )

    def __len__(self) -> int:
        return len(self.a)

    def take(self, rows: Any) -> PairSet:
        """The pairs at `rows` (an index array or boolean mask)."""
        return PairSet(self.view, *(getattr(self, f)[rows] for f in _COLUMNS))

    def at_least(self, threshold: float) -> PairSet:
        return self.take(self.score >= threshold)

    def methods(self) -> set[str]:
        return {PAIR_METHODS[c] for c in np.unique(self.method).tolist()}

    def pairs(self) -> list[Pair]:
        est = [None if e != e else e for e in self.estimate.tolist()]
        return [
            Pair(a, b, s, PAIR_METHODS[m], self.view, e)
            for a, b, s, m, e in zip(
                self.a.tolist(),
                self.b.tolist(),
                self.score.tolist(),
                self.method.tolist(),
                est,
                strict=True,
            )
        ]


_COLUMNS = ("a", "b", "score", "estimate", "method")


@dataclass
class Cluster:
    """Connected records in one view. `kind` explains what the duplication means for SFT:

    - exact: identical after normalisation
    - near: MinHash-verified near duplicates (maybe plus exact edges)
    - semantic: at least one embedding edge (paraphrases)
    - conflicting: same prompt, different responses (prompt view)
    - canned: same response to different prompts (response view)
    """

    id: int
    view: str
    kind: str
    members: tuple[int, ...]  # record indices, sorted
    edges: PairSet | list[Pair] = field(default_factory=list)  # the evidence inside it

    @property
    def size(self) -> int:
        return len(self.members)

    @property
    def pairs(self) -> list[Pair]:
        """The cluster's edges as Pairs, sorted by (a, b, method)."""
        if isinstance(self.edges, PairSet):
            self.edges = self.edges.pairs()
        return self.edges


@dataclass(frozen=True, slots=True)
class Decision:
    """What happens to one record, and the evidence behind it."""

    index: int
    keep: bool
    reason: str = (
        ""  # "" when kept; e.g. "exact:full", "near:full", "semantic:full", "against:gsm8k"
    )
    # index of the record this one duplicates that survived deduplication (with
    # --remove-conflicting, that twin may itself be removed afterwards as a conflict)
    kept_twin: int | None = None
    cluster_id: int | None = None
    kind: str = ""
    view: str = ""
    method: str = ""
    score: float | None = None  # verified similarity on the edge that joined this record
    estimate: float | None = None
    via: int | None = None  # the record that edge leads to, when it is not the kept twin itself


def sample_key(sample: Sample) -> str:
    """Content hash of a conversation: the join key between a dataset and per-sample losses when
    the trainer does not carry dataset ids (LLaMA-Factory shuffles and tokenizes rows).

    Stable across file names, row order and key order; two exact-duplicate rows share a key.
    """
    import hashlib
    import json

    payload = json.dumps(
        [sample.system, sample.tools, [[t.role, t.text] for t in sample.turns]],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.blake2b(payload.encode("utf-8"), digest_size=8).hexdigest()


@dataclass
class Dataset:
    """A loaded dataset: its records plus what is needed to write it back in its own format."""

    records: list[Record]
    format: str  # "alpaca" | "sharegpt" | "messages" | "text" | "pairwise"
    file_type: str  # "json" | "jsonl" | "parquet" | "csv" | "arrow" | "hf_disk" | "txt"
    paths: tuple[str, ...]
    name: str = ""
    columns: dict[str, str] = field(default_factory=dict)  # LLaMA-Factory column map in use
    tags: dict[str, str] = field(default_factory=dict)  # LLaMA-Factory role/content tags in use
    writer_hints: dict[str, Any] = field(default_factory=dict)  # e.g. json indent, csv dialect
    id_column: str | None = None  # the column the ids come from; None: FILE:N positions

    def __len__(self) -> int:
        return len(self.records)
