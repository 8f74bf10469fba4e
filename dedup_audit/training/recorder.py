"""Per-sample losses recorded while training, from the logits the trainer already computed.

Why: the post-hoc scorer needs one checkpoint per epoch and a forward pass per checkpoint; the
recorder gets a loss for every sample at the moment it is trained on, for free, and so also sees
what happens *inside* an epoch (a duplicate's second copy in the same epoch).

Use with a plain HF Trainer::

    recorder = record_per_sample_losses(trainer, "out/recorded.jsonl")
    trainer.train()           # rows are flushed at each epoch end, save and at the end

or as a callback, which is how LLaMA-Factory's Python entry point takes it::

    from llamafactory.train.tuner import run_exp
    run_exp(args=yaml_dict, callbacks=[PerSampleLossCallback("out/recorded.jsonl")])

The callback reaches its trainer in ``on_train_begin``: HF passes callbacks no trainer, so it walks
up the call stack to the ``Trainer`` whose ``callback_handler`` holds this callback (the frame that
fires ``on_train_begin`` is the trainer's training loop in transformers 4.x and 5.x). It then wraps
that trainer's ``compute_loss`` on the instance: the original runs with ``return_outputs=True`` and
the per-sample mean cross-entropy over ``labels != -100`` is taken from its logits under
``torch.no_grad`` (no extra forward pass, no effect on gradients). Evaluation batches (model in eval
mode) are recorded with split "heldout".

Sample identity: the trainer sees token ids, not dataset rows, so a row's ``key`` is
``label_key(labels)``: a hash of its trained-on token ids (the response tokens). To join them
back, ``join_recorded_losses`` tokenizes each dataset record with the same template/cutoff as SFT
(sft_encoding.SftEncoder) and maps the hash to the record id. Limits, by construction:

- Records with identical trained-on tokens (exact copies, or the same answer to different prompts
  when the prompt is masked) share a hash; their rows are assigned to the copies in order of
  appearance within each epoch, so only the group's losses, not which copy is which, are real.
- A template, cutoff_len, tokenizer or ``train_on_prompt``/``mask_history`` setting other than the
  join's changes the tokens and the rows do not join (they are returned as unmatched).
- Packing (``packing``/``neat_packing``) puts several samples in a row: not supported.
- Under multi-process training each process records its own batches; ranks > 0 write
  ``<path>.rank<N>``.

Rows follow the loss schema; ``epoch`` is ``state.epoch`` when the forward pass ran (fractional
training progress, so the pass index is ``floor(epoch)``), ``step`` is ``state.global_step``,
``checkpoint`` is null and ``content_key`` is "" until joined.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from transformers import Trainer, TrainerCallback

from dedup_audit.errors import ConfigError, InputError
from dedup_audit.records import Record, sample_key
from dedup_audit.training.scorer import response_losses, sort_rows, write_loss_rows
from dedup_audit.training.sft_encoding import IGNORE_INDEX, make_encoder

if TYPE_CHECKING:
    import torch
    from transformers import (
        PreTrainedTokenizerBase,
        TrainerControl,
        TrainerState,
        TrainingArguments,
    )

LABEL_KEY_PREFIX = "labels:"


def label_key(token_ids: Iterable[int]) -> str:
    """Hash of the trained-on token ids (IGNORE_INDEX dropped): the sample identity the trainer
    can see."""
    ids = [int(x) for x in token_ids if int(x) != IGNORE_INDEX]
    payload = ",".join(map(str, ids)).encode("ascii")
    return LABEL_KEY_PREFIX + hashlib.blake2b(payload, digest_size=8).hexdigest()


class LossRecorder:
    """Collects loss rows and writes them atomically, sorted, to one JSONL file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.rows: list[dict[str, Any]] = []
        self.skipped_batches = 0

    def record(
        self, logits: torch.Tensor, labels: torch.Tensor, *, epoch: float, step: int, split: str
    ) -> None:
        import torch

        with torch.no_grad():
            losses, counts = response_losses(logits.detach(), labels.detach())
        label_rows = labels.detach().cpu().tolist()
        for row_labels, loss, n in zip(label_rows, losses, counts, strict=True):
            if n == 0:
                continue
            self.rows.append(
                {
                    "key": label_key(row_labels),
                    "epoch": round(float(epoch), 6),
                    "step": int(step),
                    "checkpoint": None,
                    "loss": loss,
                    "n_tokens": n,
                    "split": split,
                    "content_key": "",
                }
            )

    def flush(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_loss_rows(sort_rows(self.rows), self.path, force=True)


def _rank_path(path: str | Path, args: Any) -> Path:
    rank = int(getattr(args, "process_index", 0) or 0)
    p = Path(path)
    return p if rank == 0 else p.with_name(f"{p.name}.rank{rank}")


def record_per_sample_losses(trainer: Trainer, path: str | Path) -> LossRecorder:
    """Wrap `trainer.compute_loss` (on this instance only) to record per-sample losses.

    Idempotent: wrapping twice returns the first recorder. Flushing is the caller's job unless a
    PerSampleLossCallback drives it; `PerSampleLossCallback.attach` does both.
    """
    existing = getattr(trainer, "_dedup_audit_recorder", None)
    if isinstance(existing, LossRecorder):
        return existing
    recorder = LossRecorder(_rank_path(path, trainer.args))
    original: Callable[..., Any] = trainer.compute_loss
    warned: list[bool] = []

    def _skip(why: str) -> None:
        recorder.skipped_batches += 1
        if not warned:
            warned.append(True)
            warnings.warn(
                f"per-sample loss recorder skips batches: {why}", RuntimeWarning, stacklevel=3
            )

    def compute_loss(model: Any, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        labels = inputs.get("labels") if hasattr(inputs, "get") else None
        if labels is None:
            return original(model, inputs, *args, **kwargs)
        want_outputs = bool(args[0]) if args else bool(kwargs.get("return_outputs", False))
        kwargs["return_outputs"] = True
        result = original(model, inputs, *args[1:], **kwargs)
        if not (isinstance(result, tuple) and len(result) == 2):
            # e.g. a custom loss (LLaMA-Factory's use_asft_loss) that ignores return_outputs
            _skip("compute_loss returned no model outputs")
            return result
        loss, outputs = result
        logits = getattr(outputs, "logits", None)
        if logits is None and isinstance(outputs, dict):
            logits = outputs.get("logits")
        if logits is not None and logits.shape[:2] == labels.shape[:2]:
            state = trainer.state
            recorder.record(
                logits,
                labels,
                epoch=float(state.epoch or 0.0),
                step=int(state.global_step),
                split="train" if model.training else "heldout",
            )
        else:
            _skip("the model outputs carry no logits aligned with the labels")
        return (loss, outputs) if want_outputs else loss

    trainer.compute_loss = compute_loss  # type: ignore[method-assign]
    trainer._dedup_audit_recorder = recorder  # type: ignore[attr-defined]
    return recorder


def _find_trainer(callback: TrainerCallback) -> Trainer | None:
    """The Trainer whose callback list holds `callback`, found on the call stack."""
    frame = inspect.currentframe()
    try:
        while frame is not None:
            obj = frame.f_locals.get("self")
            if isinstance(obj, Trainer):
                handler = getattr(obj, "callback_handler", None)
                if handler is None or callback in getattr(handler, "callbacks", []):
                    return obj
            frame = frame.f_back
    finally:
        del frame
    return None


class PerSampleLossCallback(TrainerCallback):
    """Records per-sample losses to `path`; rows are rewritten at every epoch end, save and at the
    end of training, so a crashed run still leaves the epochs it finished."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.recorder: LossRecorder | None = None

    def attach(self, trainer: Trainer) -> LossRecorder:
        """Wrap `trainer` explicitly (what on_train_begin does by itself)."""
        self.recorder = record_per_sample_losses(trainer, self.path)
        return self.recorder

    def on_train_begin(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        **kwargs: Any,
    ) -> None:
        if self.recorder is not None:
            return
        trainer = _find_trainer(self)
        if trainer is None:
            raise ConfigError(
                "PerSampleLossCallback could not find its Trainer on the call stack; call "
                "callback.attach(trainer) before trainer.train()"
            )
        self.attach(trainer)

    def _flush(self) -> None:
        if self.recorder is not None:
            self.recorder.flush()

    def on_epoch_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self._flush()

    def on_save(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self._flush()

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self._flush()


# ------------------------------------------------------------------------------------------------
# Joining recorded rows back to dataset records
# ------------------------------------------------------------------------------------------------


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Loss rows from a JSONL file, with the file and line in any error."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such file")
    rows = []
    for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise InputError(f"{p}: line {n}: invalid JSON ({e.msg})") from e
    return rows


def record_label_keys(
    records: Sequence[Record],
    tokenizer: PreTrainedTokenizerBase,
    *,
    template: str | None = None,
    max_length: int | None = None,
) -> dict[str, list[Record]]:
    """label_key -> the records whose SFT encoding trains on exactly those tokens (sorted by
    index). Use the run's template and cutoff_len, or the keys will not match."""
    encoder = make_encoder(tokenizer, template, max_length)
    out: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        out[label_key(encoder.response_ids(r.sample))].append(r)
    return dict(out)


def join_recorded_losses(
    rows: Sequence[dict[str, Any]],
    records: Sequence[Record],
    tokenizer: PreTrainedTokenizerBase,
    *,
    template: str | None = None,
    max_length: int | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Replace label-hash keys by record ids and fill content_key.

    Rows of records that share a hash are dealt to those records in order of step within each
    training pass (floor(epoch)) and split. Returns (joined rows, unmatched rows)."""
    by_key = record_label_keys(records, tokenizer, template=template, max_length=max_length)
    buckets: dict[tuple[str, str, int], list[dict[str, Any]]] = defaultdict(list)
    unmatched: list[dict[str, Any]] = []
    for r in rows:
        if r.get("key") not in by_key:
            unmatched.append(r)
            continue
        epoch = r.get("epoch")
        pass_index = math.floor(float(epoch) + 1e-9) if epoch is not None else -1
        buckets[(str(r["key"]), str(r.get("split", "")), pass_index)].append(r)
    joined: list[dict[str, Any]] = []
    for (key, _split, _pass), group in sorted(buckets.items()):
        recs = by_key[key]
        group.sort(key=lambda r: (r.get("step") or 0, r.get("loss") or 0.0))
        for i, r in enumerate(group):
            rec = recs[i % len(recs)]
            joined.append({**r, "key": rec.id, "content_key": sample_key(rec.sample)})
    return sort_rows(joined), unmatched


def recorded_files(path: str | Path) -> list[Path]:
    """The rank-0 file and any per-rank files next to it."""
    p = Path(path)
    ranks = sorted(p.parent.glob(p.name + ".rank*")) if p.parent.is_dir() else []
    return [p, *ranks] if p.exists() else ranks


__all__ = [
    "LABEL_KEY_PREFIX",
    "LossRecorder",
    "PerSampleLossCallback",
    "join_recorded_losses",
    "label_key",
    "read_jsonl",
    "record_label_keys",
    "record_per_sample_losses",
    "recorded_files",
]
