"""The settings of a LLaMA-Factory run that decide which tokens it trained on, from its YAML.

Why: `llamafactory-cli train train.yaml` leaves no YAML in output_dir, yet the per-sample loss
is only comparable with the training loss when it is computed over the same tokens: the same
chat template, the same `cutoff_len` truncation and the same data. Without them a scorer falls
back on the tokenizer's chat template with no truncation, and on a real run 38% of rows changed
by up to 0.71 nats. This module reads the user's YAML (llamafactory itself is not needed):
`template`, `cutoff_len`, `dataset`, `dataset_dir`, `finetuning_type`, `adapter_name_or_path`,
`model_name_or_path`, the batch settings and `val_size` / `max_samples`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dedup_audit.errors import ConfigError, InputError


@dataclass(frozen=True)
class RunConfig:
    """What `dedup-audit losses` takes from a LLaMA-Factory training YAML."""

    path: str
    template: str | None = None
    cutoff_len: int | None = None
    datasets: tuple[str, ...] = ()
    dataset_dir: Path | None = None
    finetuning_type: str | None = None
    adapter_name_or_path: str | None = None
    model_name_or_path: str | None = None
    per_device_train_batch_size: int | None = None
    gradient_accumulation_steps: int | None = None
    val_size: float | None = None
    max_samples: int | None = None

    @property
    def dataset_info(self) -> Path | None:
        """dataset_info.json of `dataset_dir` (LLaMA-Factory's default dir is `data`)."""
        if not self.datasets:
            return None
        return (self.dataset_dir or Path("data")) / "dataset_info.json"

    def describe(self) -> str:
        return f"{self.path} (template {self.template}, cutoff_len {self.cutoff_len})"


def _int(data: dict[str, Any], name: str, path: Path) -> int | None:
    v = data.get(name)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float) or int(v) != v or v < 1:
        raise ConfigError(f"{path}: {name} must be a positive integer, got {v!r}")
    return int(v)


def read_run_config(path: str | Path) -> RunConfig:
    """Parse a LLaMA-Factory YAML (the one given to `llamafactory-cli train`).

    Relative `dataset_dir` is resolved against the current folder, as llamafactory-cli does
    (it runs from the folder it was started in), and, when it is not there, against the YAML's
    own folder."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: training config not found")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise InputError(f"{p}: not valid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise InputError(f"{p}: expected a mapping of LLaMA-Factory settings (key: value)")
    stage = data.get("stage")
    if stage not in (None, "sft", "pt"):
        raise ConfigError(
            f"{p}: stage {stage!r}; per-sample losses are defined for sft (and pt) runs only"
        )
    raw_ds = data.get("dataset")
    if isinstance(raw_ds, str):
        datasets = tuple(d.strip() for d in raw_ds.split(",") if d.strip())
    elif isinstance(raw_ds, list):
        datasets = tuple(str(d).strip() for d in raw_ds if str(d).strip())
    else:
        datasets = ()
    dataset_dir = None
    if data.get("dataset_dir"):
        d = Path(str(data["dataset_dir"]))
        if not d.is_absolute() and not d.is_dir() and (p.parent / d).is_dir():
            d = p.parent / d
        dataset_dir = d
    val = data.get("val_size")
    if val is not None and (isinstance(val, bool) or not isinstance(val, int | float) or val < 0):
        raise ConfigError(f"{p}: val_size must be a number >= 0, got {val!r}")
    template = data.get("template")
    return RunConfig(
        path=str(p),
        template=str(template) if template else None,
        cutoff_len=_int(data, "cutoff_len", p),
        datasets=datasets,
        dataset_dir=dataset_dir,
        finetuning_type=str(data["finetuning_type"]) if data.get("finetuning_type") else None,
        adapter_name_or_path=str(data["adapter_name_or_path"])
        if data.get("adapter_name_or_path")
        else None,
        model_name_or_path=str(data["model_name_or_path"])
        if data.get("model_name_or_path")
        else None,
        per_device_train_batch_size=_int(data, "per_device_train_batch_size", p),
        gradient_accumulation_steps=_int(data, "gradient_accumulation_steps", p),
        val_size=float(val) if val is not None else None,
        max_samples=_int(data, "max_samples", p),
    )
