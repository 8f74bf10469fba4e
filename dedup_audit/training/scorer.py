"""Post-hoc per-sample losses: score every checkpoint of a run on the training data (and held-out
data), with the same prompt masking SFT used.

Why post hoc: a trainer log only has the batch-mean loss. To see *which* samples a run memorized,
each checkpoint (one per epoch with `save_strategy: epoch`) is re-run over the dataset and the mean
cross-entropy over response tokens is kept per sample. Samples seen more often (duplicates) should
show lower loss than held-out samples from the same distribution; the analysis measures that.

How SFT is reproduced (the loss must be over the same tokens the trainer trained on) is the job of
`memorization.sft_encoding` (LLaMA-Factory templates, the tokenizer's chat template, or the plain
template); this module loads the run's models and data and scores them.

Loss rows (shared schema with memorization.losses): one per (sample, checkpoint):
``{"key", "epoch", "step", "checkpoint", "loss", "n_tokens", "split", "content_key"}``; key is the
record id ("train.json:12"), content_key is ``records.sample_key(sample)``.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dedup_audit.errors import ConfigError, InputError, MissingDependencyError, OutputError
from dedup_audit.records import Record, sample_key
from dedup_audit.training.run_config import RunConfig
from dedup_audit.training.sft_encoding import (
    IGNORE_INDEX,
    LLAMAFACTORY_DEFAULT_CUTOFF,
    TEMPLATES,
    SftEncoder,
    make_encoder,
    read_run_template,
)

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase

LOSS_FIELDS = ("key", "epoch", "step", "checkpoint", "loss", "n_tokens", "split", "content_key")


# ------------------------------------------------------------------------------------------------
# Data
# ------------------------------------------------------------------------------------------------


def load_records(
    path: str | Path, *, dataset_info: str | Path | None = None, dataset_name: str | None = None
) -> list[Record]:
    """Records of a dataset through the project's loader, so ids ("train.json:12") and Samples
    (alpaca instruction + "\\n" + input, as LLaMA-Factory converts it) match the scan's."""
    from dedup_audit.readers import load_dataset

    ds = load_dataset(
        str(path), format="auto", dataset_info=dataset_info, dataset_name=dataset_name
    )
    return list(ds.records)


# ------------------------------------------------------------------------------------------------
# Models
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScoreTarget:
    """One model state to score: the base model or a checkpoint-N folder."""

    name: str  # "base" or "checkpoint-N"
    path: Path
    epoch: float
    step: int | None
    adapter: bool


def find_checkpoints(run_dir: str | Path) -> list[ScoreTarget]:
    """checkpoint-N folders sorted by N, with epoch/step from their trainer_state.json."""
    run = Path(run_dir)
    if not run.is_dir():
        raise InputError(f"{run}: not a folder; pass the training output_dir")
    found: list[ScoreTarget] = []
    for p in run.iterdir():
        m = re.fullmatch(r"checkpoint-(\d+)", p.name)
        if not m or not p.is_dir():
            continue
        step = int(m.group(1))
        epoch = float("nan")
        state = p / "trainer_state.json"
        if state.is_file():
            try:
                st = json.loads(state.read_text(encoding="utf-8"))
                epoch = float(st.get("epoch") or float("nan"))
                step = int(st.get("global_step") or step)
            except (json.JSONDecodeError, ValueError, TypeError):
                pass
        adapter = (p / "adapter_config.json").is_file()
        found.append(ScoreTarget(p.name, p, epoch, step, adapter))
    return sorted(found, key=lambda t: t.step or 0)


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {device}: CUDA is not available here; use --device cpu")
    if device not in ("cpu",) and not device.startswith("cuda"):
        raise ConfigError(f"--device {device}: expected auto, cpu or cuda[:N]")
    return device


def load_tokenizer(path: str | Path) -> PreTrainedTokenizerBase:
    try:
        from transformers import AutoTokenizer
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise MissingDependencyError(
            "scoring needs transformers: pip install 'dedup-audit[train]'"
        ) from e
    try:
        return AutoTokenizer.from_pretrained(str(path))
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: cannot load a tokenizer ({e}); pass --base-model") from e


