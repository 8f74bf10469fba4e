"""A self-contained HTML page for the memorization report.

It renders only what report.json holds (plots are drawn from its series and embedded as base64
PNG), so the JSON stays the single source of truth and the page needs no network or scripts.
"""

from __future__ import annotations

import html
import re
from typing import Any

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#222;background:#fafafa}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:1.6em;margin:0 0 8px} h2{border-bottom:2px solid #ddd;padding-bottom:4px;margin-top:32px}
.headline{font-size:1.1em;background:#fff;border-left:5px solid #4c72b0;padding:12px 16px}
table{border-collapse:collapse;margin:8px 0;background:#fff;font-size:.9em}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f0f0f0} td.num{text-align:right;font-variant-numeric:tabular-nums}
.v-staircase,.v-supported{color:#b00020;font-weight:600}
.v-smooth,.v-not-supported{color:#2e7d32;font-weight:600}
.v-inconclusive,.v-undecided{color:#a15c00;font-weight:600}
.v-rise{color:#6a3d9a;font-weight:600} code{background:#f0f0f0;padding:0 3px}
figure{margin:12px 0;background:#fff;padding:8px;border:1px solid #eee}
figure img{max-width:100%;height:auto} figcaption{font-size:.85em;color:#555}
.side{display:flex;gap:8px;flex-wrap:wrap} .side>div{flex:1 1 300px;background:#fff;border:1px solid #ddd;padding:8px;font-size:.85em}
pre{white-space:pre-wrap;margin:4px 0;background:#f6f6f6;padding:4px}
.muted{color:#666;font-size:.9em} ul{margin:4px 0}
"""


class _Raw(str):
    """Already-escaped HTML for a table cell."""


def _e(x: Any) -> str:
    return html.escape("" if x is None else str(x))


def _md(x: Any) -> _Raw:
    """Escaped text with `code` spans rendered (evidence and advice quote settings that way)."""
    return _Raw(re.sub(r"`([^`]+)`", r"<code>\1</code>", _e(x)))


def _num(x: Any, spec: str = ".4g") -> str:
    if x is None:
        return "–"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, (int, float)):
        return format(x, spec)
    return _e(x)


def _table(headers: list[str], rows: list[list[Any]], numeric: set[int] | None = None) -> str:
    numeric = numeric or set()
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = []
    for r in rows:
        cells = []
        for i, c in enumerate(r):
            if i in numeric:
                cells.append(f'<td class="num">{_num(c)}</td>')
            else:
                cells.append(f"<td>{c if isinstance(c, _Raw) else _e(c)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _verdict(v: str) -> _Raw:
    return _Raw(f'<span class="v-{_e(v).replace(" ", "-")}">{_e(v)}</span>')


def _figure(plots: dict[str, str], name: str, caption: str) -> str:
    if name not in plots:
        return ""
    return (
        f'<figure id="plot-{name}"><img alt="{_e(caption)}" src="data:image/png;base64,{plots[name]}">'
        f"<figcaption>{_e(caption)}</figcaption></figure>"
    )


def _staircase(st: dict[str, Any], plots: dict[str, str]) -> str:
    parts = ['<section id="staircase"><h2>Staircase in the training loss</h2>']
    parts.append(f"<p>Verdict: {_verdict(st['verdict'])}. {_md('; '.join(st['reasons']))}</p>")
    if st.get("steps_per_epoch"):
        parts.append(
            f'<p class="muted">{_num(st["steps_per_epoch"])} steps per epoch, '
            f"{_num(st.get('logged_points_per_epoch'))} logged points per epoch, windows of "
            f"{_num(st.get('window_points'))} points each side; mid-epoch placebo level "
            f"{_num(st.get('placebo_level'))}.</p>"
        )
    parts.append(
        _figure(
            plots,
            "loss",
            "Logged loss (grey), its mean within each epoch (blue, never across a boundary), boundaries dashed",
        )
    )
    parts.append(_figure(plots, "lr", "Learning rate with boundaries"))
    rows = [
        [
            b["boundary"],
            b["step"],
            b.get("drop"),
            b.get("trend_drop"),
            b.get("ratio"),
            b.get("excess_drop"),
            b.get("t"),
            b.get("p_value"),
            _Raw(_e(b.get("lr_before") and f"{b['lr_before']:.3g} → {b['lr_after']:.3g}")),
            _Raw(
                _e(
                    ", ".join(f"{k}@{v}" for k, v in (b.get("aligned_events") or {}).items())
                    + (" resume" if b.get("resumed_here") else "")
                )
            ),
            _verdict(b["verdict"]),
            _md("; ".join(b.get("reasons", []))),
        ]
        for b in st.get("boundaries", [])
    ]
    if rows:
        parts.append(
            _table(
                [
                    "after epoch",
                    "step",
                    "drop",
                    "trend drop",
                    "ratio",
                    "excess",
                    "t",
                    "p",
                    "lr",
                    "events",
                    "verdict",
                    "why",
                ],
                rows,
                numeric={1, 2, 3, 4, 5, 6, 7},
            )
        )
    ev = st.get("eval") or {}
    if ev.get("present"):
        parts.append("<h3>Train / eval gap</h3>")
        parts.append(
            _table(
                ["step", "epoch", "train loss", "eval loss", "gap"],
                [
                    [p["step"], p["epoch"], p["train_loss"], p["eval_loss"], p["gap"]]
                    for p in ev["points"]
                ],
                numeric={0, 1, 2, 3, 4},
            )
        )
        parts.append(
            f"<p>Gap growth {_num(ev.get('gap_growth'))}; best eval loss at epoch "
            f"{_num(ev.get('best_eval_epoch'))}{'; eval loss rises after it' if ev.get('eval_rising_after_best') else ''}.</p>"
        )
    parts.append("</section>")
    return "".join(parts)


def _samples(sm: dict[str, Any], plots: dict[str, str]) -> str:
    parts = ['<section id="samples"><h2>Per-sample losses</h2>']
    if not sm.get("available"):
        parts.append(f"<p>{_e(sm.get('reason'))}</p></section>")
        return "".join(parts)
    mem = sm.get("membership")
    parts.append(
        f"<p>{_num(sm['join'].get('loss_keys'))} loss keys, epochs {_e(', '.join(f'{e:g}' for e in sm['epochs']))}; "
        f"joined by {_e(sm['join'].get('joined_by'))}"
        + (
            f"; {mem['duplicated_records']} record(s) in {mem['clusters']} duplicate cluster(s) (view {_e(mem['view'])}, from {_e(mem['source'])})"
            if mem
            else "; no dataset or scan given, so no groups"
        )
        + f". Memorization score: {_e(sm['memorization_score']['definition'])}.</p>"
    )
    parts.append(
        _figure(
            plots,
            "group_curves",
            "Mean per-sample loss per epoch, by cluster size"
            + (" (held-out in green)" if "heldout" in (sm.get("groups") or {}) else ""),
        )
    )
    parts.append(
        _figure(
            plots,
            "drop_distribution",
            "Per-sample loss drop since the first trained epoch, by group",
        )
    )
    parts.append(_figure(plots, "exposures", "Mean loss against prior exposures (copies x epoch)"))
    expo = sm.get("exposures") or {}
    if expo.get("verdict"):
        parts.append(
            f"<p>Exposures: <b>{_e(expo['verdict'])}</b> — {_e(expo.get('reason'))} "
            f"(spread at equal epoch {_num(expo.get('mean_spread_at_equal_epoch'))}, at equal exposures "
            f"{_num(expo.get('mean_spread_at_equal_exposures'))}).</p>"
        )
    st = sm["stats"]
    rows = []
    a = st["auc_memorization_duplicated_vs_unique"]
    rows.append(
        [
            "AUC of memorization score, duplicated vs unique",
            a.get("auc"),
            a.get("U"),
            a.get("p_value"),
            f"{a['n_x']} vs {a['n_y']}",
        ]
    )
    m = st["mannwhitney_drop_since_first_duplicated_vs_unique"]
    rows.append(
        [
            "Mann-Whitney, drop since first epoch, duplicated > unique",
            m.get("auc"),
            m.get("U"),
            m.get("p_value"),
            f"{m['n_x']} vs {m['n_y']}",
        ]
    )
    for name, label in (
        ("total_drop", "total drop"),
        ("drop_since_first", "drop since first trained epoch"),
    ):
        s = st[f"spearman_copies_vs_{name}"]
        rng = st[name]
        rows.append(
            [
                f"Spearman rho, copies vs {label} ({rng['from_epoch']:g}→{rng['to_epoch']:g})",
                s.get("rho"),
                None,
                s.get("p_value"),
                s["n"],
            ]
        )
    t = st["train_vs_heldout_log_drop"]
    rows.append(
        [
            "Mann-Whitney, log-loss drop, train > held-out",
            t.get("auc"),
            t.get("U"),
            t.get("p_value"),
            f"{t['n_x']} vs {t['n_y']}",
        ]
    )
    parts.append("<h3>Statistics</h3>")
    parts.append(_table(["test", "AUC / rho", "U", "p", "n"], rows, numeric={1, 2, 3}))
    parts.append(f'<p class="muted">Unit: {_e(st["unit"])}.</p>')
    if sm.get("boundaries"):
        parts.append("<h3>Each group's share of every boundary drop</h3>")
        rows = []
        for b in sm["boundaries"]:
            for g, v in b["shares"]["size"].items():
                rows.append(
                    [
                        f"{b['from_epoch']:g} → {b['to_epoch']:g}",
                        g,
                        v["records"],
                        v["row_share"],
                        v["mean_drop"],
                        v["contribution"],
                        v["share_of_drop"],
                    ]
                )
            rows.append(
                [
                    f"{b['from_epoch']:g} → {b['to_epoch']:g}",
                    _Raw("<b>total</b>"),
                    b["records"],
                    1.0,
                    b["total_mean_drop"],
                    b["total_mean_drop"],
                    1.0,
                ]
            )
        parts.append(
            _table(
                [
                    "epochs",
                    "cluster size",
                    "records",
                    "row share",
                    "mean drop",
                    "share × drop",
                    "share of total drop",
                ],
                rows,
                numeric={2, 3, 4, 5, 6},
            )
        )
    if sm.get("top_memorized"):
        parts.append('<h3 id="top">Most memorized samples, with their duplicates side by side</h3>')
        for u in sm["top_memorized"]:
            parts.append(
                f"<p><b>{_e(u['unit'])}</b> — {u['copies']} cop{'y' if u['copies'] == 1 else 'ies'}, kind {_e(u['kind'])}, "
                f'score {_num(u["memorization_score"])}, drop {_num(u["drop_since_first"])}</p><div class="side">'
            )
            for group in _same_text(u["members"]):
                mrow = group[0]
                losses = ", ".join(
                    f"{k}: {v:.3g}" for k, v in mrow["losses"].items() if v is not None
                )
                ids = ", ".join(str(m["id"]) for m in group)
                title = f"{len(group)} identical copies: {_e(ids)}" if len(group) > 1 else _e(ids)
                parts.append(
                    f'<div class="member"><b>{title}</b><br>'
                    f'<span class="muted">loss {_e(losses)}</span>'
                    + (
                        f"<pre>{_e(mrow.get('prompt'))}</pre><pre>{_e(mrow.get('response'))}</pre>"
                        if mrow.get("prompt") or mrow.get("response")
                        else ""
                    )
                    + "</div>"
                )
            if u.get("more_members"):
                parts.append(f'<div class="muted">+{u["more_members"]} more</div>')
            parts.append("</div>")
    parts.append("</section>")
    return "".join(parts)


def _same_text(members: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Members grouped by identical prompt + response: exact copies are shown once, with their
    ids, instead of side by side (different texts, the near duplicates, stay side by side)."""
    groups: dict[tuple[Any, Any], list[dict[str, Any]]] = {}
    for m in members:
        key = (m.get("prompt"), m.get("response"))
        if key == (None, None):
            key = (m.get("id"), None)
        groups.setdefault(key, []).append(m)
    return list(groups.values())


def render_html(report: dict[str, Any]) -> str:
    from dedup_audit.reports.memorization.plots import render_plots

    plots = render_plots(report)
    parts = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>dedup-audit memorization report</title>",
        f"<style>{CSS}</style></head><body><main>",
        "<h1>Memorization report</h1>",
        f'<p class="headline" id="headline">{_e(report["headline"])}</p>',
    ]
    parts.append('<section id="diagnosis"><h2>Differential diagnosis</h2>')
    rows = [
        [
            f"({d['id']})",
            d["hypothesis"],
            _verdict(d["verdict"]),
            _Raw("<ul>" + "".join(f"<li>{_md(x)}</li>" for x in d["evidence"]) + "</ul>"),
            _md(d["decided_by"]),
        ]
        for d in report["diagnosis"]
    ]
    parts.append(_table(["", "hypothesis", "verdict", "evidence", "what would decide it"], rows))
    parts.append("</section>")
    parts.append('<section id="recommendations"><h2>Recommendations</h2>')
    if report["recommendations"]:
        parts.append(
            _table(
                ["change", "setting", "evidence", "hypothesis"],
                [
                    [
                        r["action"],
                        _Raw(f"<pre>{_e(r['setting'])}</pre>"),
                        _md(r["evidence"]),
                        r["hypothesis"],
                    ]
                    for r in report["recommendations"]
                ],
            )
        )
    else:
        parts.append("<p>None: nothing in these inputs calls for a change.</p>")
    parts.append("</section>")
    if report.get("staircase"):
        parts.append(_staircase(report["staircase"], plots))
    if report.get("samples"):
        parts.append(_samples(report["samples"], plots))
    parts.append('<section id="inputs"><h2>Inputs, missing pieces and data issues</h2>')
    parts.append(_table(["input", "path"], [[k, v] for k, v in report["inputs"].items()]))
    if report["missing"]:
        parts.append(
            _table(
                ["missing", "effect", "how to add it"],
                [[m["what"], _md(m["effect"]), _md(m["how"])] for m in report["missing"]],
            )
        )
    issues = (report.get("samples") or {}).get("issues") or []
    tr = report.get("training") or {}
    if tr.get("resumes") or tr.get("duplicate_steps") or tr.get("nonfinite_losses"):
        issues = [
            *issues,
            {
                "kind": "training_log",
                "count": tr.get("duplicate_steps", 0) + tr.get("nonfinite_losses", 0),
                "message": f"{len(tr.get('resumes', []))} resume(s), {tr.get('duplicate_steps', 0)} repeated step(s) (last kept), {tr.get('nonfinite_losses', 0)} non-finite loss(es)",
                "examples": tr.get("nonfinite_examples", []),
            },
        ]
    if issues:
        parts.append(
            _table(
                ["issue", "count", "what happened", "examples"],
                [[i["kind"], i["count"], i["message"], "; ".join(i["examples"])] for i in issues],
                numeric={1},
            )
        )
    if report.get("training_args"):
        parts.append(
            _table(
                ["training argument", "value"], [[k, v] for k, v in report["training_args"].items()]
            )
        )
    parts.append(
        f'<p class="muted">schema {_e(report["schema"])} v{_e(report["version"])}, dedup-audit {_e(report.get("tool_version"))}</p>'
    )
    parts.append("</section></main></body></html>\n")
    return "".join(parts)
