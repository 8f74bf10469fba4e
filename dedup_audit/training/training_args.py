"""The training arguments the report needs, read from a LLaMA-Factory YAML or HF's JSON.

The diagnosis and the recommendations quote settings (epochs, schedule, logging/save/eval
cadence); this module reads the file and keeps only those, so report.json stays small and stable.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dedup_audit.errors import InputError


def read_training_args(path: str | Path) -> dict[str, Any]:
    """A LLaMA-Factory YAML, a training_args.json, or HF's all-args JSON -> dict."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: training args file not found")
    text = p.read_text(encoding="utf-8")
    if p.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError as exc:  # pragma: no cover - pyyaml ships with datasets
            raise InputError(f"{p}: reading YAML needs pyyaml (pip install pyyaml)") from exc
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InputError(f"{p}: not valid YAML ({exc})") from exc
    else:
        import json

        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"{p}: not valid JSON ({exc.msg}); give a YAML or JSON file") from exc
    if not isinstance(data, dict):
        raise InputError(f"{p}: expected a mapping of training arguments")
    return data


ARG_KEYS = (
    "num_train_epochs",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "learning_rate",
    "lr_scheduler_type",
    "warmup_ratio",
    "warmup_steps",
    "logging_steps",
    "save_strategy",
    "save_steps",
    "eval_strategy",
    "evaluation_strategy",
    "eval_steps",
    "val_size",
    "max_steps",
    "overwrite_output_dir",
    "resume_from_checkpoint",
    "dataset",
    "finetuning_type",
)


def relevant_args(args: Mapping[str, Any] | None) -> dict[str, Any]:
    """The scalar ARG_KEYS settings the report quotes, in ARG_KEYS order."""
    if not args:
        return {}
    return {
        k: args[k] for k in ARG_KEYS if k in args and isinstance(args[k], (int, float, str, bool))
    }
