"""`dedup-audit rethreshold`: new thresholds for a saved scan, from its saved scores."""

from __future__ import annotations

from pathlib import Path

import click

from dedup_audit.commands.common import data_option, handle_errors, output_options, output_plan


@click.command()
@click.argument("report_json", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@data_option("The scanned data (default: the path recorded in the report).")
@click.option("--threshold", type=float, help="New MinHash (Jaccard) threshold.")
@click.option("--semantic-threshold", type=float, help="New cosine threshold.")
@output_options(
    dest="outdir",
    required=True,
    help="Folder for the new report.json, report.md and report.html.",
    force_help="Overwrite an existing report in --output.",
    quiet_help="No summary.",
)
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
    from dedup_audit.commands.options import echo_warnings
    from dedup_audit.detect.minhash import SCORE_MARGIN, score_floor
    from dedup_audit.errors import ConfigError, OutputError
    from dedup_audit.reports.scan.report_json import REPORT_FILES, terminal_summary
    from dedup_audit.reports.scan.saved import load, save

    if threshold is None and semantic_threshold is None:
        raise ConfigError("give --threshold and/or --semantic-threshold")
    if outdir.resolve() == report_json.parent.resolve():
        raise OutputError(f"-o/--output {outdir}: must differ from the saved scan's folder")
    inputs = [report_json, *([data] if data is not None else [])]
    plan = output_plan(inputs, force)
    plan.folder(outdir, "-o/--output", REPORT_FILES)  # before any work
    saved = load(report_json, data)
    if threshold is not None and threshold < saved.config.minhash.threshold and not quiet:
        click.echo(
            f"Note: {threshold} is below the scanned threshold {saved.config.minhash.threshold}; "
            f"only pairs the scan kept (at most {SCORE_MARGIN} below it) are seen; rescan for "
            "full recall.",
            err=True,
        )
    scanned_sem = saved.config.semantic.threshold
    if semantic_threshold is not None and semantic_threshold < scanned_sem and not quiet:
        floor = round(score_floor(scanned_sem, -1.0), 6)
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
    reports: list[dict[str, object]] = []
    with plan:
        plan.stage_folder(outdir, lambda tmp: reports.append(save(result, tmp)))
        plan.commit()
    report = reports[0]
    echo_warnings(report)
    if not quiet:
        click.echo(terminal_summary(report, result), nl=False)
    click.echo(
        f"Rethresholded: rows clean removes {len(saved.removed)} -> {len(result.removed)}; "
        f"report in {outdir}"
    )
