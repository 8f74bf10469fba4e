"""report.json (the versioned source of truth of a scan), report.md and the terminal summary.

The Markdown and terminal views render only what report.json holds. Saving and reloading a
whole scan (report.json + pairs.parquet + the pages) is `dedup_audit.reports.scan.saved`.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import numpy as np

from dedup_audit import __version__
from dedup_audit.clusters import DIFFERENT_ANSWER, UNCONFIRMED
from dedup_audit.config import DEFAULT_MODEL
from dedup_audit.decide import AgainstHit
from dedup_audit.detect.minhash import score_floor
from dedup_audit.pipeline import ScanResult
from dedup_audit.readers.load import describe_ids
from dedup_audit.records import Cluster, Decision, Pair, PairSet, sample_key
from dedup_audit.views import view_text

SCHEMA = "dedup-audit/scan"
SCHEMA_VERSION = 1
PAIRS_FILE = "pairs.parquet"
REPORT_FILES = ("report.json", "report.md", "report.html", PAIRS_FILE)
"""What a saved scan folder holds (checked before writing, replaced together)."""


def _round(x: float | None) -> float | None:
    return None if x is None else round(float(x), 6)


def removed_rows(result: ScanResult) -> list[dict[str, Any]]:
    """One row per removed record for removed.jsonl: who, why, which kept record it matched,
    the evidence, and the original row so nothing is lost."""
    from dedup_audit.decide import best_hits
    from dedup_audit.readers.lazy import map_records

    removed = result.removed
    recs = map_records(
        result.dataset.records,
        [i for d in removed for i in (d.index, d.kept_twin, d.via) if i is not None],
        lambda r: r,
    )
    best: dict[int, AgainstHit] = best_hits(result.against)
    rows = []
    for d in removed:
        twin = recs[d.kept_twin] if d.kept_twin is not None else None
        hit = best.get(d.index) if d.kind in ("contamination", "indexed") else None
        rows.append(
            {
                "id": recs[d.index].id,
                "index": d.index,
                "reason": d.reason,
                "kind": d.kind,
                "view": d.view,
                "method": d.method,
                "kept_id": twin.id if twin else (hit.ref_id if hit else None),
                "kept_index": d.kept_twin,
                "cluster_id": d.cluster_id,
                "similarity": _round(d.score),
                "estimated_similarity": _round(d.estimate),
                "via_id": recs[d.via].id if d.via is not None else None,
                "row": recs[d.index].row,
            }
        )
    return rows


def cluster_spanning_edges(clusters: list[Cluster]) -> dict[int, list[Pair]]:
    """Cluster id -> its strongest spanning edges, from one spanning forest per view."""
    from dedup_audit.clusters import spanning_forest

    out: dict[int, list[Pair]] = {c.id: [] for c in clusters}
    by_view: dict[str, list[Cluster]] = {}
    for c in clusters:
        by_view.setdefault(c.view, []).append(c)
    for view, group in by_view.items():
        sets = [
            c.edges if isinstance(c.edges, PairSet) else PairSet.from_pairs(view, c.edges)
            for c in group
        ]
        owner = np.concatenate(
            [np.full(len(s), c.id, np.int64) for s, c in zip(sets, group, strict=True)]
        )
        forest, rows = spanning_forest(PairSet.concat(view, sets), return_rows=True)
        for pair, cid in zip(forest.pairs(), owner[rows].tolist(), strict=True):
            out[cid].append(pair)
    return out


def _decision_counts(decisions: list[Decision]) -> dict[str, int]:
    return dict(sorted(Counter(d.reason for d in decisions if not d.keep).items()))


def build_report(result: ScanResult, *, max_clusters: int | None = None) -> dict[str, Any]:
    """The scan as a JSON-ready dict: config, dataset, summary, clusters and all scored pairs."""
    ds = result.dataset
    n = len(ds.records)
    per_view: dict[str, Any] = {}
    for view, vs in result.views.items():
        clusters = result.clusters_in(view)
        per_view[view] = {
            "shingle": vs.shingle,
            "exact_pairs": len(vs.exact),
            "minhash_candidates": vs.candidates,
            "dense_buckets": vs.dense_buckets,
            "near_pairs": int(np.count_nonzero(vs.near.score >= result.config.minhash.threshold)),
            "semantic_pairs": int(
                np.count_nonzero(vs.semantic.score >= result.config.semantic.threshold)
            ),
            "clusters_by_kind": dict(sorted(Counter(c.kind for c in clusters).items())),
            "records_in_clusters_by_kind": dict(
                sorted(Counter(c.kind for c in clusters for _ in c.members).items())
            ),
            # links the answer check keeps (different_answer, unconfirmed) are not redundancy
            "redundant_records": sum(
                c.size - 1 for c in clusters if c.kind not in (DIFFERENT_ANSWER, UNCONFIRMED)
            ),
            # rows beyond the first of each exact/near/semantic cluster: what clean removes
            # when this is the dedup view (conflicting and canned clusters are kept)
            "duplicate_rows": sum(c.size - 1 for c in clusters if c.kind in DUPLICATE_KINDS),
            "empty_texts": vs.empty_texts,
        }
    clusters = sorted(result.clusters, key=lambda c: (-c.size, c.id))
    if max_clusters is not None:
        clusters = clusters[:max_clusters]
    from dedup_audit.readers.lazy import map_records

    # one ordered pass over the records shown (also for lazily read data), keeping only
    # what the report needs of each: (id, content key) of cluster members, texts of hits
    members = map_records(
        ds.records, [m for c in clusters for m in c.members], lambda r: (r.id, sample_key(r.sample))
    )
    hit_info = map_records(
        ds.records,
        [h.index for h in result.against],
        lambda r: (r.id, {v: view_text(r.sample, v) for v in {h.view for h in result.against}}),
    )
    spanning = cluster_spanning_edges(clusters)
    removed = len(result.removed)
    near_floor = round(score_floor(result.config.minhash.threshold), 6)
    semantic_floor = round(score_floor(result.config.semantic.threshold, -1.0), 6)
    report: dict[str, Any] = {
        "schema": SCHEMA,
        "version": SCHEMA_VERSION,
        "tool_version": __version__,
        "config": result.config.to_dict(),
        "dataset": {
            "name": ds.name,
            "paths": list(ds.paths),
            "format": ds.format,
            "file_type": ds.file_type,
            "rows": n,
            "id_column": ds.id_column,
            "ids": describe_ids(ds.id_column),
        },
        "summary": {
            "rows": n,
            "kept": n - removed,
            "removed": removed,
            "duplicate_ratio": round(removed / n, 6) if n else 0.0,
            "removed_by_reason": _decision_counts(result.decisions),
            "views": per_view,
            "contamination": dict(
                sorted(Counter(f"{h.reference}:{h.method}" for h in result.against).items())
            ),
        },
        "clusters": [
            {
                "id": c.id,
                "view": c.view,
                "kind": c.kind,
                "size": c.size,
                "members": [
                    {"index": m, "id": members[m][0], "key": members[m][1]} for m in c.members
                ],
                "edges": len(c.edges),
                # the strongest edges that connect the cluster (a maximum spanning tree):
                # enough evidence to explain every member without listing all pairs
                "pairs": [
                    [p.a, p.b, p.method, _round(p.score), _round(p.estimate)]
                    for p in spanning[c.id]
                ],
            }
            for c in clusters
        ],
        "contamination_calibration": list(result.against_calibration),
        "scored_pairs_floor": {"minhash": near_floor, "embedding": semantic_floor},
        "scored_pairs_file": PAIRS_FILE,
        "contamination": [
            {
                "id": hit_info[h.index][0],
                "index": h.index,
                "reference": h.reference,
                "reference_id": h.ref_id,
                "method": h.method,
                "view": h.view,
                "score": h.score,  # unrounded: a reloaded scan decides on the same scores
                "kind": h.kind,
                "estimate": h.estimate,
                "text": hit_info[h.index][1][h.view],
                "reference_text": h.ref_text,
            }
            for h in result.against
        ],
    }
    report["warnings"] = scan_warnings(report)
    return report


def dumps(report: dict[str, Any]) -> str:
    """report.json text: the small sections indented, the long lists (clusters, contamination)
    one compact entry per line. Still one JSON document, readable and diffable, and written by
    the C encoder (an indented dump of a million-row report takes minutes in pure Python)."""
    parts = []
    for key, value in report.items():
        head = f"  {json.dumps(key)}: "
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            rows = ",\n    ".join(json.dumps(v, ensure_ascii=False) for v in value)
            parts.append(f"{head}[\n    {rows}\n  ]")
        else:
            text = json.dumps(value, ensure_ascii=False, indent=2)
            parts.append(head + text.replace("\n", "\n  "))
    return "{\n" + ",\n".join(parts) + "\n}\n"


def cluster_methods(c: Cluster) -> set[str]:
    """The methods whose edges joined a cluster (its label depends on them)."""
    return c.edges.methods() if isinstance(c.edges, PairSet) else {p.method for p in c.pairs}


def fetch_records(result: ScanResult, indices: list[int]) -> dict[int, Any]:
    """The records a report shows, read in one ordered pass (also from lazily read data)."""
    from dedup_audit.readers.lazy import fetch

    return fetch(result.dataset.records, indices)


def _clip(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


# Kinds that mean "the same sample again": the only clusters `clean` removes (see decide.py).
DUPLICATE_KINDS = ("exact", "near", "semantic")

KIND_LEGEND = {
    "exact": "the same text",
    "near": "near-identical text (MinHash)",
    "semantic": "same meaning (embeddings)",
    "conflicting": "same prompt, different answers: reported, not removed",
    "canned": "the same answer to different prompts: reported, not removed",
    "canned~near": "near-identical answers to different prompts: reported, not removed",
    "similar answers": "answers alike in meaning, not the same, to different prompts: "
    "reported, not removed",
    "different_answer": "similar tasks (embeddings) whose final answers differ: reported, "
    "not removed",
    "unconfirmed": "similar (embeddings), but not shown to be the same task with the same "
    "answer: reported, not removed",
}


def kind_label(kind: str, methods: set[str] | frozenset[str]) -> str:
    """The label a person reads for a cluster kind. A response-view cluster is "canned" (the
    same answer) only when its answers are the same; when only MinHash or only embeddings link
    them, the answers differ and the label says so."""
    if kind != "canned":
        return kind
    if "embedding" in methods:
        return "similar answers"
    if methods - {"exact"}:
        return "canned~near"
    return "canned"


def _cluster_label(c: dict[str, Any]) -> str:
    return kind_label(c["kind"], {p[2] for p in c.get("pairs", [])})


def view_labels(report: dict[str, Any], view: str) -> dict[str, int]:
    """Clusters of one view counted by label; from report["clusters"] when it lists them all."""
    v = report["summary"]["views"][view]
    listed = [c for c in report["clusters"] if c["view"] == view]
    if len(listed) != sum(v["clusters_by_kind"].values()):
        return dict(v["clusters_by_kind"])
    counts = Counter(_cluster_label(c) for c in listed)
    order = list(KIND_LEGEND)
    return dict(
        sorted(
            counts.items(),
            key=lambda kv: (order.index(kv[0]) if kv[0] in order else len(order), kv[0]),
        )
    )


def duplicate_rows(v: dict[str, Any]) -> int:
    """Rows beyond the first of each exact/near/semantic cluster of a view: the rows `clean`
    removes when that view is the dedup view (conflicting and canned clusters are kept)."""
    records, clusters = v["records_in_clusters_by_kind"], v["clusters_by_kind"]
    return sum(records.get(k, 0) - clusters.get(k, 0) for k in DUPLICATE_KINDS)


def scan_warnings(report: dict[str, Any]) -> list[str]:
    """Everything a reader must know before trusting the numbers. Stored in report.json and
    report.md and printed on stderr whatever the verbosity (-q hides the summary, not these)."""
    warnings: list[str] = []
    s = report["summary"]
    sem = report["config"]["semantic"]
    cjk_views = [view for view, v in s["views"].items() if v["shingle"] == "char"]
    if sem["enabled"] and sem["model"] == DEFAULT_MODEL and cjk_views:
        warnings.append(
            f"the {', '.join(cjk_views)} view(s) are mostly CJK text, but the default embedding "
            "model (all-MiniLM-L6-v2) is English-only: semantic clusters there are unreliable; "
            "pass --model with a local multilingual sentence-transformers folder"
        )
    for view, v in s["views"].items():
        if v.get("dense_buckets"):
            warnings.append(
                f"{view} view: {v['dense_buckets']} LSH bucket(s) held over 256 near-identical "
                "texts (templated data); they were linked star + chain, not pair by pair"
            )
    semantic_removed = sum(n for r, n in s["removed_by_reason"].items() if r.startswith("semantic"))
    if s["rows"] and s["removed"] > s["rows"] / 2:
        warnings.append(
            f"clean would remove {s['removed']} of {s['rows']} rows (over half)"
            + (f", {semantic_removed} of them by embeddings" if semantic_removed else "")
            + "; read the largest clusters before cleaning, and raise --threshold"
            + (" / --semantic-threshold" if semantic_removed else "")
            + " if they are not duplicates"
        )
    return warnings


def _shown(n_shown: int, n_all: int, what: str) -> str:
    return f"{n_shown} of {n_all} {what} shown" if n_shown < n_all else f"all {n_all} {what}"


class RowNumbers:
    """Each record's 1-based row in its own file (what a person counts in an editor): index + 1
    for one file; counted per source for a folder of files (read whole, never lazily)."""

    def __init__(self, result: ScanResult) -> None:
        self._rows: list[int] | None = None
        if len(result.dataset.paths) > 1:
            seen: Counter[str] = Counter()
            self._rows = []
            for r in result.dataset.records:
                seen[r.source] += 1
                self._rows.append(seen[r.source])

    def __getitem__(self, index: int) -> int:
        return index + 1 if self._rows is None else self._rows[index]


def row_numbers(result: ScanResult) -> RowNumbers:
    """index -> the record's 1-based row in its own file."""
    return RowNumbers(result)


