"""LLaMA-Factory `dataset_info.json` resolution (`--dataset-info PATH --dataset NAME`).

Follows LLaMA-Factory 0.9.x (src/llamafactory/data/parser.py, loader.py, converter.py):
- an entry with `hf_hub_url` / `ms_hub_url` / `om_hub_url` / `script_url` / `cloud_file_name`
  is loaded from elsewhere by LLaMA-Factory (hub URLs win over `file_name`); we read local files
  only, so that is an error that says so;
- `file_name` is relative to the folder of dataset_info.json and may be a folder, whose files
  (all of one type) are read in name order;
- `formatting` defaults to alpaca, `ranking` to false;
- without `columns`, alpaca uses instruction/input/output and sharegpt uses conversations; with
  `columns`, every role the entry does not list is unused (LLaMA-Factory sets it to None), so
  `{"prompt": "text"}` is pretraining text and history/system need to be listed to count;
- `tags` apply to sharegpt only; a tag the entry leaves out is unused, as in LLaMA-Factory.
`num_samples`, `split`, `subset` and `folder` are recorded but not applied: the audit covers
every row of the file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dedup_audit.errors import InputError
from dedup_audit.formats.spec import MESSAGES_TAGS, SHAREGPT_TAGS, TAG_NAMES, Spec
from dedup_audit.readers.common import SUFFIX_TYPES, read_text

REMOTE_KEYS = ("hf_hub_url", "ms_hub_url", "om_hub_url", "script_url", "cloud_file_name")
_COMMON_COLUMNS = ("system", "tools", "chosen", "rejected")
_ALPACA_COLUMNS = ("prompt", "query", "response", "history")


@dataclass(frozen=True)
class InfoEntry:
    """One resolved dataset_info.json entry: where its file(s) are and how rows map."""

    name: str
    path: Path  # the file or folder file_name points at
    spec: Spec
    defaults: bool  # True when the entry had no `columns` (LLaMA-Factory's default columns)
    entry: dict[str, Any]


def _load_info(info_path: Path) -> dict[str, Any]:
    text, _ = read_text(info_path)
    try:
        info = json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(
            f"{info_path}: malformed JSON at line {err.lineno}, column {err.colno}: {err.msg}"
        ) from None
    if not isinstance(info, dict):
        raise InputError(f"{info_path}: expected an object of dataset entries")
    return info


def spec_of_entry(entry: dict[str, Any], name: str, info_path: Path) -> tuple[Spec, bool]:
    """The Spec LLaMA-Factory would use for this entry, and whether its columns are defaults."""
    formatting = entry.get("formatting", "alpaca")
    ranking = bool(entry.get("ranking", False))
    if formatting not in ("alpaca", "sharegpt", "openai"):
        raise InputError(
            f"{info_path}: dataset {name!r} has formatting {formatting!r}; expected alpaca, "
            f"sharegpt or openai"
        )
    conv = formatting != "alpaca"
    raw_cols = entry.get("columns")
    defaults = raw_cols is None
    if defaults:
        cols = (
            {"messages": "conversations"}
            if conv
            else {"prompt": "instruction", "query": "input", "response": "output"}
        )
    else:
        if not isinstance(raw_cols, dict):
            raise InputError(f"{info_path}: dataset {name!r}: 'columns' must be an object")
        roles = _COMMON_COLUMNS + (("messages",) if conv else _ALPACA_COLUMNS)
        cols = {r: raw_cols[r] for r in roles if raw_cols.get(r)}
    tags: dict[str, str] = {}
    base = "alpaca"
    if conv:
        start = MESSAGES_TAGS if formatting == "openai" else SHAREGPT_TAGS
        raw_tags = entry.get("tags")
        if isinstance(raw_tags, dict):
            tags = {t: raw_tags[t] for t in TAG_NAMES if raw_tags.get(t)}
            for t in ("role_tag", "content_tag"):
                tags.setdefault(t, start[t])
        else:
            tags = dict(start)
        base = "messages" if tags["role_tag"] == "role" else "sharegpt"
        if "messages" not in cols:
            raise InputError(f"{info_path}: dataset {name!r} has no 'messages' column")
    if ranking:
        if not (cols.get("chosen") and cols.get("rejected")):
            raise InputError(
                f"{info_path}: dataset {name!r} has ranking: true but no chosen/rejected columns"
            )
        return Spec("pairwise", base, cols, tags), defaults
    if conv:
        return Spec(base, base, cols, tags), defaults
    if not cols.get("response"):  # pretraining / unsupervised text: the prompt is the document
        if not cols.get("prompt"):
            raise InputError(f"{info_path}: dataset {name!r} maps neither prompt nor response")
        return Spec(
            "text", "text", {r: cols[r] for r in ("prompt", "query") if r in cols}
        ), defaults
    return Spec("alpaca", "alpaca", cols), defaults


def resolve(info_path: str | Path, name: str | None) -> InfoEntry:
    """Find `name` in dataset_info.json and resolve it the way LLaMA-Factory does."""
    info_path = Path(info_path)
    if info_path.is_dir():
        info_path = info_path / "dataset_info.json"
    if not info_path.is_file():
        raise InputError(f"{info_path}: dataset_info.json not found")
    info = _load_info(info_path)
    if not name:
        raise InputError(f"{info_path}: pass --dataset NAME; available: {', '.join(sorted(info))}")
    if name not in info:
        local = sorted(k for k, v in info.items() if isinstance(v, dict) and "file_name" in v)
        raise InputError(
            f"{info_path}: no dataset named {name!r}; local datasets available: "
            f"{', '.join(local) or '(none)'}"
        )
    entry = info[name]
    if not isinstance(entry, dict):
        raise InputError(f"{info_path}: dataset {name!r} is not an object")
    remote = [k for k in REMOTE_KEYS if k in entry]
    if remote:
        raise InputError(
            f"{info_path}: dataset {name!r} is loaded from {remote[0]}={entry[remote[0]]!r} by "
            f"LLaMA-Factory; dedup-audit reads local files only: download it and add an entry "
            f"with file_name"
        )
    if "file_name" not in entry:
        raise InputError(f"{info_path}: dataset {name!r} has no file_name")
    path = info_path.parent / str(entry["file_name"])
    if not path.exists():
        raise InputError(f"{info_path}: dataset {name!r}: file {path} not found")
    if path.is_file() and path.suffix.lower() not in SUFFIX_TYPES:
        raise InputError(
            f"{path}: unsupported file type; allowed: {', '.join(sorted(set(SUFFIX_TYPES)))}"
        )
    spec, defaults = spec_of_entry(entry, name, info_path)
    return InfoEntry(name, path, spec, defaults, entry)
