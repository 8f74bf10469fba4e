"""Pairwise preference rows (DPO / reward modelling): a prompt plus `chosen` and `rejected`.

The prompt part is alpaca (LLaMA-Factory `ranking: true` with chosen/rejected strings, also
TRL's {prompt, chosen, rejected}) or sharegpt/messages (chosen/rejected are single messages,
as in dpo_en_demo.json). TRL's implicit-prompt rows, where chosen/rejected are whole
conversations, are read too: the prompt is the conversation minus its last message.
The chosen answer becomes the final assistant turn, so views dedup on prompt + chosen;
the rejected answer is kept aside on Sample.rejected.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dedup_audit.errors import InputError
from dedup_audit.formats import alpaca, sharegpt
from dedup_audit.formats.spec import (
    MESSAGES_TAGS,
    SHAREGPT_TAGS,
    Spec,
    get_field,
    maybe_json,
    require_some_text,
    type_name,
)
from dedup_audit.records import Sample, Turn


def _message_like(value: Any) -> bool:
    """A message ({role|from: ...}) or a list of them: what a JSON-encoded CSV cell of
    chosen/rejected holds, as opposed to an answer that is itself JSON text."""
    items = value if isinstance(value, list) and value else [value]
    return all(isinstance(m, Mapping) and ("role" in m or "from" in m) for m in items)


def _answer(row: Mapping[str, Any], key: str, spec: Spec, where: str) -> tuple[list[Turn], str]:
    """(conversation before the answer, answer text) from a chosen/rejected field."""
    raw = get_field(row, key, where, required=True)
    value = maybe_json(raw)
    if isinstance(value, str) or (isinstance(raw, str) and not _message_like(value)):
        return [], raw  # a plain answer, even one that happens to be JSON text
    tags: Mapping[str, str] = spec.tags
    if not tags:  # alpaca-based rows whose answers are messages: read the message's own keys
        first = value[0] if isinstance(value, list) and value else value
        tags = SHAREGPT_TAGS if isinstance(first, Mapping) and "from" in first else MESSAGES_TAGS
    openai = tags["role_tag"] == "role"
    roles = sharegpt.role_map(tags, openai)
    if isinstance(value, Mapping):
        return [], sharegpt.message_text(value, tags, f"{where}: {key}", openai)
    if isinstance(value, list) and value:
        turns = [
            sharegpt.to_message(m, tags, roles, f"{where}: {key}[{i}]", openai)
            for i, m in enumerate(value)
        ]
        return turns[:-1], turns[-1].text
    raise InputError(
        f"{where}: field {key!r} is {type_name(value)}, expected a string, a message or a list of messages"
    )


def to_sample(row: Mapping[str, Any], spec: Spec, where: str) -> Sample:
    cols = spec.columns
    system = tools = ""
    if spec.base == "alpaca":
        turns, system, tools = alpaca.prompt_turns(row, spec, where)
    elif cols.get("messages"):
        turns, system, tools = sharegpt.conversation(
            row, spec, where, openai=spec.base == "messages"
        )
    else:
        turns = []
    before, chosen = _answer(row, cols["chosen"], spec, where)
    _, rejected = _answer(row, cols["rejected"], spec, where)
    if not turns and before:  # implicit prompt: chosen holds the whole conversation
        if before[0].role == "system":
            system, before = before[0].text, before[1:]
        turns = before
    turns = [*turns, Turn("assistant", chosen)]
    require_some_text([t.text for t in turns], where, list(cols.values()))
    return Sample(turns=tuple(turns), system=system, tools=tools, rejected=rejected)
