"""report.html for `scan` and `clean --report-dir`: the scan as a page to look at.

Why a page: a person decides whether a cluster is really a duplicate by reading its members
next to each other, and whether a threshold is right by seeing where it cuts the similarity
distribution. The page holds the summary per view and kind, the largest clusters with their
members side by side and the differing words marked, each removal's evidence, contamination
hits beside the reference item, and a histogram of similarities with the threshold marked.

It is one self-contained file: inline CSS and SVG, no scripts, no network, so it opens from
disk (or an e-mail attachment) in any browser. The numbers come from report.json; the texts
and the histogram come from the scan itself, which report.json does not hold in full.
"""

from __future__ import annotations

import difflib
import html
import math
import re
from typing import Any

from dedup_audit.pipeline import ScanResult
from dedup_audit.reports.scan.report_json import (
    KIND_LEGEND,
    cluster_methods,
    duplicate_rows,
    fetch_records,
    kind_label,
    row_numbers,
    view_labels,
)
from dedup_audit.views import view_text

MAX_CLUSTERS = 10  # per view
MAX_MEMBERS = 6  # per cluster, side by side
MAX_REMOVALS = 1000
MAX_HITS = 200
TEXT_CHARS = 1500
BIN = 0.02

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#222;background:#fafafa}
main{max-width:1200px;margin:0 auto;padding:24px}
h1{font-size:1.6em;margin:0 0 8px} h2{border-bottom:2px solid #ddd;padding-bottom:4px;margin-top:32px}
h3{font-size:1.05em;margin:18px 0 6px}
.headline{font-size:1.1em;background:#fff;border-left:5px solid #4c72b0;padding:12px 16px}
.warn{background:#fff4e5;border-left:5px solid #e08a00;padding:8px 16px}
table{border-collapse:collapse;margin:8px 0;background:#fff;font-size:.9em}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f0f0f0} td.num{text-align:right;font-variant-numeric:tabular-nums}
.side{display:flex;gap:8px;overflow-x:auto}
.member{flex:1 1 0;min-width:220px;background:#fff;border:1px solid #ddd;padding:8px;font-size:.85em}
.member .who{font-weight:600;margin-bottom:4px} .member.kept{border-color:#2e7d32}
.member pre,td pre{white-space:pre-wrap;word-break:break-word;margin:0;font-family:inherit}
mark{background:#ffe08a;padding:0 1px}
.muted{color:#666;font-size:.9em}
figure{margin:12px 0;background:#fff;padding:8px;border:1px solid #eee;display:inline-block}
figcaption{font-size:.85em;color:#555}
svg .bar{fill:#4c72b0} svg .bar.in{fill:#c44e52} svg .threshold{stroke:#000;stroke-dasharray:4 3}
svg text{font-size:11px;fill:#333}
"""

_TOKEN = re.compile(r"\s+|\w+|[^\w\s]")


def _e(x: Any) -> str:
    return html.escape("" if x is None else str(x))


def _clip(text: str, n: int = TEXT_CHARS) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def marked(text: str, other: str) -> str:
    """`text` as HTML with the words that `other` does not have (in order) in <mark>, so two
    near-duplicates show exactly where they differ. Whitespace is never marked."""
    a = _TOKEN.findall(_clip(text))
    b = _TOKEN.findall(_clip(other))
    same = [False] * len(a)
    for block in difflib.SequenceMatcher(None, a, b, autojunk=False).get_matching_blocks():
        for i in range(block.a, block.a + block.size):
            same[i] = True
    out = []
    for tok, keep in zip(a, same, strict=True):
        if keep or tok.isspace():
            out.append(_e(tok))
        else:
            out.append(f"<mark>{_e(tok)}</mark>")
    return "".join(out)


def _shown(n_shown: int, n_all: int, what: str) -> str:
    return f"{n_shown} of {n_all} {what} shown" if n_shown < n_all else f"all {n_all} {what}"


def _table(headers: list[str], rows: list[list[str]], numeric: set[int] | None = None) -> str:
    numeric = numeric or set()
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>"
            for i, c in enumerate(r)
        )
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def histogram_svg(scores: list[float], threshold: float, *, title: str) -> str:
    """Bars of `scores` in BIN-wide bins laid out from the threshold (so it is always a bin
    edge), red from the threshold up, and a dashed line at the threshold."""
    lo = min(min(scores), threshold)
    below = math.ceil((threshold - lo) / BIN - 1e-9)
    above = max(1, math.ceil((1.0 - threshold) / BIN - 1e-9))
    n_bins = below + above
    counts = [0] * n_bins
    for s in scores:
        k = below + math.floor((s - threshold) / BIN)  # s >= threshold <=> k >= below
        counts[min(n_bins - 1, max(0, k))] += 1
    start = threshold - below * BIN
    width, height, pad = 560, 180, 34
    bar_w = (width - 2 * pad) / n_bins
    top = max(counts)
    parts = [f'<svg width="{width}" height="{height + 30}" role="img" aria-label="{_e(title)}">']
    for k, c in enumerate(counts):
        if not c:
            continue
        h = (height - pad) * c / top
        x = pad + k * bar_w
        cls = "bar in" if k >= below else "bar"
        lo_edge, hi_edge = start + k * BIN, start + (k + 1) * BIN
        parts.append(
            f'<rect class="{cls}" x="{x:.1f}" y="{height - h:.1f}" width="{max(bar_w - 1, 1):.1f}" '
            f'height="{h:.1f}" data-count="{c}"><title>{lo_edge:.2f}–{hi_edge:.2f}: {c} pairs'
            "</title></rect>"
        )
    tx = pad + below * bar_w
    parts.append(
        f'<line class="threshold" x1="{tx:.1f}" y1="{pad / 2:.1f}" x2="{tx:.1f}" y2="{height}" />'
        f'<text x="{tx + 3:.1f}" y="{pad / 2 + 10:.1f}">threshold {threshold:g}</text>'
        f'<line x1="{pad}" y1="{height}" x2="{width - pad}" y2="{height}" stroke="#999" />'
        f'<text x="{pad}" y="{height + 16}">{start:.2f}</text>'
        f'<text x="{width - pad - 20}" y="{height + 16}">{start + n_bins * BIN:.2f}</text>'
        f'<text x="4" y="{pad}">{top}</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def _summary(report: dict[str, Any]) -> str:
    s = report["summary"]
    dedup_view = report["config"]["dedup_view"]
    rows = []
    seen: set[str] = set()
    for view, v in s["views"].items():
        labels = view_labels(report, view)
        seen |= set(labels)
        kinds = ", ".join(f"{k} {n}" for k, n in labels.items()) or "no clusters"
        rows.append(
            [
                _e(view),
                _e(v["shingle"] or "-"),
                str(v["exact_pairs"]),
                str(v["near_pairs"]),
                str(v["semantic_pairs"]),
                _e(kinds),
                str(duplicate_rows(v)),
            ]
        )
    table = _table(
        [
            "view",
            "shingles",
            "exact pairs",
            "near pairs",
            "semantic pairs",
            "clusters by kind",
            "duplicate rows",
        ],
        rows,
        numeric={2, 3, 4, 6},
    )
    legend = "".join(
        f"<li><b>{_e(k)}</b>: {_e(v)}</li>" for k, v in KIND_LEGEND.items() if k in seen
    )
    reasons = _table(
        ["reason", "rows"],
        [[_e(r), str(n)] for r, n in s["removed_by_reason"].items()],
        numeric={1},
    )
    return (
        '<section id="summary"><h2>Summary</h2>'
        f"<h3>Rows clean removes, by reason</h3>{reasons}"
        f"<h3>Clusters per view and kind</h3>{table}"
        f'<p class="muted">Duplicate rows: rows beyond the first of each exact, near or semantic '
        f"cluster; <code>clean</code> removes those of the {_e(dedup_view)} view.</p>"
        f"<ul>{legend}</ul></section>"
    )


def _clusters(report: dict[str, Any], result: ScanResult, rows: Any) -> str:
    kept = {d.index for d in result.decisions if d.keep}
    out = ['<section id="clusters"><h2>Largest clusters</h2>']
    for view in result.views:
        every = sorted(result.clusters_in(view), key=lambda c: (-c.size, c.id))
        if not every:
            continue
        shown = every[:MAX_CLUSTERS]
        recs = fetch_records(result, [m for c in shown for m in c.members[:MAX_MEMBERS]])
        raw = {m: view_text(r.sample, view) for m, r in recs.items()}
        out.append(
            f'<h3>{_e(view)} view</h3><p class="muted">{_shown(len(shown), len(every), "clusters")}'
            "; words that differ from the first member (from the second, for the first) are "
            "marked.</p>"
        )
        for c in shown:
            label = kind_label(c.kind, cluster_methods(c))
            members = c.members[:MAX_MEMBERS]
            cards = []
            for i, m in enumerate(members):
                other = raw[members[1]] if i == 0 and len(members) > 1 else raw[members[0]]
                cls = "member kept" if m in kept else "member"
                status = "kept" if m in kept else "removed"
                cards.append(
                    f'<div class="{cls}"><div class="who">row {rows[m]} · {_e(recs[m].id)} '
                    f'<span class="muted">({status})</span></div>'
                    f"<pre>{marked(raw[m], other)}</pre></div>"
                )
            more = (
                f'<p class="muted">{_shown(len(members), c.size, "members")}</p>'
                if c.size > len(members)
                else ""
            )
            out.append(
                f'<div class="cluster" id="cluster-{c.id}"><h3>#{c.id}: {_e(label)}, '
                f'{c.size} records</h3><div class="side">{"".join(cards)}</div>{more}</div>'
            )
    out.append("</section>")
    return "".join(out)


def _removals(result: ScanResult, rows: Any) -> str:
    removed = result.removed
    recs = fetch_records(
        result,
        [i for d in removed[:MAX_REMOVALS] for i in (d.index, d.kept_twin, d.via) if i is not None],
    )
    body = []
    hits = {h.index: h for h in reversed(result.against)}  # first hit per training row
    for d in removed[:MAX_REMOVALS]:
        hit = hits.get(d.index) if d.kind == "contamination" else None
        if d.kept_twin is not None:
            twin = f"row {rows[d.kept_twin]} · {_e(recs[d.kept_twin].id)}"
        elif hit is not None:  # removed for contamination: its twin is the reference item
            twin = f'{_e(hit.ref_id)} <span class="muted">(reference)</span>'
        else:
            twin = "–"
        via = f"row {rows[d.via]} · {_e(recs[d.via].id)}" if d.via is not None else "–"
        body.append(
            [
                str(rows[d.index]),
                _e(recs[d.index].id),
                _e(d.reason),
                _e(d.method),
                "–" if d.score is None else f"{d.score:.4f}",
                twin,
                via,
                "–" if d.cluster_id is None else f"#{d.cluster_id}",
            ]
        )
    table = _table(
        ["row", "id", "reason", "method", "score", "kept twin", "via", "cluster"],
        body,
        numeric={0, 4},
    )
    return (
        f'<section id="removals"><h2>Removals</h2><p class="muted">'
        f"{_shown(len(body), len(removed), 'removals')}; the full record is in removed.jsonl of "
        "<code>clean</code>. <i>via</i>: the member the removed row is linked through when it "
        f"is not directly similar to the kept twin.</p>{table}</section>"
    )


def _contamination(report: dict[str, Any], rows: Any) -> str:
    hits = report["contamination"]
    if not report["config"]["against"]:
        return ""
    body = []
    for h in hits[:MAX_HITS]:
        body.append(
            [
                f"row {rows[h['index']]} · {_e(h['id'])}<pre>{marked(h['text'], h['reference_text'])}</pre>",
                f"{_e(h['reference'])} · {_e(h['reference_id'])}"
                f"<pre>{marked(h['reference_text'], h['text'])}</pre>",
                _e(h["method"]),
                "–" if h["score"] is None else f"{h['score']:.4f}",
            ]
        )
    table = _table(["training row", "reference item", "method", "score"], body, numeric={3})
    refs = ", ".join(_e(r) for r in report["config"]["against"])
    return (
        f'<section id="contamination"><h2>Contamination</h2><p class="muted">Against {refs}: '
        f"{_shown(len(body), len(hits), 'hits')}.</p>{table}</section>"
    )


def _histograms(report: dict[str, Any], result: ScanResult) -> str:
    near_t = report["config"]["minhash"]["threshold"]
    sem_t = report["config"]["semantic"]["threshold"]
    figs = []
    for view, vs in result.views.items():
        for method, scores, t, what in (
            ("minhash", vs.near.score.tolist(), near_t, "Jaccard of each verified LSH pair"),
            ("embedding", vs.semantic.score.tolist(), sem_t, "cosine of each kNN neighbour"),
        ):
            if not scores:
                continue
            title = f"{view} view, {method}: {what} ({len(scores)} pairs)"
            figs.append(
                f'<figure id="hist-{_e(view)}-{method}">{histogram_svg(scores, t, title=title)}'
                f"<figcaption>{_e(title)}; red: at or above the threshold {t:g}</figcaption></figure>"
            )
    if not figs:
        figs.append(
            '<p class="muted">No MinHash candidate or embedding neighbour pair was scored in any '
            "view: no near-duplicate candidates were found, or near/semantic detection was off."
            "</p>"
        )
    return f'<section id="similarity"><h2>Similarity distribution</h2>{"".join(figs)}</section>'


def render_scan_html(report: dict[str, Any], result: ScanResult) -> str:
    """The whole page (see the module docstring). Deterministic: same scan, same bytes."""
    s = report["summary"]
    ds = report["dataset"]
    rows = row_numbers(result)
    warnings = "".join(f'<p class="warn">Warning: {_e(w)}</p>' for w in report.get("warnings", []))
    headline = (
        f"{_e(ds['name'] or ', '.join(ds['paths']))}: {s['rows']} rows ({_e(ds['format'])}, "
        f"{_e(ds['file_type'])}). <code>clean</code> removes {s['removed']} "
        f"({100 * s['duplicate_ratio']:.1f}%)."
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>dedup-audit scan: {_e(ds['name'])}</title><style>{CSS}</style></head><body><main>"
        f'<h1>dedup-audit scan report</h1><p class="headline" id="headline">{headline}</p>'
        f'<div id="warnings">{warnings}</div>'
        f'<p class="muted" id="ids">{_e(ds.get("ids", ""))}; <i>row</i> counts from 1 in each '
        f"file. Data: {_e(', '.join(ds['paths']))}. dedup-audit {_e(report['tool_version'])}, "
        f"schema {_e(report['schema'])} v{report['version']}.</p>"
        + _summary(report)
        + _clusters(report, result, rows)
        + _removals(result, rows)
        + _contamination(report, rows)
        + _histograms(report, result)
        + "</main></body></html>\n"
    )
