"""Alpaca rows: instruction / input / output, plus optional system and history.

Follows LLaMA-Factory's AlpacaDatasetConverter: the user turn is `instruction + "\\n" + input`
(each only when non-empty) and `history` ([[user, assistant], ...]) comes before it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dedup_audit.errors import InputError
from dedup_audit.formats.spec import (
    Spec,
    maybe_json,
    require_some_text,
    text_field,
    tools_text,
    type_name,
)
from dedup_audit.records import Sample, Turn

DEFAULT_COLUMNS: dict[str, str] = {"prompt": "instruction", "query": "input", "response": "output"}


def history_turns(row: Mapping[str, Any], key: str | None, where: str) -> list[Turn]:
    """[[user, assistant], ...] -> turns. None or a missing key means no history."""
    if not key or row.get(key) is None:
        return []
    value = maybe_json(row[key])
    if not isinstance(value, list):
        raise InputError(
            f"{where}: field {key!r} is {type_name(value)}, expected a list of [user, assistant] pairs"
        )
    turns: list[Turn] = []
    for i, pair in enumerate(value):
        if (
            not isinstance(pair, (list, tuple))
            or len(pair) != 2
            or not all(isinstance(t, str) for t in pair)
        ):
            raise InputError(
                f"{where}: field {key!r} item {i} is not a [user, assistant] pair of strings"
            )
        turns.append(Turn("user", pair[0]))
        turns.append(Turn("assistant", pair[1]))
    return turns


def prompt_turns(row: Mapping[str, Any], spec: Spec, where: str) -> tuple[list[Turn], str, str]:
    """History + current user turn, system and tools: the part shared with pairwise data."""
    cols = spec.columns
    turns = history_turns(row, cols.get("history"), where)
    parts = []
    if cols.get("prompt"):
        parts.append(text_field(row, cols["prompt"], where, required=True, allow_null=True))
    if cols.get("query"):
        parts.append(text_field(row, cols["query"], where, required=False))
    turns.append(Turn("user", "\n".join(p for p in parts if p)))
    system = text_field(row, cols["system"], where, required=False) if cols.get("system") else ""
    tools = tools_text(row.get(cols["tools"]), where, cols["tools"]) if cols.get("tools") else ""
    return turns, system, tools


def _plain_sample(row: Mapping[str, Any], cols: Mapping[str, str]) -> Sample | None:
    """The common row (string instruction/input/output, optional string system, no history
    or tools) without the per-field checks: loading is per-record Python, and at corpus scale
    this path is most of it. Anything else (a missing, null or non-string field, history,
    tools, an all-empty row) returns None and takes the checked path, which gives the same
    Sample or names the problem."""
    for extra in ("history", "tools"):
        key = cols.get(extra)
        if key and row.get(key) is not None:
            return None
    prompt_key, query_key, response_key = cols.get("prompt"), cols.get("query"), cols["response"]
    system_key = cols.get("system")
    prompt = row.get(prompt_key, "") if prompt_key else ""
    query = row.get(query_key, "") if query_key else ""
    response = row.get(response_key)
    system = row.get(system_key, "") if system_key else ""
    if not (
        type(prompt) is str
        and type(query) is str
        and type(response) is str
        and type(system) is str
        and (prompt_key is None or prompt_key in row)
    ):
        return None
    user = f"{prompt}\n{query}" if prompt and query else prompt or query
    if not (user.strip() or response.strip()):
        return None
    return Sample(turns=(Turn("user", user), Turn("assistant", response)), system=system)


def to_sample(row: Mapping[str, Any], spec: Spec, where: str) -> Sample:
    fast = _plain_sample(row, spec.columns)
    return fast if fast is not None else checked_sample(row, spec, where)


def checked_sample(row: Mapping[str, Any], spec: Spec, where: str) -> Sample:
    """The Sample of any alpaca row, every field checked (InputError names the problem)."""
    turns, system, tools = prompt_turns(row, spec, where)
    key = spec.columns["response"]
    response = text_field(row, key, where, required=True)
    turns.append(Turn("assistant", response))
    require_some_text(
        [t.text for t in turns],
        where,
        [spec.columns[r] for r in ("prompt", "query", "response") if r in spec.columns],
    )
    return Sample(turns=tuple(turns), system=system, tools=tools)