def largest_clusters_text(result: ScanResult, *, top: int = 3, width: int = 60) -> list[str]:
    """The largest clusters of each view, members side by side (row | id | text)."""
    lines: list[str] = []
    rows = row_numbers(result)
    for view in result.views:
        every = sorted(result.clusters_in(view), key=lambda c: (-c.size, c.id))
        clusters = every[:top]
        if not clusters:
            continue
        recs = fetch_records(result, [m for c in clusters for m in c.members[:3]])
        lines.append(
            f"Largest {view}-view clusters ({_shown(len(clusters), len(every), 'clusters')}):"
        )
        for c in clusters:
            label = kind_label(c.kind, cluster_methods(c))
            lines.append(f"  #{c.id} {label} x{c.size}")
            for m in c.members[:3]:
                rid = recs[m].id
                text = _clip(view_text(recs[m].sample, view), width)
                lines.append(f"    row {rows[m]:<6} {rid:<26} {text}")
            if c.size > 3:
                lines.append(f"    ({_shown(3, c.size, 'members')})")
    return lines


def terminal_summary(report: dict[str, Any], result: ScanResult | None = None) -> str:
    """What `clean` removes and why, clusters per view and kind, and the largest clusters.
    Warnings are not here: the commands print them on stderr even with -q."""
    s = report["summary"]
    ds = report["dataset"]
    dedup_view = report["config"]["dedup_view"]
    out = [
        f"{ds['name'] or ', '.join(ds['paths'])}: {s['rows']} rows ({ds['format']}, {ds['file_type']})",
        f"Rows clean removes: {s['removed']} of {s['rows']} ({100 * s['duplicate_ratio']:.1f}%)",
    ]
    for reason, count in s["removed_by_reason"].items():
        out.append(f"  {reason:<24} {count}")
    out.append(f"Clusters by view and kind (clean removes duplicates of the {dedup_view} view):")
    labels_seen: set[str] = set()
    for view, v in s["views"].items():
        labels = view_labels(report, view)
        labels_seen |= set(labels)
        kinds = ", ".join(f"{k} {n}" for k, n in labels.items()) or "no clusters"
        out.append(f"  {view:<10} {kinds}  ({duplicate_rows(v)} duplicate rows)")
    for label in [k for k in KIND_LEGEND if k in labels_seen and k not in DUPLICATE_KINDS]:
        out.append(f"  {label}: {KIND_LEGEND[label]}")
    for ref in report["config"]["against"]:
        name = ref.replace("\\", "/").split("/")[-1]
        hits = [h for h in report["contamination"] if h["reference"] == name]
        by_method = {
            k.split(":", 1)[1]: n for k, n in s["contamination"].items() if k.startswith(f"{name}:")
        }
        methods = ", ".join(f"{m} {n}" for m, n in by_method.items()) or "no overlap"
        shown: dict[int, list[dict[str, Any]]] = {}
        for h in hits:
            shown.setdefault(h["index"], []).append(h)
        out.append(
            f"Contamination vs {name}: {len(shown)} training rows ({methods})"
            + (f", {_shown(3, len(shown), 'rows')}" if len(shown) > 3 else "")
        )
        for group in list(shown.values())[:3]:
            h = group[0]
            methods = ", ".join(sorted({g["method"] for g in group}))
            out.append(f"  {h['id']:<26} [{methods}] {_clip(h['text'], 50)}")
            out.append(f"    = {h['reference_id']:<22} {_clip(h['reference_text'], 50)}")
        for cal in report.get("contamination_calibration", []):
            if cal["reference"] == name:
                out.append(
                    f"  embedding cuts calibrated at a false-flag rate of {cal['false_flag_rate']}"
                    f" per clean row and signal ({cal['null_pairs']} unrelated pairs): "
                    f"{cal.get('score', 'cosine')} >= {cal['cosine_cut']:.3f}, margin >= "
                    f"{cal['margin_cut']:.3f} or term share >= {cal.get('words_cut', 1.0):.3f}"
                    + (
                        f"; question + answer >= {cal['question_answer_cut']:.3f}"
                        if cal.get("question_answer_items")
                        else ""
                    )
                )
                if cal.get("sibling_pairs"):
                    a, b, _ = cal["siblings"][0]
                    out.append(
                        f"  {cal['sibling_pairs']} pairs of reference items are near-copies of "
                        f"each other (e.g. {a} / {b}), one item for the null: report.json lists them"
                    )
    if result is not None:
        out += largest_clusters_text(result)
    out.append(f"Ids: {ds.get('ids', describe_ids(ds.get('id_column')))}")
    return "\n".join(out) + "\n"


