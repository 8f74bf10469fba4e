"""The terminal summary of a memorization report: a few lines, rendered from report.json only."""

from __future__ import annotations

from typing import Any


def _f(x: Any, spec: str = ".3g") -> str:
    return "n/a" if x is None else format(x, spec)


def summary_text(report: dict[str, Any]) -> str:
    lines = [report["headline"], ""]
    st = report.get("staircase")
    if st:
        lines.append(f"Staircase: {st['verdict']} ({'; '.join(st['reasons'])})")
        for b in st["boundaries"]:
            lines.append(
                f"  after epoch {b['boundary']} (step {b['step']}): drop {_f(b.get('drop'))}, trend "
                f"{_f(b.get('trend_drop'))}, "
                + (f"ratio {b['ratio']:.1f}" if b.get("ratio") is not None else "trend flat")
                + f", t={_f(b.get('t'), '.2f')}, "
                f"p={_f(b.get('p_value'), '.2g')} -> {b['verdict']}"
            )
    sm = report.get("samples")
    if sm and sm.get("available"):
        a = sm["stats"]["auc_memorization_duplicated_vs_unique"]
        s = sm["stats"]["spearman_copies_vs_total_drop"]
        lines.append(
            f"Per-sample: AUC(memorization, duplicated vs unique)={_f(a.get('auc'))} "
            f"(U={_f(a.get('U'), '.1f')}, p={_f(a.get('p_value'), '.2g')}, n={a['n_x']}/{a['n_y']}); "
            f"Spearman(copies, drop)={_f(s.get('rho'))} (n={s['n']})"
        )
        for i in sm.get("issues", []):
            lines.append(f"  ! {i['message']}")
    elif sm:
        lines.append(f"Per-sample: unavailable ({sm.get('reason')})")
    lines.append("Diagnosis:")
    for d in report["diagnosis"]:
        lines.append(f"  {'(' + d['id'] + ')':<5} {d['verdict']:<13} {d['hypothesis']}")
    if report["recommendations"]:
        lines.append("Recommendations:")
        for r in report["recommendations"]:
            lines.append(f"  - {r['action']}: {r['setting'].splitlines()[0]}  [{r['evidence']}]")
    for m in report["missing"]:
        lines.append(f"Missing {m['what']}: {m['effect']} (add: {m['how']})")
    return "\n".join(lines) + "\n"
