"""The CLI layer every command shares: one error handler, the options that repeat across
commands, and one output check. `dedup_audit.cli` only lists the commands.

Options become a config, the library does the work, and any DedupAuditError becomes a one-line
message on stderr with a non-zero exit code (no traceback for problems the user can fix).
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from dedup_audit.errors import DedupAuditError

if TYPE_CHECKING:
    from dedup_audit.writers import OutputPlan

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

    wrapper.handles_errors = True  # type: ignore[attr-defined]  # checked by tests/test_cli.py
    return wrapper  # type: ignore[return-value]


def output_options(
    *,
    dest: str = "output",
    default: Path | None = None,
    required: bool = False,
    help: str,
    force_help: str = "Overwrite existing outputs.",
    quiet_help: str = "No progress bars, no summary.",
) -> Callable[[F], F]:
    """-o/--output, --force and -q/--quiet: the options every writing command repeats."""
    options = [
        click.option(
            "-o",
            "--output",
            dest,
            type=click.Path(path_type=Path),
            default=default,
            required=required,
            show_default=default is not None,
            help=help,
        ),
        click.option("--force", is_flag=True, help=force_help),
        click.option("-q", "--quiet", is_flag=True, help=quiet_help),
    ]

    def decorator(f: F) -> F:
        for option in reversed(options):
            f = option(f)
        return f

    return decorator


def dataset_info_options(what: str) -> Callable[[F], F]:
    """--dataset-info FILE --dataset NAME: a LLaMA-Factory dataset_info.json entry instead of
    a data path (`what` names the path it replaces, e.g. DATA or --data)."""
    options = [
        click.option(
            "--dataset-info",
            type=click.Path(path_type=Path, exists=True, dir_okay=False),
            help=f"LLaMA-Factory dataset_info.json; use with --dataset NAME instead of {what}.",
        ),
        click.option("--dataset", "dataset_name", help="Entry of --dataset-info to read."),
    ]

    def decorator(f: F) -> F:
        for option in reversed(options):
            f = option(f)
        return f

    return decorator


def data_option(help: str) -> Callable[[F], F]:
    """--data PATH: the dataset a command reads beside its main argument."""
    return click.option(
        "--data", type=click.Path(path_type=Path, exists=True), default=None, help=help
    )


def heldout_option(help: str) -> Callable[[F], F]:
    """--heldout PATH: samples never trained on, the memorization baseline."""
    return click.option(
        "--heldout", type=click.Path(path_type=Path, exists=True), default=None, help=help
    )


def output_plan(inputs: Iterable[Path | None], force: bool) -> OutputPlan:
    """The one output check of every command: each output is declared on this plan before any
    work (exists without --force, is an input, a file where a folder must be, not writable),
    and all are written to temporary names and renamed together at the end."""
    from dedup_audit.writers import OutputPlan

    return OutputPlan([Path(p) for p in inputs if p is not None], force)