def load_model(target: ScoreTarget, base_model: str | Path | None, device: str) -> Any:
    """Full weights with AutoModelForCausalLM; LoRA adapters on top of their base via peft."""
    from transformers import AutoModelForCausalLM

    model: Any
    if not target.adapter:
        model = AutoModelForCausalLM.from_pretrained(str(target.path))
    else:
        try:
            from peft import PeftModel
        except ImportError as e:
            raise MissingDependencyError(
                f"{target.path} holds a LoRA adapter; scoring it needs peft: "
                "pip install 'dedup-audit[train]'"
            ) from e
        base = base_model
        if base is None:
            cfg = json.loads((target.path / "adapter_config.json").read_text(encoding="utf-8"))
            base = cfg.get("base_model_name_or_path")
        if not base or not Path(str(base)).exists():
            raise InputError(
                f"{target.path}: adapter's base model {base!r} is not a local folder; "
                "pass --base-model PATH"
            )
        base_weights: Any = AutoModelForCausalLM.from_pretrained(str(base))
        model = PeftModel.from_pretrained(base_weights, str(target.path))
    model.to(device)
    model.eval()
    return model


# ------------------------------------------------------------------------------------------------
# Scoring
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Encoded:
    key: str
    content_key: str
    split: str
    input_ids: list[int]
    labels: list[int]


def encode_records(
    records: Iterable[Record], encoder: SftEncoder, split: str
) -> tuple[list[Encoded], list[str]]:
    """Encoded samples, plus the ids of records with no response token left (skipped)."""
    out: list[Encoded] = []
    skipped: list[str] = []
    for r in records:
        ids, labels = encoder.encode(r.sample)
        if not any(x != IGNORE_INDEX for x in labels[1:]):
            skipped.append(r.id)
            continue
        out.append(Encoded(r.id, sample_key(r.sample), split, ids, labels))
    return out, skipped


def length_batches(items: Sequence[Encoded], batch_size: int) -> Iterator[list[Encoded]]:
    """Batches of similar length (sorted longest first) so padding waste stays small and an
    out-of-memory error, if any, happens on the first batch."""
    order = sorted(range(len(items)), key=lambda i: (-len(items[i].input_ids), items[i].key))
    for start in range(0, len(order), batch_size):
        yield [items[i] for i in order[start : start + batch_size]]


def response_losses(logits: torch.Tensor, labels: torch.Tensor) -> tuple[list[float], list[int]]:
    """Mean next-token cross-entropy per row over positions whose label is not IGNORE_INDEX,
    and that token count. Computed in float32 whatever the model's dtype."""
    import torch

    shift_logits = logits[:, :-1, :].float()
    shift_labels = labels[:, 1:]
    ce = torch.nn.functional.cross_entropy(
        shift_logits.reshape(-1, shift_logits.size(-1)),
        shift_labels.reshape(-1).to(shift_logits.device),
        ignore_index=IGNORE_INDEX,
        reduction="none",
    ).view(shift_labels.shape)
    mask = (shift_labels != IGNORE_INDEX).to(ce.device)
    n = mask.sum(dim=1)
    sums = (ce * mask).sum(dim=1)
    losses = [float(s) / int(k) if int(k) else float("nan") for s, k in zip(sums, n, strict=True)]
    return losses, [int(k) for k in n]


def score_model(
    model: Any,
    items: Sequence[Encoded],
    *,
    pad_id: int,
    batch_size: int,
    device: str,
    progress: bool = True,
    desc: str = "scoring",
) -> dict[str, tuple[float, int]]:
    """key -> (mean response CE, response tokens) for one model."""
    import torch

    from dedup_audit.progress import progress_bar

    out: dict[str, tuple[float, int]] = {}
    batches = list(length_batches(items, batch_size))
    with torch.no_grad():
        for batch in progress_bar(batches, desc=desc, enabled=progress, total=len(batches)):
            width = max(len(e.input_ids) for e in batch)
            ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
            lab = torch.full((len(batch), width), IGNORE_INDEX, dtype=torch.long)
            att = torch.zeros((len(batch), width), dtype=torch.long)
            for i, e in enumerate(batch):  # right padding, as the SFT collator does
                ids[i, : len(e.input_ids)] = torch.tensor(e.input_ids)
                lab[i, : len(e.labels)] = torch.tensor(e.labels)
                att[i, : len(e.input_ids)] = 1
            logits = model(input_ids=ids.to(device), attention_mask=att.to(device)).logits
            losses, counts = response_losses(logits, lab)
            for e, loss, n in zip(batch, losses, counts, strict=True):
                out[e.key] = (loss, n)
    return out


WEIGHT_FILES = (
    "model.safetensors",
    "pytorch_model.bin",
    "model.safetensors.index.json",
    "pytorch_model.bin.index.json",
)
ADAPTER_FILES = ("adapter_model.safetensors", "adapter_model.bin")


