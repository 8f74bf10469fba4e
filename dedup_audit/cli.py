"""The `dedup-audit` command line: a thin click layer over the library.

Options become a config, the library does the work, and any DedupAuditError becomes a one-line
message on stderr with a non-zero exit code (no traceback for problems the user can fix).
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

import click

from dedup_audit import __version__
from dedup_audit.errors import DedupAuditError

F = TypeVar("F", bound=Callable[..., Any])


def _os_message(exc: OSError) -> str:
    """An OSError as one line: the file, what the system said, and what to do."""
    name = exc.filename or ""
    reason = exc.strerror or str(exc)
    hint = {
        13: "choose a path you may write to",
        17: "pass --force or choose another path",
        20: "a file stands where a folder is needed; choose another path",
        21: "give a file path, not a folder",
        28: "free some disk space or write elsewhere",
        30: "the file system is read-only; write elsewhere",
    }.get(exc.errno or 0, "check the path and try again")
    return f"{name}: {reason}; {hint}" if name else f"{reason}; {hint}"


def handle_errors(func: F) -> F:
    """The one place errors become messages: a DedupAuditError or OSError is one line on
    stderr and exit code 2 (the user can fix it); Ctrl-C is exit 130; anything else is a bug,
    reported in one line with exit code 1 (set DEDUP_AUDIT_TRACEBACK=1 to see the traceback)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except DedupAuditError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except OSError as exc:
            if os.environ.get("DEDUP_AUDIT_TRACEBACK"):
                raise
            click.echo(f"Error: {_os_message(exc)}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("Interrupted; no output was written.", err=True)
            sys.exit(130)
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except Exception as exc:
            if os.environ.get("DEDUP_AUDIT_TRACEBACK"):
                raise
            click.echo(
                f"Internal error: {type(exc).__name__}: {exc}. This is a bug in dedup-audit; "
                "rerun with DEDUP_AUDIT_TRACEBACK=1 and report the traceback.",
                err=True,
            )
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


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