def render_markdown(report: dict[str, Any], result: ScanResult) -> str:
    """report.md: the summary plus a table per large cluster with members side by side."""
    s = report["summary"]
    ds = report["dataset"]
    dedup_view = report["config"]["dedup_view"]
    rows = row_numbers(result)
    lines = [
        "# dedup-audit scan report",
        "",
        f"- dataset: {', '.join(ds['paths'])} ({ds['format']}, {s['rows']} rows)",
        f"- rows `clean` removes (duplicates in the {dedup_view} view, contamination): "
        f"{s['removed']} ({100 * s['duplicate_ratio']:.2f}%)",
        f"- {ds.get('ids', describe_ids(ds.get('id_column')))}; `row` counts from 1 in each file",
        f"- tool version {report['tool_version']}, schema {report['schema']} v{report['version']}",
        "",
    ]
    if report.get("warnings"):
        lines += ["## Warnings", "", *[f"- {w}" for w in report["warnings"]], ""]
    lines += [
        "## Removals by reason",
        "",
        "| reason | rows |",
        "|---|---|",
        *[f"| {r} | {n} |" for r, n in s["removed_by_reason"].items()],
        "",
        "## Clusters per view",
        "",
        "| view | shingles | exact pairs | near pairs | semantic pairs | clusters by kind "
        "| duplicate rows |",
        "|---|---|---|---|---|---|---|",
    ]
    labels_seen: set[str] = set()
    for view, v in s["views"].items():
        labels = view_labels(report, view)
        labels_seen |= set(labels)
        kinds = ", ".join(f"{k}: {n}" for k, n in labels.items()) or "-"
        lines.append(
            f"| {view} | {v['shingle'] or '-'} | {v['exact_pairs']} | {v['near_pairs']} | "
            f"{v['semantic_pairs']} | {kinds} | {duplicate_rows(v)} |"
        )
    lines += [
        "",
        f"Duplicate rows: rows beyond the first of each exact, near or semantic cluster; `clean` "
        f"removes those of the {dedup_view} view.",
        "",
    ]
    for label in [k for k in KIND_LEGEND if k in labels_seen]:
        lines.append(f"- **{label}**: {KIND_LEGEND[label]}")
    lines += ["", "## Largest clusters", ""]
    for view in result.views:
        every = sorted(result.clusters_in(view), key=lambda c: (-c.size, c.id))
        if not every:
            continue
        recs = fetch_records(result, [m for c in every[:10] for m in c.members[:8]])
        lines += [f"{view} view: {_shown(min(10, len(every)), len(every), 'clusters')}.", ""]
        for c in every[:10]:
            label = kind_label(c.kind, cluster_methods(c))
            lines += [f"### #{c.id}: {view} view, {label}, {c.size} records", ""]
            lines += ["| row | id | text |", "|---|---|---|"]
            for m in c.members[:8]:
                text = _clip(view_text(recs[m].sample, view), 160).replace("|", "\\|")
                lines.append(f"| {rows[m]} | {recs[m].id} | {text} |")
            if c.size > 8:
                lines.append(f"| … | | {_shown(8, c.size, 'members')} |")
            lines.append("")
    if report["contamination"]:
        hits = report["contamination"]
        lines += [
            "## Contamination",
            "",
            f"{_shown(min(200, len(hits)), len(hits), 'hits')}.",
            "",
            "| row | train id | train text | reference | reference id | reference text | method "
            "| score |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for h in hits[:200]:
            left = _clip(h["text"], 100).replace("|", "\\|")
            right = _clip(h["reference_text"], 100).replace("|", "\\|")
            lines.append(
                f"| {rows[h['index']]} | {h['id']} | {left} | {h['reference']} | "
                f"{h['reference_id']} | {right} | {h['method']} | {h['score']} |"
            )
    return "\n".join(lines) + "\n"