def check_weights(targets: Sequence[ScoreTarget]) -> None:
    """Every model folder must hold weights (full, sharded, or a LoRA adapter), checked before
    any scoring: a checkpoint saved without weights would otherwise fail minutes in."""
    for t in targets:
        if not t.path.is_dir():
            continue  # a hub name for the base model: transformers resolves it (offline cache)
        names = ADAPTER_FILES if t.adapter else WEIGHT_FILES
        if not any((t.path / n).is_file() for n in names):
            raise InputError(
                f"{t.path}: no model weights ({' / '.join(names)}); the checkpoint was saved "
                "without them (an interrupted save?). Remove the folder or restore its weights"
            )


def read_run_shape(run: Path) -> dict[str, float] | None:
    """Steps, epochs and batch size of the run, from its trainer_state.json (top level, else the
    latest checkpoint's)."""
    from dedup_audit.training.trainer_log import find_trainer_state

    path = find_trainer_state(run)
    if path is None:
        return None
    try:
        st = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    if not isinstance(st, dict):
        return None
    steps = st.get("max_steps") or st.get("global_step")
    epochs = st.get("num_train_epochs") or st.get("epoch")
    batch = st.get("train_batch_size")
    values = [v for v in (steps, epochs, batch) if isinstance(v, int | float) and v > 0]
    if len(values) != 3:
        return None
    return {"steps": float(values[0]), "epochs": float(values[1]), "batch": float(values[2])}


