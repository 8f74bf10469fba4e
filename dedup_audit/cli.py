"""The `dedup-audit` command line: a thin click layer over the library.

Each command lives in `dedup_audit.commands` and is imported only when run; what the commands
share (the error handler, repeated options, the output check) is `dedup_audit.commands.common`.
"""

from __future__ import annotations

from typing import ClassVar

import click

from dedup_audit import __version__


class LazyGroup(click.Group):
    """Subcommands are imported only when used, so `dedup-audit --help` never imports torch."""

    lazy: ClassVar[dict[str, tuple[str, str, str]]] = {
        "scan": (
            "dedup_audit.commands.scan",
            "scan",
            "Find exact, near and semantic duplicates; write a report.",
        ),
        "clean": (
            "dedup_audit.commands.clean",
            "clean",
            "Write a deduplicated copy plus a record of every removal.",
        ),
        "rethreshold": (
            "dedup_audit.commands.rethreshold",
            "rethreshold",
            "Re-cluster a saved scan at new thresholds, no recompute.",
        ),
        "calibrate": (
            "dedup_audit.commands.calibrate",
            "calibrate",
            "Show the LSH S-curve and borderline pairs to choose thresholds.",
        ),
        "losses": (
            "dedup_audit.commands.losses",
            "losses",
            "Score per-sample losses of every checkpoint of a training run.",
        ),
        "report": (
            "dedup_audit.commands.report",
            "report",
            "Memorization report: the loss staircase explained (HTML + JSON).",
        ),
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.lazy)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.lazy:
            return None
        import importlib

        module, attr, _ = self.lazy[cmd_name]
        cmd: click.Command = getattr(importlib.import_module(module), attr)
        return cmd

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, help_) for name, (_, _, help_) in self.lazy.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dedup-audit")
def cli() -> None:
    """Audit LLM fine-tuning data for duplicates and explain memorization.

    \b
    The whole flow, before and after training:
      dedup-audit scan data.json -o out/scan           # what is duplicated, and how
      dedup-audit clean data.json -o data.clean.json   # remove it, with a record of every removal
      llamafactory-cli train config.yaml               # train with your own tool
      dedup-audit losses saves/run --data data.json -o out/losses.jsonl
      dedup-audit report saves/run --data data.json --losses out/losses.jsonl -o out/memo
    """


def main() -> None:
    cli(prog_name="dedup-audit")
