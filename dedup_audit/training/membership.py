"""Which dedup-view cluster each dataset record belongs to, and how loss keys reach records.

The per-sample analysis needs, for every scored record, its cluster (id, size, kind), the other
views' clusters it sits in, and a short prompt/response excerpt for the report. That knowledge
comes either from the dataset itself plus the scan's clusters, or from a saved scan report.json
alone; both are reduced here to one `Membership` so the analysis does not care which it got.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dedup_audit.errors import InputError
from dedup_audit.records import Cluster, Dataset, Sample, sample_key

TEXT_CHARS = 240


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
