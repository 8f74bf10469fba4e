"""The column/tag mapping that turns one on-disk row into a Sample, shared by every format.

It mirrors LLaMA-Factory's `DatasetAttr`: a format family plus the row keys that play each role
(prompt, query, response, history, messages, system, tools, chosen, rejected) and, for
conversation formats, the role/content tags. One Spec serves auto-detection, `--column` and
`dataset_info.json` alike, so all three load a file the same way.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dedup_audit.errors import InputError

FORMATS: tuple[str, ...] = ("alpaca", "sharegpt", "messages", "text", "pairwise")
COLUMN_ROLES: tuple[str, ...] = (
    "prompt",
    "query",
    "response",
    "history",
    "messages",
    "system",
    "tools",
    "chosen",
    "rejected",
)
TAG_NAMES: tuple[str, ...] = (
    "role_tag",
    "content_tag",
    "user_tag",
    "assistant_tag",
    "observation_tag",
    "function_tag",
    "system_tag",
)

SHAREGPT_TAGS: dict[str, str] = {
    "role_tag": "from",
    "content_tag": "value",
    "user_tag": "human",
    "assistant_tag": "gpt",
    "observation_tag": "observation",
    "function_tag": "function_call",
    "system_tag": "system",
}
"""LLaMA-Factory's default sharegpt tags (parser.py DatasetAttr defaults)."""

MESSAGES_TAGS: dict[str, str] = {
    **SHAREGPT_TAGS,
    "role_tag": "role",
    "content_tag": "content",
    "user_tag": "user",
    "assistant_tag": "assistant",
}
"""OpenAI-style messages: LLaMA-Factory's sharegpt with role/content tags (as in mllm_demo)."""

FIX_HINT = "--format alpaca|sharegpt|messages|text|pairwise, or map keys with --column prompt=KEY --column response=KEY"


@dataclass(frozen=True)
class Spec:
    """How rows of one dataset map to Samples.

    `format` is the family reported on the Dataset; `base` is the layout of the prompt part
    (alpaca, sharegpt, messages or text), which differs from `format` only for pairwise data.
    `columns` holds only the roles in use (role -> row key); `tags` only for sharegpt/messages.
    """

    format: str
    base: str
    columns: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)


def keys_text(keys: Iterable[Any]) -> str:
    """The keys of a row (or a list of keys), for error messages: sorted so the message is stable."""
    return "[" + ", ".join(repr(k) for k in sorted(str(k) for k in keys)) + "]"


def type_name(value: object) -> str:
    """A user-facing name of a JSON-ish type ('a list', 'a number', ...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return f"a {type(value).__name__}"


def get_field(row: Mapping[str, Any], key: str, where: str, *, required: bool) -> Any:
    """row[key]; a missing required key is an error naming the keys that are there."""
    if key in row:
        return row[key]
    if required:
        raise InputError(
            f"{where}: missing field {key!r}; keys found: {keys_text(row)}; "
            f"map the right key with --column ROLE=KEY or pick another --format"
        )
    return None


def text_field(
    row: Mapping[str, Any], key: str, where: str, *, required: bool, allow_null: bool = False
) -> str:
    """A string field. None is "" when the field is optional (or allow_null); anything that is
    not a string is an error, because silently str()-ing a list would hash garbage."""
    value = get_field(row, key, where, required=required)
    if value is None:
        if required and not allow_null:
            raise InputError(
                f"{where}: field {key!r} is null, expected a string; fill it or drop the row"
            )
        return ""
    if not isinstance(value, str):
        raise InputError(
            f"{where}: field {key!r} is {type_name(value)}, expected a string; "
            f"fix the row or map another key with --column"
        )
    return value


def maybe_json(value: Any) -> Any:
    """Nested columns (conversations, history, chosen) arrive as JSON strings from CSV files:
    decode them so a CSV export of sharegpt data loads like the JSON original."""
    if isinstance(value, str):
        stripped = value.lstrip()
        if stripped.startswith(("[", "{")):
            try:
                return json.loads(value)
            except json.JSONDecodeError:
                return value
    return value


def tools_text(value: Any, where: str, key: str) -> str:
    """Tool schemas are kept as text; lists/objects are serialized the way LLaMA-Factory's
    OpenAI converter does (json.dumps, ensure_ascii=False)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    raise InputError(
        f"{where}: field {key!r} is {type_name(value)}, expected a string or JSON list"
    )


def require_some_text(texts: list[str], where: str, fields: list[str]) -> None:
    """A row whose text fields are all empty carries nothing to deduplicate or train on."""
    if not any(t.strip() for t in texts):
        raise InputError(
            f"{where}: every text field is empty ({', '.join(fields)}); remove the row or map "
            f"the right keys with --column"
        )
