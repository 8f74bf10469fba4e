"""`dedup-audit calibrate`: the LSH S-curve and, from a saved scan, the borderline pairs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from dedup_audit.cli import handle_errors


@click.command(
    "calibrate",
    epilog="""\b
Examples:
  dedup-audit calibrate --threshold 0.8 --num-perm 128
  dedup-audit calibrate --report out/report.json --margin 0.03 --limit 10
  dedup-audit calibrate --report out/report.json --data data.json   # with the pairs' texts
""",
)
@click.option(
    "--threshold",
    type=float,
    default=None,
    show_default="0.8 or the report's",
    help="MinHash Jaccard threshold.",
)
@click.option(
    "--num-perm",
    type=int,
    default=None,
    show_default="128 or the report's",
    help="MinHash permutations.",
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="A scan's report.json: list pairs near its thresholds.",
)
@click.option(
    "--semantic-threshold",
    type=float,
    default=None,
    help="Cosine threshold to inspect (default: the report's).",
)
@click.option(
    "--margin",
    type=float,
    default=0.05,
    show_default=True,
    help="How far either side of a threshold counts as borderline.",
)
@click.option(
    "--limit", type=int, default=20, show_default=True, help="Borderline pairs shown per method."
)
@click.option(
    "--data",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="The scanned dataset: show each borderline pair's two texts (default: the report's "
    "input path when it still exists).",
)
@handle_errors
def calibrate(
    threshold: float | None,
    num_perm: int | None,
    report_path: Path | None,
    semantic_threshold: float | None,
    margin: float,
    limit: int,
    data: Path | None,
) -> None:
    """Show how likely MinHash-LSH is to catch a pair at each Jaccard similarity for the
    bands/rows datasketch picks, and list a saved scan's pairs just either side of each
    threshold so a person can check where the cut should be."""
    from dedup_audit.reports.scan.calibrate import (
        borderline_pairs,
        lsh_params,
        pairs_from_report,
        report_thresholds,
        s_curve,
    )

    report = None
    if report_path is not None:
        from dedup_audit.reports.scan.report_json import read_scan_report

        report = read_scan_report(report_path)
        mh = report.get("config", {}).get("minhash", {})
        threshold = threshold if threshold is not None else mh.get("threshold")
        num_perm = num_perm if num_perm is not None else mh.get("num_perm")
    threshold = 0.8 if threshold is None else float(threshold)
    num_perm = 128 if num_perm is None else int(num_perm)
    b, r = lsh_params(threshold, num_perm)
    click.echo(f"MinHash-LSH threshold {threshold}, num_perm {num_perm}: {b} bands x {r} rows")
    click.echo("  Jaccard  P(candidate)")
    for s, p in s_curve(threshold, num_perm):
        bar = "#" * round(p * 40)
        click.echo(f"  {s:7.2f}  {p:11.4f}  {bar}")
    if report is None:
        return
    thresholds = report_thresholds(report)
    thresholds["minhash"] = threshold
    if semantic_threshold is not None:
        thresholds["embedding"] = semantic_threshold
    ids = _record_ids(report)
    texts = _texts(report, data)
    groups = borderline_pairs(pairs_from_report(report), thresholds, margin=margin, limit=limit)
    if not groups:
        near = ", ".join(f"{m} {t}" for m, t in thresholds.items())
        click.echo(f"\nNo scored pair within ±{margin} of the thresholds ({near}).")
    for method, group in groups.items():
        click.echo(f"\nBorderline {method} pairs (threshold {thresholds[method]}, ±{margin}):")
        for pair in group:
            side = "in " if pair.score >= thresholds[method] else "out"
            click.echo(
                f"  {side} {pair.score:.4f}  {pair.view:<8} {ids.get(pair.a, pair.a)}  <->  {ids.get(pair.b, pair.b)}"
            )
            if texts is not None:
                for m in (pair.a, pair.b):
                    click.echo(f"        {_clip(texts(m, pair.view), 100)}")


def _record_ids(report: dict[str, Any]) -> dict[int, str]:
    """index -> record id from the clusters' member lists (the report's only id table)."""
    ids: dict[int, str] = {}
    for c in report.get("clusters", []):
        for m in c.get("members", []):
            ids[int(m["index"])] = str(m["id"])
    return ids


def _clip(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _texts(report: dict[str, Any], data: Path | None) -> Any:
    """text(index, view) from the scanned dataset (--data, else the report's own input path when
    it still exists), or None when there is no dataset to read."""
    from dedup_audit.errors import InputError
    from dedup_audit.readers import load_dataset
    from dedup_audit.views import view_text

    paths = report.get("dataset", {}).get("paths") or []
    source = data if data is not None else (Path(paths[0]) if len(paths) == 1 else None)
    if source is None or not source.exists():
        return None
    cols = report.get("dataset", {}).get("columns") or None
    dataset = load_dataset(source, columns=cols, progress=False)
    rows = report.get("dataset", {}).get("rows")
    if rows is not None and rows != len(dataset.records):
        raise InputError(
            f"{source}: {len(dataset.records)} rows, but the scan had {rows}; pass the scanned "
            "file with --data"
        )
    recs = dataset.records
    return lambda m, view: view_text(recs[m].sample, view)
