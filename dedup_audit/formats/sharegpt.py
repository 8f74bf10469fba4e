"""ShareGPT rows: a `conversations` list of {from, value} messages, plus optional system/tools.

Tags follow LLaMA-Factory (role_tag, content_tag, user_tag, assistant_tag, observation_tag,
function_tag, system_tag). A leading system message becomes Sample.system, like LLaMA-Factory's
SharegptDatasetConverter. Unlike LLaMA-Factory, a row with an unknown role is an error naming
the row rather than a silently skipped example: a dedup audit should not lose rows quietly.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from dedup_audit.errors import InputError
from dedup_audit.formats.spec import (
    SHAREGPT_TAGS,
    Spec,
    get_field,
    keys_text,
    maybe_json,
    require_some_text,
    text_field,
    tools_text,
    type_name,
)
from dedup_audit.records import Sample, Turn

DEFAULT_COLUMNS: dict[str, str] = {"messages": "conversations"}
DEFAULT_TAGS = SHAREGPT_TAGS

_ROLE_OF_TAG = {
    "user_tag": "user",
    "assistant_tag": "assistant",
    "observation_tag": "tool",
    "function_tag": "function",
    "system_tag": "system",
}
_OPENAI_ALIASES = {
    "user": "user",
    "assistant": "assistant",
    "system": "system",
    "tool": "tool",
    "function": "function",
}


def role_map(tags: Mapping[str, str], openai: bool) -> dict[str, str]:
    """On-disk role value -> Turn role. OpenAI-style data also accepts the standard role names."""
    mapping = {tags[t]: role for t, role in _ROLE_OF_TAG.items() if tags.get(t)}
    if openai:
        for name, role in _OPENAI_ALIASES.items():
            mapping.setdefault(name, role)
    return mapping


def message_text(
    message: Mapping[str, Any], tags: Mapping[str, str], where: str, openai: bool
) -> str:
    """The text of one message. OpenAI extras: content parts ([{type: text, text}]) are joined,
    and tool calls become a JSON list of their functions (as LLaMA-Factory's OpenAI converter)."""
    key = tags["content_tag"]
    if openai:
        content = message.get(key)
        calls = message.get("tool_calls")
        if isinstance(calls, list) and calls and not content:
            return json.dumps(
                [c.get("function", c) if isinstance(c, Mapping) else c for c in calls],
                ensure_ascii=False,
            )
        if content is None:
            return ""
        if isinstance(content, list):
            texts = [
                p.get("text", "")
                for p in content
                if isinstance(p, Mapping) and p.get("type", "text") == "text"
            ]
            if all(isinstance(t, str) for t in texts):
                return "\n".join(texts)
        if not isinstance(content, str):
            raise InputError(f"{where}: {key!r} is {type_name(content)}, expected a string")
        return content
    return text_field(message, key, where, required=True)


def to_message(
    item: Any, tags: Mapping[str, str], roles: Mapping[str, str], where: str, openai: bool
) -> Turn:
    """One {role, content} dict -> Turn, with errors that name the tags to set."""
    if not isinstance(item, Mapping):
        raise InputError(
            f"{where} is {type_name(item)}, expected an object with {tags['role_tag']!r}"
        )
    role_key = tags["role_tag"]
    if role_key not in item:
        raise InputError(
            f"{where} has no {role_key!r} key; keys found: {keys_text(item)}; set role_tag/content_tag "
            f"in dataset_info.json tags, or use --format messages (role/content) or sharegpt (from/value)"
        )
    value = item[role_key]
    if value not in roles:
        raise InputError(
            f"{where} has role {value!r}, expected one of {sorted(roles)}; set the role tags "
            f"(user_tag, assistant_tag, ...) in dataset_info.json"
        )
    text = message_text(item, tags, where, openai)
    if openai and item.get("tool_calls") and not item.get(tags["content_tag"]):
        return Turn("function", text)  # LLaMA-Factory: an assistant tool call is a function turn
    return Turn(roles[value], text)


def conversation(
    row: Mapping[str, Any], spec: Spec, where: str, *, openai: bool = False
) -> tuple[list[Turn], str, str]:
    """Turns (without a leading system message), system text and tools of one row."""
    cols, tags = spec.columns, spec.tags
    key = cols["messages"]
    value = maybe_json(get_field(row, key, where, required=True))
    if not isinstance(value, list):
        raise InputError(
            f"{where}: field {key!r} is {type_name(value)}, expected a list of messages"
        )
    roles = role_map(tags, openai)
    turns = [
        to_message(m, tags, roles, f"{where}: {key}[{i}]", openai) for i, m in enumerate(value)
    ]
    system = ""
    if turns and turns[0].role == "system":
        system = turns[0].text
        turns = turns[1:]
    elif cols.get("system"):
        system = text_field(row, cols["system"], where, required=False)
    tools = tools_text(row.get(cols["tools"]), where, cols["tools"]) if cols.get("tools") else ""
    return turns, system, tools


def to_sample(row: Mapping[str, Any], spec: Spec, where: str, *, openai: bool = False) -> Sample:
    turns, system, tools = conversation(row, spec, where, openai=openai)
    key = spec.columns["messages"]
    if not turns:
        raise InputError(f"{where}: field {key!r} has no messages; remove the row")
    require_some_text([t.text for t in turns], where, [key])
    return Sample(turns=tuple(turns), system=system, tools=tools)
