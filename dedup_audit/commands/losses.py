"""`dedup-audit losses`: per-sample response losses of every checkpoint of a training run."""

from __future__ import annotations

from pathlib import Path

import click

from dedup_audit.cli import handle_errors


@click.command()
@click.argument("run_dir", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option(
    "--data",
    type=click.Path(path_type=Path, exists=True),
    help="Dataset the run trained on (any format `scan` reads).",
)
@click.option(
    "--dataset-info",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="LLaMA-Factory dataset_info.json; use with --dataset NAME instead of --data.",
)
@click.option("--dataset", "dataset_name", help="Entry of --dataset-info to score.")
@click.option(
    "--heldout",
    type=click.Path(path_type=Path, exists=True),
    help="Rows never trained on, scored as split 'heldout' (the memorization baseline).",
)
@click.option(
    "--base-model",
    type=click.Path(path_type=Path, exists=True),
    help="Also score the model before training (epoch 0); base of LoRA adapters.",
)
@click.option(
    "--template",
    default=None,
    help="LLaMA-Factory template (default, empty, alpaca, chatml, qwen, llama3), 'plain' "
    "or 'chat_template'. Default: `template` from the run's YAML, else the "
    "tokenizer's chat template, else plain.",
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda[:N].")
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True)
@click.option(
    "--max-length",
    type=click.IntRange(min=2),
    default=None,
    help="Truncate like LLaMA-Factory's cutoff_len (default: the run's cutoff_len).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=Path("losses.jsonl"),
    show_default=True,
    help="Loss rows (JSONL).",
)
@click.option("--force", is_flag=True, help="Overwrite --output if it exists.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary.")
@handle_errors
def losses(
    run_dir: Path,
    data: Path | None,
    dataset_info: Path | None,
    dataset_name: str | None,
    heldout: Path | None,
    base_model: Path | None,
    template: str | None,
    device: str,
    batch_size: int,
    max_length: int | None,
    output: Path,
    force: bool,
    quiet: bool,
) -> None:
    """Score per-sample losses of every checkpoint-* in RUN_DIR (and the base model).

    For each checkpoint (full weights, or a LoRA adapter via peft) the mean cross-entropy over
    each sample's response tokens is computed with the prompt masked and truncated as in SFT.
    One JSONL row per sample and checkpoint: key (record id), epoch, step, checkpoint, loss,
    n_tokens, split (train/heldout), content_key. Feed it to `dedup-audit report --losses`.

    \b
    Examples:
      dedup-audit losses saves/run --data data/train.json --heldout data/heldout.json \\
          --base-model models/base -o out/losses.jsonl
      dedup-audit losses saves/lora --dataset-info data/dataset_info.json --dataset my_sft \\
          --device cuda --batch-size 32 -o out/losses.jsonl
    """
    from dedup_audit.errors import ConfigError
    from dedup_audit.memorization.scorer import score_run, write_loss_rows
    from dedup_audit.writers import OutputPlan

    if data is None and not (dataset_info and dataset_name):
        raise ConfigError("pass --data FILE, or --dataset-info FILE with --dataset NAME")
    # the output is checked before any model is loaded (the run folder may hold it: the
    # report looks for RUN/losses.jsonl); it is written to a temporary name and renamed last
    plan = OutputPlan([p for p in (data, heldout, dataset_info) if p is not None], force)
    plan.file(output, "-o/--output")
    rows = score_run(
        run_dir,
        data,
        heldout=heldout,
        base_model=base_model,
        dataset_info=dataset_info,
        dataset_name=dataset_name,
        device=device,
        batch_size=batch_size,
        max_length=max_length,
        template=template,
        progress=not quiet,
    )
    with plan:
        tmp = plan.stage_path(output)
        write_loss_rows(rows, tmp, force=True)
        plan.commit()
    if not quiet:
        click.echo(summary(rows, output), nl=False)


def summary(rows: list[dict[str, object]], output: Path) -> str:
    """Mean loss per checkpoint and split: the first look at whether training memorized."""
    table: dict[tuple[str, str], list[float]] = {}
    order: list[str] = []
    for r in rows:
        ck = str(r["checkpoint"])
        if ck not in order:
            order.append(ck)
        loss = r["loss"]
        if isinstance(loss, float) and loss == loss:
            table.setdefault((ck, str(r["split"])), []).append(loss)
    order.sort(
        key=lambda c: -1 if c == "base" else int(c.rsplit("-", 1)[-1]) if c[-1:].isdigit() else 0
    )
    splits = sorted({s for _, s in table})
    lines = [
        f"wrote {len(rows)} loss rows to {output}",
        "checkpoint".ljust(22) + "".join(f"{s + ' mean':>14}" for s in splits),
    ]
    for ck in order:
        cells = []
        for s in splits:
            v = table.get((ck, s))
            cells.append(f"{sum(v) / len(v):>14.4f}" if v else f"{'-':>14}")
        lines.append(ck.ljust(22) + "".join(cells))
    return "\n".join(lines) + "\n"
