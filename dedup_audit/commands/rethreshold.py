"""`dedup-audit rethreshold`: new thresholds for a saved scan, from its saved scores."""

from __future__ import annotations

from pathlib import Path

import click

from dedup_audit.cli import handle_errors


@click.command()
@click.argument("report_json", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option(
    "--data",
    type=click.Path(path_type=Path, exists=True),
    help="The scanned data (default: the path recorded in the report).",
)
@click.option("--threshold", type=float, help="New MinHash (Jaccard) threshold.")
@click.option("--semantic-threshold", type=float, help="New cosine threshold.")
@click.option(
    "-o",
    "--output",
    "outdir",
    type=click.Path(path_type=Path),
    required=True,
    help="Folder for the new report.json and report.md.",
)
@click.option("--force", is_flag=True, help="Overwrite an existing report in --output.")
@click.option("--quiet", "-q", is_flag=True, help="No summary.")
@handle_errors
def rethreshold(
    report_json: Path,
    data: Path | None,
    threshold: float | None,
    semantic_threshold: float | None,
    outdir: Path,
    force: bool,
    quiet: bool,
) -> None:
    """Re-cluster a saved scan at new thresholds without recomputing similarities.

    Raising a threshold is exact. Lowering one below the scanned threshold can only use the
    pairs the scan kept (LSH candidates scoring at most 0.1 below it); rescan for a complete
    answer.

    \b
    Example:
      dedup-audit scan data.json -o out/scan --threshold 0.7
      dedup-audit rethreshold out/scan/report.json --threshold 0.85 -o out/scan85
    """
    from dedup_audit.errors import ConfigError, OutputError
    from dedup_audit.saved_scan import load_scan
    from dedup_audit.scan_report import terminal_summary, write_scan_report

    if threshold is None and semantic_threshold is None:
        raise ConfigError("give --threshold and/or --semantic-threshold")
    targets = [outdir / "report.json", outdir / "report.md"]
    if any(t.resolve() == report_json.resolve() for t in targets):
        raise OutputError(f"{outdir}: --output must differ from the saved scan's folder")
    if not force and any(t.exists() for t in targets):
        raise OutputError(f"{outdir}: a report already exists there; pass --force to overwrite")
    saved = load_scan(report_json, data)
    if threshold is not None and threshold < saved.config.minhash.threshold and not quiet:
        click.echo(
            f"Note: {threshold} is below the scanned threshold {saved.config.minhash.threshold}; "
            "only pairs the scan kept (at most 0.1 below it) are seen; rescan for full recall.",
            err=True,
        )
    scanned_sem = saved.config.semantic.threshold
    if semantic_threshold is not None and semantic_threshold < scanned_sem and not quiet:
        floor = round(scanned_sem - 0.1, 6)
        click.echo(
            f"Note: {semantic_threshold} is below the scanned semantic threshold {scanned_sem}; "
            f"the scan kept neighbours down to {floor}"
            + (
                " only, so pairs below that are missing: rescan"
                if semantic_threshold < floor
                else ""
            )
            + ".",
            err=True,
        )
    result = saved.rethreshold(near=threshold, semantic=semantic_threshold)
    report = write_scan_report(result, outdir)
    if not quiet:
        click.echo(terminal_summary(report, result), nl=False)
    click.echo(
        f"Rethresholded: {len(saved.removed)} -> {len(result.removed)} redundant rows; "
        f"report in {outdir}"
    )
