"""`dedup-audit clean`: write a deduplicated copy and a record of every removal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from dedup_audit.commands.common import handle_errors, output_options, output_plan
from dedup_audit.commands.options import (
    echo_warnings,
    engine_config_from,
    input_options,
    input_paths,
    load_input,
    load_references,
    run_stages,
    scan_config_from,
    scan_options,
)


def default_output(data: Path) -> Path:
    """data.json -> data.clean.json (a folder: data -> data.clean)."""
    return data.with_name(f"{data.stem}.clean{data.suffix}")


@click.command()
@input_options
@scan_options
@output_options(help="Cleaned dataset, same format and file type (default: DATA.clean.EXT).")
@click.option(
    "--removed",
    "removed_path",
    type=click.Path(path_type=Path),
    help="Record of removals, JSONL (default: OUTPUT.removed.jsonl beside OUTPUT).",
)
@click.option(
    "--report-dir",
    type=click.Path(path_type=Path),
    help="Also write report.json, report.md and report.html here.",
)
@handle_errors
def clean(
    output: Path | None, removed_path: Path | None, report_dir: Path | None, force: bool, **kw: Any
) -> None:
    """Remove duplicates from DATA, keeping one record per cluster.

    Writes the kept records in DATA's own format, file type, field and key order, and a JSONL
    record of every removed sample: its id, why, the kept twin it matched, the cluster, view,
    method and similarity, and the original row. Conflicting samples (same prompt, different
    responses) are reported, not removed, unless --remove-conflicting. DATA is never modified.

    \b
    Examples:
      dedup-audit clean data.json -o data.clean.json
      dedup-audit clean data.jsonl --keep-by score:max --threshold 0.85
      dedup-audit clean train.json --against test.jsonl --against-column prompt=question
      dedup-audit clean data.jsonl --engine ray --ray-address ray://head:10001 -o data.clean.jsonl
    """
    from dedup_audit.cleaning import clean as run_clean
    from dedup_audit.cleaning import default_removed_path
    from dedup_audit.errors import ConfigError
    from dedup_audit.progress import run_progress
    from dedup_audit.reports.scan.report_json import REPORT_FILES, build_report, terminal_summary

    config = scan_config_from(kw)
    if output is None:
        if kw["data"] is None:
            raise ConfigError("with --dataset-info, give the cleaned file with -o/--output")
        output = default_output(kw["data"])
    # every output is checked before any work; cleaning.clean checks again against the files
    # actually read and commits all outputs together at the end
    plan = output_plan(input_paths(kw), force)
    from dedup_audit.readers.arrowio import is_hf_disk

    # a save_to_disk folder may be replaced by a cleaned one; any other folder is refused
    plan.file(output, "-o/--output", may_be_dir=is_hf_disk(output))
    plan.file(removed_path or default_removed_path(output), "--removed")
    if report_dir is not None:
        plan.folder(report_dir, "--report-dir", REPORT_FILES)
    plan.index_folder(kw["save_index"], "--save-index")
    with run_progress(run_stages(config), enabled=not kw["quiet"]):
        dataset = load_input(kw)
        result = run_clean(
            dataset,
            output,
            config,
            removed_path=removed_path,
            report_dir=report_dir,
            force=force,
            references=load_references(kw),
            progress=not kw["quiet"],
            engine=engine_config_from(kw),
            index=kw["index_dir"],
            save_index=kw["save_index"],
        )
    report = build_report(result.scan)
    echo_warnings(report)
    if not kw["quiet"]:
        click.echo(terminal_summary(report), nl=False)
    click.echo(
        f"Kept {result.kept} of {result.kept + result.removed} rows -> {result.output}; "
        f"removed {result.removed} -> {result.removed_path}"
        + (f"; report: {report_dir / 'report.html'}" if report_dir is not None else "")
    )