def check_rows_against_run(
    run: Path, n_rows: int, data_name: str, config: RunConfig | None = None
) -> str | None:
    """Does a dataset of n_rows fit the run's steps per epoch? Raises InputError when no
    gradient accumulation x device count could make it fit; returns a note of what was checked.

    HF's Trainer takes ceil(ceil(rows / batch) / accumulation) optimizer steps per epoch
    (batch = per-device batch x devices in trainer_state.json); with the YAML's
    gradient_accumulation_steps unknown, every accumulation 1-256 and 1-64 devices are tried. val_size and max_samples from
    the YAML shrink the rows first, as LLaMA-Factory does."""
    shape = read_run_shape(run)
    if shape is None:
        return None
    spe = shape["steps"] / shape["epochs"]
    if abs(spe - round(spe)) > 0.02 * spe:
        return None  # max_steps cut an epoch short: no per-epoch shape to check
    spe_i = round(spe)
    batch = int(shape["batch"])
    rows = n_rows
    if config is not None and config.max_samples:
        rows = min(rows, config.max_samples)
    if config is not None and config.val_size:
        val = config.val_size
        rows -= int(val) if val >= 1 else int(rows * val)
    accums = (
        [config.gradient_accumulation_steps]
        if config is not None and config.gradient_accumulation_steps
        else list(range(1, 257))
    )
    devices = range(1, 65)
    fits = [
        (g, d)
        for g in accums
        for d in devices
        # transformers' steps per epoch: ceil(batches / accumulation); older versions floor it
        if spe_i
        in (
            math.ceil(math.ceil(rows / (batch * d)) / g),
            max(1, math.ceil(rows / (batch * d)) // g),
        )
    ]
    what = (
        f"trainer_state.json: {shape['steps']:g} steps over {shape['epochs']:g} epochs = "
        f"{spe_i} steps per epoch at batch size {batch}"
    )
    if not fits:
        acc = (
            f"gradient_accumulation_steps {accums[0]}"
            if len(accums) == 1
            else "any gradient accumulation"
        )
        raise InputError(
            f"{data_name}: {rows} training rows do not fit the run ({what}, with {acc}); is this "
            "the file the run trained on? Pass the right --data (or --config with its dataset), "
            "or --no-run-check to score anyway"
        )
    return f"{rows} rows fit {what}"


def resolve_settings(
    run: Path,
    *,
    template: str | None,
    max_length: int | None,
    config: RunConfig | None,
    guess: bool,
) -> tuple[str | None, int | None, str]:
    """Template and cutoff to score with, and where they came from (recorded in every row).

    Order: the flags, then --config, then a YAML left in the run folder. LLaMA-Factory's own
    default cutoff_len (2048) applies when a template is known but no cutoff_len is. With none
    of them, scoring would silently use the tokenizer's chat template and no truncation, which
    can change the tokens (and the loss) of many rows: an error unless `guess` opts in."""
    source = "flags"
    if config is not None:
        given = template is not None or max_length is not None
        source = f"flags + config {config.path}" if given else f"config {config.path}"
    if config is not None:
        template = template or config.template
        max_length = max_length if max_length is not None else config.cutoff_len
    if template is None and max_length is None:
        yaml_template, yaml_cutoff = read_run_template(run)
        if yaml_template is not None or yaml_cutoff is not None:
            template, max_length = yaml_template, yaml_cutoff
            source = f"YAML in {run}"
    if template is None and max_length is None:
        if not guess:
            raise ConfigError(
                f"{run}: no training settings (llamafactory-cli leaves no YAML in output_dir). "
                "Pass --config train.yaml (the YAML you trained with), or --template NAME and "
                "--max-length CUTOFF_LEN; or --guess-settings to score with the tokenizer's "
                "chat template and no truncation (recorded in every row)"
            )
        return None, None, "guessed: tokenizer chat template, no truncation"
    if template is not None and max_length is None and template in (*TEMPLATES, "plain"):
        max_length = LLAMAFACTORY_DEFAULT_CUTOFF
        source += f", cutoff_len {LLAMAFACTORY_DEFAULT_CUTOFF} (LLaMA-Factory's default)"
    return template, max_length, source


def set_threads(threads: int | None, device: str) -> int | None:
    """torch CPU threads: `threads`, else half the cores (at least 1, at most 8).

    Measured on 2 shared cores: 1 thread scored 2.5-3.5x faster than torch's default (42 s
    against 105-147 s for 456 rows x 4 checkpoints), because the default spins one thread per
    core against every other process on them."""
    if device != "cpu":
        return None
    import torch

    n = threads if threads is not None else max(1, min(8, (os.cpu_count() or 2) // 2))
    torch.set_num_threads(n)
    return n


def quiet_transformers() -> None:
    """No loading bars or info logs from transformers / huggingface_hub (`-q`)."""
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover - transformers is a dependency
        pass
    try:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    except ImportError:  # pragma: no cover
        pass


def load_training_records(
    data: str | Path | None,
    *,
    dataset_info: str | Path | None,
    dataset_name: str | None,
    config: RunConfig | None,
) -> tuple[list[Record], str]:
    """The training rows: --data, --dataset-info/--dataset, or the YAML's dataset(s) in order
    (LLaMA-Factory concatenates several)."""
    if data is not None or (dataset_info and dataset_name):
        return (
            load_records(data or "", dataset_info=dataset_info, dataset_name=dataset_name),
            str(data or dataset_name),
        )
    if config is None or not config.datasets or config.dataset_info is None:
        raise ConfigError(
            "pass --data FILE, --dataset-info FILE with --dataset NAME, or --config train.yaml "
            "with `dataset` (and `dataset_dir`)"
        )
    info = config.dataset_info
    if not info.is_file():
        raise InputError(
            f"{config.path}: dataset_dir has no dataset_info.json ({info}); run from the folder "
            "you trained in, or pass --data"
        )
    records: list[Record] = []
    for name in config.datasets:
        records += load_records("", dataset_info=info, dataset_name=name)
    return records, ",".join(config.datasets)


def score_run(
    run_dir: str | Path,
    data: str | Path | None,
    *,
    heldout: str | Path | None = None,
    base_model: str | Path | None = None,
    dataset_info: str | Path | None = None,
    dataset_name: str | None = None,
    device: str = "auto",
    batch_size: int = 8,
    max_length: int | None = None,
    template: str | None = None,
    progress: bool = True,
    config: RunConfig | None = None,
    guess_settings: bool = False,
    threads: int | None = None,
    run_check: bool = True,
) -> list[dict[str, Any]]:
    """Per-sample response loss for the base model (if given) and every checkpoint of a run.

    Returns loss rows sorted by (split, key, epoch). Template and cutoff come from the flags,
    `config` (the training YAML) or a YAML in the run folder (see `resolve_settings`); every row
    records them in `scored_with`. Raises InputError when the run has no checkpoint and no base
    model is given, when a checkpoint has no weights, or when the data does not fit the run's
    trainer_state.json (unless run_check is False).
    """
    if batch_size < 1:
        raise ConfigError(f"--batch-size {batch_size}: must be >= 1")
    run = Path(run_dir)
    targets = find_checkpoints(run)
    adapter_base = base_model
    if adapter_base is None and config is not None and config.model_name_or_path:
        candidate = Path(config.model_name_or_path)
        if candidate.is_dir() and any(t.adapter for t in targets):
            adapter_base = candidate  # the base the LoRA checkpoints sit on (not scored itself)
    if base_model is not None:
        bm = Path(base_model)
        if not bm.exists():
            raise InputError(f"{bm}: base model folder not found")
        targets = [ScoreTarget("base", bm, 0.0, 0, False), *targets]
    if not targets:
        raise InputError(
            f"{run}: no checkpoint-* folders; train with save_strategy: epoch, or pass --base-model"
        )
    check_weights(targets)
    template, max_length, source = resolve_settings(
        run, template=template, max_length=max_length, config=config, guess=guess_settings
    )
    if template is not None and template not in (*TEMPLATES, "plain", "chat_template", "auto"):
        source += f"; template {template!r} read from the tokenizer's chat template"

    records, data_name = load_training_records(
        data, dataset_info=dataset_info, dataset_name=dataset_name, config=config
    )
    if run_check:
        check_rows_against_run(run, len(records), data_name, config)

    tok_source = (
        next(
            (t.path for t in reversed(targets) if (t.path / "tokenizer_config.json").is_file()),
            None,
        )
        or (run if (run / "tokenizer_config.json").is_file() else None)
        or adapter_base
    )
    if tok_source is None:
        raise InputError(f"{run}: no tokenizer in the checkpoints or run folder; pass --base-model")
    tokenizer = load_tokenizer(tok_source)
    if max_length is not None:
        # we truncate ourselves after tokenizing: the tokenizer's length warning is noise here
        tokenizer.model_max_length = int(1e30)
    encoder = make_encoder(tokenizer, template, max_length)
    scored_with = f"{encoder.description}, cutoff_len {max_length or 'none'} ({source})"
    pad_id = (
        tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    )
    if pad_id is None:
        pad_id = 0

    items, skipped = encode_records(records, encoder, "train")
    if heldout is not None:
        held, skipped_h = encode_records(load_records(heldout), encoder, "heldout")
        train_keys = {e.key for e in items}
        clash = [e.key for e in held if e.key in train_keys]
        if clash:
            raise InputError(
                f"{heldout}: record ids {clash[:3]} also occur in {data_name}; use a held-out "
                "file with a different name"
            )
        items += held
        skipped += skipped_h
    if not items:
        raise InputError(f"{data_name}: no sample has a response token left after truncation")

    dev = resolve_device(device)
    set_threads(threads, dev)
    rows: list[dict[str, Any]] = []
    for target in targets:
        model = load_model(target, adapter_base, dev)
        scores = score_model(
            model,
            items,
            pad_id=int(pad_id),
            batch_size=batch_size,
            device=dev,
            progress=progress,
            desc=f"scoring {target.name}",
        )
        del model
        for e in items:
            loss, n = scores[e.key]
            rows.append(
                {
                    "key": e.key,
                    "epoch": target.epoch,
                    "step": target.step,
                    "checkpoint": target.name,
                    "loss": loss,
                    "n_tokens": n,
                    "split": e.split,
                    "content_key": e.content_key,
                    "scored_with": scored_with,
                }
            )
    return sort_rows(rows)


def sort_rows(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The stable order of loss files: split, key, epoch, step."""

    def k(r: dict[str, Any]) -> tuple[Any, ...]:
        ep = r.get("epoch")
        return (
            r.get("split", ""),
            r.get("key", ""),
            ep if isinstance(ep, float | int) and not math.isnan(ep) else -1.0,
            r.get("step") if r.get("step") is not None else -1,
        )

    return sorted(rows, key=k)


def write_loss_rows(
    rows: Iterable[dict[str, Any]], path: str | Path, *, force: bool = False
) -> None:
    """Write loss rows as JSONL atomically (temp file + os.replace), fields in schema order."""
    out = Path(path)
    if out.exists() and not force:
        raise OutputError(f"{out} exists; pass --force to overwrite")
    if out.parent and not out.parent.exists():
        raise OutputError(f"{out.parent}: folder does not exist")
    lines = []
    for r in rows:
        ordered = {f: r.get(f) for f in LOSS_FIELDS}
        ordered.update({k: v for k, v in r.items() if k not in ordered})
        if isinstance(ordered["epoch"], float) and math.isnan(ordered["epoch"]):
            ordered["epoch"] = None
        lines.append(json.dumps(ordered, ensure_ascii=False, allow_nan=True))
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    os.replace(tmp, out)
