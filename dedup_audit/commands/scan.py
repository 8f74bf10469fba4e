"""`dedup-audit scan`: report duplication without changing anything."""

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


@click.command()
@input_options
@scan_options
@output_options(
    dest="outdir",
    default=Path("dedup-audit-scan"),
    help="Folder for report.json, report.md and report.html.",
    force_help="Overwrite an existing report in --output.",
)
@click.option(
    "--fail-over",
    type=float,
    default=None,
    metavar="RATIO",
    help="Exit with code 1 when the duplicate ratio exceeds RATIO (for CI gates).",
)
@handle_errors
def scan(outdir: Path, force: bool, fail_over: float | None, **kw: Any) -> None:
    """Find exact, near (MinHash-LSH) and semantic duplicates in DATA.

    Scans the full conversation, the prompt (system + user turns) and the response view,
    reports SFT cluster kinds (exact, near, semantic, conflicting, canned) and writes
    OUTPUT/report.json, OUTPUT/report.md and OUTPUT/report.html (open it in a browser).
    DATA is never modified.

    \b
    Examples:
      dedup-audit scan data.json -o out/scan
      dedup-audit scan --dataset-info data/dataset_info.json --dataset alpaca_en_demo
      dedup-audit scan train.json --semantic --against test.jsonl --against-column prompt=question
      dedup-audit scan corpus.jsonl --save-index idx/ && dedup-audit scan new.jsonl --index idx/
      dedup-audit scan s3://bucket/corpus.jsonl --engine ray --work-dir s3://bucket/work
    """
    from dedup_audit.pipeline import scan as run_scan
    from dedup_audit.progress import run_progress
    from dedup_audit.reports.scan.report_json import REPORT_FILES, terminal_summary
    from dedup_audit.reports.scan.saved import save

    config = scan_config_from(kw)
    plan = output_plan(input_paths(kw), force)
    plan.folder(outdir, "-o/--output", REPORT_FILES)  # before any work: a doomed write fails now
    plan.index_folder(kw["save_index"], "--save-index")
    with run_progress(run_stages(config), enabled=not kw["quiet"]):
        dataset = load_input(kw)
        plan = output_plan([Path(p) for p in dataset.paths], force)
        plan.folder(outdir, "-o/--output", REPORT_FILES)
        refs = load_references(kw)
        result = run_scan(
            dataset,
            config,
            references=refs,
            progress=not kw["quiet"],
            engine=engine_config_from(kw),
            index=kw["index_dir"],
            save_index=kw["save_index"],
            force=force,
        )
    reports: list[dict[str, Any]] = []
    with plan:
        plan.stage_folder(outdir, lambda tmp: reports.append(save(result, tmp)))
        plan.commit()
    echo_warnings(reports[0])
    if not kw["quiet"]:
        click.echo(terminal_summary(reports[0], result), nl=False)
        click.echo(f"Report: {outdir / 'report.html'} (also report.json, report.md)")
    if fail_over is not None and result.duplicate_ratio > fail_over:
        click.echo(
            f"Duplicate ratio {result.duplicate_ratio:.4f} exceeds --fail-over {fail_over}",
            err=True,
        )
        raise SystemExit(1)
