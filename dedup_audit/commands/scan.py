"""`dedup-audit scan`: report duplication without changing anything."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from dedup_audit.cli import handle_errors
from dedup_audit.commands.options import (
    engine_config_from,
    input_options,
    load_input,
    load_references,
    scan_config_from,
    scan_options,
)


@click.command()
@input_options
@scan_options
@click.option(
    "-o",
    "--output",
    "outdir",
    type=click.Path(path_type=Path),
    default=Path("dedup-audit-scan"),
    show_default=True,
    help="Folder for report.json and report.md.",
)
@click.option("--force", is_flag=True, help="Overwrite an existing report in --output.")
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
    OUTPUT/report.json and OUTPUT/report.md. DATA is never modified.

    \b
    Examples:
      dedup-audit scan data.json -o out/scan
      dedup-audit scan --dataset-info data/dataset_info.json --dataset alpaca_en_demo
      dedup-audit scan train.json --semantic --against test.jsonl --against-column prompt=question
      dedup-audit scan corpus.jsonl --save-index idx/ && dedup-audit scan new.jsonl --index idx/
    """
    from dedup_audit.errors import OutputError
    from dedup_audit.pipeline import scan as run_scan
    from dedup_audit.scan_report import terminal_summary, write_scan_report

    config = scan_config_from(kw)
    targets = [outdir / "report.json", outdir / "report.md"]
    if not force and any(t.exists() for t in targets):
        raise OutputError(f"{outdir}: a report already exists there; pass --force to overwrite")
    dataset = load_input(kw)
    if any(Path(p).resolve() == outdir.resolve() for p in dataset.paths):
        raise OutputError(f"{outdir}: --output must not be the input")
    result = run_scan(
        dataset,
        config,
        references=load_references(kw),
        progress=not kw["quiet"],
        engine=engine_config_from(kw),
        index=kw["index_dir"],
        save_index=kw["save_index"],
        force=force,
    )
    report = write_scan_report(result, outdir)
    if not kw["quiet"]:
        click.echo(terminal_summary(report, result), nl=False)
        click.echo(f"Report: {targets[0]} and {targets[1]}")
    if fail_over is not None and result.duplicate_ratio > fail_over:
        click.echo(
            f"Duplicate ratio {result.duplicate_ratio:.4f} exceeds --fail-over {fail_over}",
            err=True,
        )
        raise SystemExit(1)
