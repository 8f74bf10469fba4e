"""Pick the format of a file from its rows, or check a forced one, and settle the column map.

Detection looks only at key names and the shape of the first message, so it is cheap and
predictable; anything it cannot decide is a FormatError that lists the keys it saw and the
flag that settles it (--format, --column ROLE=KEY).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from dedup_audit.errors import ConfigError, FormatError, InputError
from dedup_audit.formats.spec import (
    COLUMN_ROLES,
    FIX_HINT,
    FORMATS,
    MESSAGES_TAGS,
    SHAREGPT_TAGS,
    Spec,
    keys_text,
    maybe_json,
)

CONVERSATION_KEYS = ("conversations", "messages")
RESPONSE_KEYS = ("output", "response")  # GPTeacher and others say "response"
REQUIRED_ROLES: dict[str, tuple[str, ...]] = {
    "alpaca": ("prompt", "response"),
    "sharegpt": ("messages",),
    "messages": ("messages",),
    "text": ("prompt",),
}
_SUGGEST = (
    ("question", "answer"),
    ("prompt", "completion"),
    ("prompt", "response"),
    ("input", "output"),
    ("query", "response"),
    ("instruction", "response"),
)


def key_union(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """Every key seen, in first-seen order (rows of a JSON list need not share keys)."""
    seen: dict[str, None] = {}
    for row in rows:
        for k in row:
            seen.setdefault(k, None)
    return list(seen)


def message_style(rows: Sequence[Mapping[str, Any]], key: str) -> str:
    """'sharegpt' (from/value) or 'messages' (role/content), from the first message found."""
    for row in rows:
        value = maybe_json(row.get(key))
        if isinstance(value, Mapping):
            value = [value]
        if isinstance(value, list) and value and isinstance(value[0], Mapping):
            first = value[0]
            if "from" in first or "value" in first:
                return "sharegpt"
            if "role" in first or "content" in first:
                return "messages"
            raise FormatError(
                f"messages in {key!r} have keys {keys_text(first)}, neither from/value (sharegpt) nor "
                f"role/content (messages); set role_tag/content_tag in a dataset_info.json entry"
            )
    return "messages" if key == "messages" else "sharegpt"


def _fail(file: str, keys: Sequence[str], why: str, *, suggest: bool = True) -> FormatError:
    hint = FIX_HINT
    for prompt, response in _SUGGEST if suggest else ():
        if prompt in keys and response in keys:
            hint = f"--column prompt={prompt} --column response={response}"
            break
    return FormatError(f"{file}: {why}; keys found: {keys_text(keys)}; pass {hint}")


def _forced_mismatch(
    rows: Sequence[Mapping[str, Any]], file: str, keys: Sequence[str], why: str
) -> FormatError:
    """A forced --format the rows do not have: say which format they do look like (a --column
    hint would not help: the forced family still needs its own columns)."""
    try:
        actual = detect_spec(rows, file, "auto").format
    except FormatError:
        return _fail(file, keys, why)
    return FormatError(
        f"{file}: {why}; keys found: {keys_text(keys)}; these rows look like {actual} data: "
        f"drop --format (auto-detect) or pass --format {actual}"
    )


def _optional(keys: Sequence[str], *roles_keys: tuple[str, str]) -> dict[str, str]:
    return {role: key for role, key in roles_keys if key in keys}


def _alpaca_columns(keys: Sequence[str], file: str, *, need_response: bool) -> dict[str, str]:
    cols = {"prompt": "instruction"}
    cols.update(_optional(keys, ("query", "input")))
    if need_response:
        response = next((k for k in RESPONSE_KEYS if k in keys), None)
        if response is None:
            raise _fail(file, keys, "alpaca rows need an answer column ('output')")
        cols["response"] = response
    cols.update(_optional(keys, ("history", "history"), ("system", "system")))
    return cols


def _conv_spec(fmt: str, rows: Sequence[Mapping[str, Any]], keys: Sequence[str], key: str) -> Spec:
    style = message_style(rows, key)
    cols = {"messages": key, **_optional(keys, ("system", "system"), ("tools", "tools"))}
    tags = SHAREGPT_TAGS if style == "sharegpt" else MESSAGES_TAGS
    return Spec(fmt if fmt in ("sharegpt", "messages") else style, style, cols, dict(tags))


def _pairwise_spec(rows: Sequence[Mapping[str, Any]], keys: Sequence[str], file: str) -> Spec:
    pair = {"chosen": "chosen", "rejected": "rejected"}
    conv = [k for k in CONVERSATION_KEYS if k in keys]
    if conv:
        base = _conv_spec("pairwise", rows, keys, conv[0])
        return Spec("pairwise", base.base, {**base.columns, **pair}, base.tags)
    if "instruction" in keys:
        cols = _alpaca_columns(keys, file, need_response=False)
        return Spec("pairwise", "alpaca", {**cols, **pair})
    if "prompt" in keys:  # TRL: prompt is a string or a list of messages
        first = next((r["prompt"] for r in rows if r.get("prompt") is not None), "")
        if isinstance(maybe_json(first), list):
            style = message_style(rows, "prompt")
            tags = SHAREGPT_TAGS if style == "sharegpt" else MESSAGES_TAGS
            return Spec("pairwise", style, {"messages": "prompt", **pair}, dict(tags))
        return Spec(
            "pairwise",
            "alpaca",
            {"prompt": "prompt", **pair, **_optional(keys, ("system", "system"))},
        )
    style = message_style(rows, "chosen")  # TRL implicit prompt: whole conversations
    tags = SHAREGPT_TAGS if style == "sharegpt" else MESSAGES_TAGS
    return Spec("pairwise", style, pair, dict(tags))


def detect_spec(rows: Sequence[Mapping[str, Any]], file: str, fmt: str = "auto") -> Spec:
    """The Spec for rows without a column map: auto-detected, or the forced `fmt`."""
    keys = key_union(rows)
    conv = [k for k in CONVERSATION_KEYS if k in keys]
    paired = "chosen" in keys and "rejected" in keys
    if fmt == "auto":
        if len(conv) == 2:
            raise _fail(
                file,
                keys,
                "ambiguous format: rows have both 'conversations' and 'messages'",
                suggest=False,
            )
        if conv and "instruction" in keys:
            raise _fail(
                file,
                keys,
                f"ambiguous format: rows have both {conv[0]!r} and 'instruction'",
                suggest=False,
            )
        if paired:
            return _pairwise_spec(rows, keys, file)
        if conv:
            return _conv_spec("auto", rows, keys, conv[0])
        if "instruction" in keys:
            return Spec("alpaca", "alpaca", _alpaca_columns(keys, file, need_response=True))
        if "text" in keys:
            return Spec("text", "text", {"prompt": "text"})
        raise _fail(file, keys, "cannot tell the dataset format from the keys")
    if fmt == "pairwise":
        if not paired:
            raise _forced_mismatch(
                rows, file, keys, "--format pairwise needs 'chosen' and 'rejected' columns"
            )
        return _pairwise_spec(rows, keys, file)
    if fmt in ("sharegpt", "messages"):
        wanted = "conversations" if fmt == "sharegpt" else "messages"
        key = wanted if wanted in keys else (conv[0] if conv else "")
        if not key:
            raise _forced_mismatch(rows, file, keys, f"--format {fmt} needs a {wanted!r} column")
        return _conv_spec(fmt, rows, keys, key)
    if fmt == "alpaca":
        if "instruction" not in keys:
            raise _forced_mismatch(
                rows, file, keys, "--format alpaca needs an 'instruction' column"
            )
        return Spec("alpaca", "alpaca", _alpaca_columns(keys, file, need_response=True))
    if fmt == "text":
        if "text" not in keys:
            raise _forced_mismatch(rows, file, keys, "--format text needs a 'text' column")
        return Spec("text", "text", {"prompt": "text"})
    raise ConfigError(f"--format must be auto or one of {', '.join(FORMATS)}, got {fmt!r}")


def spec_from_columns(
    rows: Sequence[Mapping[str, Any]], file: str, fmt: str, columns: Mapping[str, str]
) -> Spec:
    """A Spec from an explicit column map (--column ROLE=KEY), as LLaMA-Factory's `columns`.

    The family follows the mapped roles (messages -> conversation, chosen+rejected -> pairwise,
    response -> alpaca, prompt alone -> text) unless --format forces it. Optional roles the map
    leaves out are filled from the usual key names when the rows have them, so
    `--column prompt=question --column response=answer` is all GSM8K needs.
    """
    bad = [r for r in columns if r not in COLUMN_ROLES]
    if bad:
        raise ConfigError(
            f"unknown column role(s) {bad} in --column; roles: {', '.join(COLUMN_ROLES)}"
        )
    keys = key_union(rows)
    cols = dict(columns)
    if fmt == "auto":
        if "chosen" in cols or "rejected" in cols:
            fmt = "pairwise"
        elif "messages" in cols:
            fmt = message_style(rows, cols["messages"])
        elif "response" in cols:
            fmt = "alpaca"
        elif "prompt" in cols:
            fmt = "text"
        else:
            raise _fail(file, keys, f"cannot tell the format from --column {cols}")
    if fmt not in FORMATS:
        raise ConfigError(f"--format must be auto or one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt == "pairwise":
        cols.setdefault("chosen", "chosen")
        cols.setdefault("rejected", "rejected")
        if "messages" in cols:
            style = message_style(rows, cols["messages"])
        elif "prompt" in cols or "instruction" in keys:
            style = "alpaca"
            cols.setdefault("prompt", "instruction")
        else:
            style = message_style(rows, cols["chosen"])
        tags = (
            {}
            if style == "alpaca"
            else dict(SHAREGPT_TAGS if style == "sharegpt" else MESSAGES_TAGS)
        )
        return Spec("pairwise", style, cols, tags)
    if fmt in ("sharegpt", "messages"):
        cols.setdefault("messages", "conversations" if fmt == "sharegpt" else "messages")
        style = message_style(rows, cols["messages"])
        for role in ("system", "tools"):
            if role not in cols and role in keys:
                cols[role] = role
        tags = SHAREGPT_TAGS if style == "sharegpt" else MESSAGES_TAGS
        return Spec(fmt, style, cols, dict(tags))
    if fmt == "text":
        cols.setdefault("prompt", "text")
        return Spec("text", "text", cols)
    cols.setdefault("prompt", "instruction")
    if "response" not in cols:
        cols["response"] = next((k for k in RESPONSE_KEYS if k in keys), "output")
    for role, key in (("query", "input"), ("history", "history"), ("system", "system")):
        if role not in cols and key in keys and key not in cols.values():
            cols[role] = key
    return Spec("alpaca", "alpaca", cols)


def check_columns(spec: Spec, keys: Sequence[str], file: str) -> None:
    """Every mapped key must exist in the file: a typo in --column or dataset_info.json should
    fail loudly with the keys that are there, not load empty text."""
    for role, key in spec.columns.items():
        if key not in keys:
            raise InputError(
                f"{file}: column {key!r} (role {role}) not found; keys found: {keys_text(keys)}; "
                f"map it with --column {role}=KEY (or fix 'columns' in dataset_info.json)"
            )
