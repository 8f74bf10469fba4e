"""Errors the library raises. The CLI turns each into a one-line message and a non-zero exit.

Every message names the file (and row/line where there is one) and the fix, so a user can act
on it without reading a traceback.
"""

from __future__ import annotations


class DedupAuditError(Exception):
    """Base class: anything the user can fix by changing input or options."""

    exit_code = 2


class InputError(DedupAuditError):
    """The input file cannot be read or parsed (malformed JSON, bad encoding, wrong columns)."""


class FormatError(InputError):
    """The dataset format is unknown, ambiguous, or does not match the rows."""


class ConfigError(DedupAuditError):
    """An option is out of range or options contradict each other."""


class OutputError(DedupAuditError):
    """An output path is unsafe: it equals an input, or exists without --force."""


class MissingDependencyError(DedupAuditError):
    """An optional heavy dependency (model package, faiss-gpu, peft, ...) is not installed."""
