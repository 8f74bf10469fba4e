"""`dedup-audit calibrate`: the LSH S-curve and, from a saved scan, the borderline pairs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from dedup_audit.commands.common import data_option, handle_errors
from dedup_audit.config import MinHashConfig
from dedup_audit.errors import ConfigError, InputError
from dedup_audit.views import view_text


@click.command(
    "calibrate",
    epilog="""\b
Examples:
  dedup-audit calibrate --threshold 0.8 --num-perm 128
  dedup-audit calibrate --report out/report.json --margin 0.03 --limit 10
  dedup-audit calibrate --report out/report.json --data data.json   # with the pairs' texts
  dedup-audit calibrate --report out/report.json --labels labelled_pairs.jsonl
""",
)
@click.option(
    "--threshold",
    type=float,
    default=None,
    show_default=f"{MinHashConfig.threshold} or the report's",
    help="MinHash Jaccard threshold.",
)
@click.option(
    "--num-perm",
    type=int,
    default=None,
    show_default=f"{MinHashConfig.num_perm} or the report's",
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
    "--labels",
    "labels_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help='Human-labelled pairs (JSONL: {"a": ID, "b": ID, "duplicate": true|false}): fit '
    "the threshold from their saved scores (scikit-learn precision/recall curve). Needs --report.",
)
@click.option(
    "--min-precision",
    type=float,
    default=None,
    help="With --labels: the lowest threshold keeping this precision (default: best F1).",
)
@data_option(
    "The scanned dataset: show each borderline pair's two texts (default: the report's "
    "input path when it still exists)."
)
@handle_errors
def calibrate(
    threshold: float | None,
    num_perm: int | None,
    report_path: Path | None,
    semantic_threshold: float | None,
    margin: float,
    limit: int,
    labels_path: Path | None,
    min_precision: float | None,
    data: Path | None,
) -> None:
    """Show how likely MinHash-LSH is to catch a pair at each Jaccard similarity for the
    bands/rows datasketch picks, and list a saved scan's pairs just either side of each
    threshold so a person can check where the cut should be. With --labels, fit the threshold
    from a few dozen pairs a person judged (duplicate or not) and print its precision/recall."""
    from dedup_audit.reports.scan.calibrate import borderline_pairs, lsh_params, s_curve
    from dedup_audit.reports.scan.saved import SavedScan, read

    saved: SavedScan | None = None
    if report_path is not None:
        saved = read(report_path)
        threshold = saved.config.minhash.threshold if threshold is None else threshold
        num_perm = saved.config.minhash.num_perm if num_perm is None else num_perm
    elif labels_path is not None:
        raise ConfigError("--labels needs --report: the labelled pairs' scores come from a scan")
    default = MinHashConfig()
    threshold = default.threshold if threshold is None else float(threshold)
    num_perm = default.num_perm if num_perm is None else int(num_perm)
    b, r = lsh_params(threshold, num_perm)
    click.echo(f"MinHash-LSH threshold {threshold}, num_perm {num_perm}: {b} bands x {r} rows")
    click.echo("  Jaccard  P(candidate)")
    for s, p in s_curve(threshold, num_perm):
        bar = "#" * round(p * 40)
        click.echo(f"  {s:7.2f}  {p:11.4f}  {bar}")
    if saved is None:
        return
    thresholds = saved.thresholds()
    thresholds["minhash"] = threshold
    if semantic_threshold is not None:
        thresholds["embedding"] = semantic_threshold
    ids = saved.record_ids()
    records = _records(saved, data, required=labels_path is not None)
    if labels_path is not None:
        assert records is not None
        _fit(saved, labels_path, records, min_precision)
        return
    groups = borderline_pairs(saved.scored_pairs(), thresholds, margin=margin, limit=limit)
    if not groups:
        near = ", ".join(f"{m} {t}" for m, t in thresholds.items())
        click.echo(f"\nNo scored pair within ±{margin} of the thresholds ({near}).")
    for method, group in groups.items():
        click.echo(f"\nBorderline {method} pairs (threshold {thresholds[method]}, ±{margin}):")
        for pair in group:
            side = "in " if pair.score >= thresholds[method] else "out"
            a, b_ = (
                (records[pair.a].id, records[pair.b].id)
                if records is not None
                else (ids.get(pair.a, pair.a), ids.get(pair.b, pair.b))
            )
            click.echo(f"  {side} {pair.score:.4f}  {pair.view:<8} {a}  <->  {b_}")
            if records is not None:
                for m in (pair.a, pair.b):
                    click.echo(f"        {_clip(view_text(records[m].sample, pair.view), 100)}")


def _fit(saved: Any, labels_path: Path, records: Any, min_precision: float | None) -> None:
    """Fit and print the threshold the labelled pairs ask for, per method."""
    from dedup_audit.detect.minhash import score_floor
    from dedup_audit.reports.scan.calibrate import fit_threshold, label_scores, read_labels

    labels = read_labels(labels_path, saved.config.dedup_view)
    index_of = {r.id: r.index for r in records}
    scores = label_scores(labels, saved.pairs, index_of, labels_path)
    scanned = saved.thresholds()
    for method in ("minhash", "embedding"):
        picked = [k for k, lab in enumerate(labels) if lab.method == method]
        if not picked:
            continue
        lowest = -1.0 if method == "embedding" else 0.0
        floor = score_floor(scanned.get(method, 0.0), lowest)
        fit = fit_threshold(
            [scores[k] for k in picked],
            [labels[k].duplicate for k in picked],
            method=method,
            floor=floor,
            min_precision=min_precision,
        )
        click.echo(
            f"\nLabelled {method} pairs: {fit.positives} duplicates, {fit.negatives} not "
            f"({fit.unscored} below the scan's floor {floor:g}); average precision "
            f"{fit.average_precision:.3f}"
        )
        click.echo("  threshold  precision  recall")
        for t, p, r in fit.curve:
            mark = "  <- chosen" if t == fit.threshold else ""
            click.echo(f"  {t:9.4f}  {p:9.3f}  {r:6.3f}{mark}")
        click.echo(
            f"Threshold {fit.threshold} ({fit.rule}): precision {fit.precision:.3f}, recall "
            f"{fit.recall:.3f}, F1 {fit.f1:.3f}"
        )
        flag = "--threshold" if method == "minhash" else "--semantic-threshold"
        if fit.threshold >= scanned.get(method, fit.threshold):
            click.echo(f"Apply: dedup-audit rethreshold {saved.path} {flag} {fit.threshold} -o OUT")
        else:
            click.echo(
                f"Apply: rescan with {flag} {fit.threshold} (below the scanned "
                f"{scanned[method]}, so LSH must propose the lower pairs)"
            )


def _clip(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _records(saved: Any, data: Path | None, *, required: bool) -> Any:
    """The scanned records (--data, else the report's own input path when it still exists),
    or None when there is none to read and none is required."""
    from dedup_audit.readers import load_dataset

    source = data if data is not None else saved.data_path()
    if source is None or not source.exists():
        if required:
            raise ConfigError("--labels names records by id: pass the scanned data with --data")
        return None
    info = saved.report.get("dataset", {})
    dataset = load_dataset(
        source,
        format=info.get("format", "auto") if data is None else "auto",
        id_column=info.get("id_column"),
        progress=False,
    )
    rows = info.get("rows")
    if rows is not None and rows != len(dataset.records):
        raise InputError(
            f"{source}: {len(dataset.records)} rows, but the scan had {rows}; pass the scanned "
            "file with --data"
        )
    return dataset.records
