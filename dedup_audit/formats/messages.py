"""OpenAI-style `messages` rows ({role, content}). This is LLaMA-Factory's sharegpt format with
role/content tags, plus the OpenAI niceties: standard role names (tool, function), content
parts, and assistant `tool_calls`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dedup_audit.formats import sharegpt
from dedup_audit.formats.spec import MESSAGES_TAGS, Spec
from dedup_audit.records import Sample

DEFAULT_COLUMNS: dict[str, str] = {"messages": "messages"}
DEFAULT_TAGS = MESSAGES_TAGS


def to_sample(row: Mapping[str, Any], spec: Spec, where: str) -> Sample:
    return sharegpt.to_sample(row, spec, where, openai=True)
