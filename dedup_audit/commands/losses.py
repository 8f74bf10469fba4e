"""`dedup-audit losses`: per-sample response losses of every checkpoint of a training run."""

from __future__ import annotations

from pathlib import Path

import click

from dedup_audit.commands.common import (
    data_option,
    dataset_info_options,
    handle_errors,
    heldout_option,
    output_options,
    output_plan,
)


@click.command()
@click.argument("run_dir", type=click.Path(path_type=Path, exists=True, file_okay=False))
@data_option("Dataset the run trained on (any format `scan` reads).")
@dataset_info_options("--data")
@heldout_option("Rows never trained on, scored as split 'heldout' (the memorization baseline).")
@click.option(
    "--base-model",
    type=click.Path(path_type=Path, exists=True),
    help="Also score the model before training (epoch 0); base of LoRA adapters.",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    default=None,
    help="The LLaMA-Factory YAML you trained with: template, cutoff_len, dataset + dataset_dir, "
    "finetuning_type, model_name_or_path (flags given here win).",
)
@click.option(
    "--template",
    default=None,
    help="LLaMA-Factory template (default, empty, alpaca, chatml, qwen, llama3), 'plain' "
    "or 'chat_template'. Default: --config's, else a YAML left in RUN_DIR.",
)
@click.option(
    "--guess-settings",
    is_flag=True,
    help="With no --config, --template or YAML in RUN_DIR: score anyway with the tokenizer's "
    "chat template and no truncation (every row records it).",
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda[:N].")
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="torch CPU threads. Default: half the cores, 1-8 (on 2 shared cores 1 thread was "
    "2.5-3.5x faster than torch's default).",
)
@click.option(
    "--no-run-check",
    is_flag=True,
    help="Score even when the data's row count does not fit the run's trainer_state.json.",
)
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True)
@click.option(
    "--max-length",
    type=click.IntRange(min=2),
    default=None,
    help="Truncate like LLaMA-Factory's cutoff_len (default: --config's cutoff_len, else 2048, "
    "LLaMA-Factory's default, once a template is known).",
)
@output_options(
    default=Path("losses.jsonl"),
    help="Loss rows (JSONL).",
    force_help="Overwrite --output if it exists.",
    quiet_help="No progress bar or summary.",
)
@handle_errors
def losses(
    run_dir: Path,
    data: Path | None,
    dataset_info: Path | None,
    dataset_name: str | None,
    heldout: Path | None,
    base_model: Path | None,
    config_path: Path | None,
    template: str | None,
    guess_settings: bool,
    device: str,
    threads: int | None,
    no_run_check: bool,
    batch_size: int,
    max_length: int | None,
    output: Path,
    force: bool,
    quiet: bool,
) -> None:
    """Score per-sample losses of every checkpoint-* in RUN_DIR (and the base model).

    For each checkpoint (full weights, or a LoRA adapter via peft) the mean cross-entropy over
    each sample's response tokens is computed with the prompt masked and truncated as in SFT.
    The template and cutoff_len must be the run's: give --config train.yaml (llamafactory-cli
    leaves no YAML in output_dir), or --template and --max-length. Every checkpoint is checked
    for weights and the data's row count against the run's trainer_state.json before scoring.
    One JSONL row per sample and checkpoint: key (record id), epoch, step, checkpoint, loss,
    n_tokens, split (train/heldout), content_key, scored_with. Feed it to `dedup-audit report
    --losses`.

    \b
    Examples:
      dedup-audit losses saves/run --config train.yaml --heldout data/heldout.json \\
          --base-model models/base -o out/losses.jsonl
      dedup-audit losses saves/run --data data/train.json --template qwen --max-length 1024
      dedup-audit losses saves/lora --dataset-info data/dataset_info.json --dataset my_sft \\
          --config train.yaml --device cuda --batch-size 32 -o out/losses.jsonl
    """
    from dedup_audit.errors import ConfigError
    from dedup_audit.extras import require

    require("train", "scoring per-sample losses")
    from dedup_audit.training.run_config import read_run_config
    from dedup_audit.training.scorer import quiet_transformers, score_run, write_loss_rows
    from dedup_audit.training.sft_encoding import TEMPLATES

    known = (*TEMPLATES, "plain", "chat_template")
    if template is not None and template not in known:
        raise ConfigError(
            f"--template {template!r} is not a template dedup-audit reproduces; known: "
            f"{', '.join(known)}. For another LLaMA-Factory template pass --template "
            "chat_template (the saved tokenizer carries the run's template)"
        )
    config = read_run_config(config_path) if config_path is not None else None
    if data is None and not (dataset_info and dataset_name) and not (config and config.datasets):
        raise ConfigError(
            "pass --data FILE, --dataset-info FILE with --dataset NAME, or --config train.yaml "
            "(its dataset and dataset_dir)"
        )
    # the output is checked before any model is loaded (the run folder may hold it: the
    # report looks for RUN/losses.jsonl); it is written to a temporary name and renamed last
    inputs = [p for p in (data, heldout, dataset_info, config_path) if p is not None]
    plan = output_plan(inputs, force)
    plan.file(output, "-o/--output")
    if quiet:
        quiet_transformers()
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
        config=config,
        guess_settings=guess_settings,
        threads=threads,
        run_check=not no_run_check,
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
