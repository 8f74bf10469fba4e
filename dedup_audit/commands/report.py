"""`dedup-audit report`: the memorization report for a finished training run."""

from __future__ import annotations

from pathlib import Path

import click

from dedup_audit.commands.common import (
    data_option,
    handle_errors,
    heldout_option,
    output_options,
    output_plan,
)


@click.command()
@click.argument("run", type=click.Path(path_type=Path, exists=True))
@data_option("Training dataset; scanned for duplicate clusters (or give --scan).")
@click.option(
    "--losses",
    type=click.Path(path_type=Path, exists=True),
    default=None,
    help="Per-sample losses (JSONL/Parquet/CSV). Default: RUN/losses.jsonl if present.",
)
@click.option(
    "--scan",
    "scan_report",
    type=click.Path(path_type=Path, exists=True),
    default=None,
    help="A saved `dedup-audit scan` report.json (its clusters are reused, no rescan).",
)
@heldout_option("Held-out reference: a losses file of samples never trained on, or a list of keys.")
@click.option(
    "--training-args",
    type=click.Path(path_type=Path, exists=True),
    default=None,
    help="LLaMA-Factory YAML or training_args JSON. Default: RUN/training_args.yaml.",
)
@click.option(
    "--view",
    default="full",
    show_default=True,
    type=click.Choice(["full", "prompt", "response"]),
    help="Cluster view that defines duplicates.",
)
@output_options(
    dest="outdir",
    default=Path("dedup-audit-memorization"),
    help="Folder for report.json and report.html.",
    force_help="Overwrite an existing report in --output.",
    quiet_help="No terminal summary or progress bars.",
)
@handle_errors
def report(
    run: Path,
    data: Path | None,
    losses: Path | None,
    scan_report: Path | None,
    heldout: Path | None,
    training_args: Path | None,
    view: str,
    outdir: Path,
    force: bool,
    quiet: bool,
) -> None:
    """Explain the loss staircase of a training RUN (output_dir or trainer_log.jsonl).

    Detects the epoch-boundary staircase from the log, joins per-sample losses with the
    dataset's duplicate clusters, and gives a differential diagnosis (memorization, duplicates,
    lr schedule, checkpoint/eval events) with evidence, plus recommendations. Writes
    OUTPUT/report.json (versioned, the source of truth) and OUTPUT/report.html (self-contained).
    Missing inputs give a partial report that says what is missing.

    \b
    Examples:
      dedup-audit report saves/run                        # logs only: staircase + lr/events
      dedup-audit report saves/run --data data.json --losses losses.jsonl -o out/memo
      dedup-audit report saves/run/trainer_log.jsonl --scan out/scan/report.json \\
          --losses losses.jsonl --heldout heldout_losses.jsonl --training-args train.yaml
    """
    from dedup_audit.extras import require
    from dedup_audit.reports.memorization.report_json import (
        REPORT_FILES,
        build_report,
        write_report_files,
    )
    from dedup_audit.reports.memorization.summary import summary_text

    require("report", "the memorization report's plots")

    given = (data, losses, scan_report, heldout, training_args)
    plan = output_plan(given, force)
    plan.folder(outdir, "-o/--output", REPORT_FILES)  # before any work
    rep = build_report(
        run,
        data=data,
        losses=losses,
        scan=scan_report,
        heldout=heldout,
        training_args=training_args,
        view=view,
        progress=not quiet,
    )
    with plan:
        plan.stage_folder(outdir, lambda tmp: write_report_files(rep, tmp))
        plan.commit()
    paths = {"json": outdir / "report.json", "html": outdir / "report.html"}
    if not quiet:
        click.echo(summary_text(rep), nl=False)
        click.echo(f"Wrote {paths['json']} and {paths['html']}")
