"""The CLI layer every command shares: one error handler, the options that repeat across
commands, and one output check. `dedup_audit.cli` only lists the commands.

Options become a config, the library does the work, and any DedupAuditError becomes a one-line
message on stderr with a non-zero exit code (no traceback for problems the user can fix).
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

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
