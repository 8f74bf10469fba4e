"""The training-time recorder with a real HF Trainer on a tiny random Llama (no llamafactory: the
LLaMA-Factory path is exercised by benchmarks/memorization_run.py, whose output is committed)."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import torch

from dedup_audit.records import sample_key
from dedup_audit.training.recorder import (
    PerSampleLossCallback,
    join_recorded_losses,
    label_key,
    read_jsonl,
    record_label_keys,
    record_per_sample_losses,
)
from dedup_audit.training.scorer import load_records
from dedup_audit.training.sft_encoding import IGNORE_INDEX, make_encoder
from tests.test_scorer import RUN, build_tiny_model

N_ROWS = 10
CUTOFF = 96


@pytest.fixture(scope="session")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Tiny model + 10 real rows with row 0 copied twice more (an exact-duplicate group)."""
    from transformers import AutoTokenizer

    root = tmp_path_factory.mktemp("rec")
    base = build_tiny_model(root / "base")
    rows = json.loads((RUN / "train.json").read_text(encoding="utf-8"))[:N_ROWS]
    rows += [dict(rows[0]), dict(rows[0])]
    data = root / "train.json"
    data.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    held = root / "heldout.json"
    held.write_text(
        json.dumps(json.loads((RUN / "heldout.json").read_text(encoding="utf-8"))[:4]), "utf-8"
    )
    tokenizer = AutoTokenizer.from_pretrained(base)
    return {"root": root, "base": base, "data": data, "heldout": held, "tokenizer": tokenizer}


def encoded(path: Path, tokenizer: Any) -> list[dict[str, list[int]]]:
    enc = make_encoder(tokenizer, "default", CUTOFF)
    out = []
    for r in load_records(path):
        ids, labels = enc.encode(r.sample)
        out.append({"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels})
    return out


def make_trainer(
    setup: dict[str, Any], out: Path, lr: float, callbacks: list[Any], **kw: Any
) -> Any:
    from transformers import DataCollatorForSeq2Seq, Seq2SeqTrainer, Seq2SeqTrainingArguments

    class LlamaFactoryLikeTrainer(Seq2SeqTrainer):
        """Same compute_loss signature as LLaMA-Factory 0.9.5's CustomSeq2SeqTrainer."""

        def compute_loss(self, model: Any, inputs: Any, *args: Any, **kwargs: Any) -> Any:
            return super().compute_loss(model, inputs, *args, **kwargs)

    from transformers import AutoModelForCausalLM

    tok = setup["tokenizer"]
    args = Seq2SeqTrainingArguments(
        output_dir=str(out),
        per_device_train_batch_size=4,
        per_device_eval_batch_size=4,
        num_train_epochs=2,
        learning_rate=lr,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        seed=7,
        disable_tqdm=True,
        **kw,
    )
    return LlamaFactoryLikeTrainer(
        model=AutoModelForCausalLM.from_pretrained(setup["base"]),
        args=args,
        train_dataset=encoded(setup["data"], tok),
        eval_dataset=encoded(setup["heldout"], tok) if kw.get("eval_strategy") else None,
        data_collator=DataCollatorForSeq2Seq(tok, padding=True, label_pad_token_id=IGNORE_INDEX),
        processing_class=tok,
        callbacks=callbacks,
    )


def manual_losses(setup: dict[str, Any]) -> dict[str, float]:
    """label_key -> the base model's response loss from a plain forward pass, one row at a time."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(setup["base"])
    model.eval()
    out = {}
    with torch.no_grad():
        for path in (setup["data"], setup["heldout"]):
            for item in encoded(path, setup["tokenizer"]):
                loss = model(
                    input_ids=torch.tensor([item["input_ids"]]),
                    labels=torch.tensor([item["labels"]]),
                ).loss
                out[label_key(item["labels"])] = float(loss)
    return out


def test_callback_with_frozen_model_matches_manual_forward(setup: dict[str, Any]) -> None:
    """lr=0: the model never changes, so every recorded loss must equal a manual forward pass of
    the base model on that sample, whatever batch it was padded into."""
    path = setup["root"] / "frozen" / "recorded.jsonl"
    cb = PerSampleLossCallback(path)
    trainer = make_trainer(setup, setup["root"] / "frozen", 0.0, [cb], eval_strategy="epoch")
    trainer.train()
    rows = read_jsonl(path)
    train = [r for r in rows if r["split"] == "train"]
    held = [r for r in rows if r["split"] == "heldout"]
    assert len(train) == 2 * (N_ROWS + 2)  # one row per sample per epoch
    assert len(held) == 2 * 4  # eval at each epoch end
    manual = manual_losses(setup)
    for r in rows:
        assert math.isfinite(r["loss"]) and r["n_tokens"] > 0
        assert r["loss"] == pytest.approx(manual[r["key"]], rel=1e-4, abs=1e-4)
        assert r["checkpoint"] is None
    # epoch/step come from the trainer state: 3 steps per epoch
    assert sorted({r["step"] for r in train}) == [0, 1, 2, 3, 4, 5]
    assert sorted({math.floor(r["epoch"] + 1e-9) for r in train}) == [0, 1]
    assert {r["epoch"] for r in held} == {1.0, 2.0}
    # the duplicated row (3 copies) shows up 3 times per epoch under one key
    counts = Counter((r["key"], math.floor(r["epoch"] + 1e-9)) for r in train)
    assert sorted(counts.values()) == [1] * 2 * (N_ROWS - 1) + [3, 3]


def test_wrapper_records_training_and_joins_back_to_records(setup: dict[str, Any]) -> None:
    path = setup["root"] / "train" / "recorded.jsonl"
    trainer = make_trainer(setup, setup["root"] / "train", 5e-3, [])
    recorder = record_per_sample_losses(trainer, path)
    assert record_per_sample_losses(trainer, path) is recorder  # idempotent
    trainer.train()
    recorder.flush()
    rows = read_jsonl(path)
    assert len(rows) == 2 * (N_ROWS + 2)
    records = load_records(setup["data"])
    joined, unmatched = join_recorded_losses(
        rows, records, setup["tokenizer"], template="default", max_length=CUTOFF
    )
    assert unmatched == []
    # every record, including each of the 3 copies, gets exactly one row per epoch
    per_record = Counter((r["key"], math.floor(r["epoch"] + 1e-9)) for r in joined)
    assert set(per_record) == {(rec.id, e) for rec in records for e in (0, 1)}
    assert set(per_record.values()) == {1}
    by_id = {rec.id: rec for rec in records}
    assert all(r["content_key"] == sample_key(by_id[r["key"]].sample) for r in joined)
    # it trained: second-pass losses are below first-pass losses on average
    first = [r["loss"] for r in joined if r["epoch"] < 1.0]
    second = [r["loss"] for r in joined if r["epoch"] >= 1.0]
    assert sum(second) / len(second) < sum(first) / len(first)
    # the step-0 rows were computed by the untouched model
    manual = manual_losses(setup)
    step0 = [r for r in rows if r["step"] == 0]
    assert len(step0) == 4
    for r in step0:
        assert r["loss"] == pytest.approx(manual[r["key"]], rel=1e-4)


def test_label_keys_limits(setup: dict[str, Any]) -> None:
    """Copies share a key; another cutoff or template changes the tokens and the key."""
    records = load_records(setup["data"])
    keys = record_label_keys(records, setup["tokenizer"], template="default", max_length=CUTOFF)
    assert sorted(len(v) for v in keys.values()) == [1] * (N_ROWS - 1) + [3]
    other = record_label_keys(records, setup["tokenizer"], template="empty", max_length=CUTOFF)
    assert not set(keys) & set(other)
    assert label_key([IGNORE_INDEX, 5, 6]) == label_key([5, 6])
    rows = [{"key": "labels:0000", "epoch": 0.5, "step": 1, "loss": 1.0, "split": "train"}]
    joined, unmatched = join_recorded_losses(rows, records, setup["tokenizer"], template="default")
    assert joined == [] and unmatched == rows


def test_committed_llamafactory_run_recorded_every_sample_every_epoch() -> None:
    """The recorder ran inside LLaMA-Factory's trainer (run_exp callbacks) for the committed run."""
    rows = read_jsonl(RUN / "recorded_losses.jsonl")
    train_ids = {r.id for r in load_records(RUN / "train.json")}
    epochs = round(json.loads((RUN / "trainer_state.json").read_text())["epoch"])
    train = [r for r in rows if r["split"] == "train"]
    assert len(train) == epochs * len(train_ids)
    assert {r["key"] for r in train} == train_ids
    assert all(math.isfinite(r["loss"]) for r in rows)
    assert {r["split"] for r in rows} == {"train", "heldout"}


def test_wrapper_passes_through_losses_without_outputs(tmp_path: Path) -> None:
    """A custom loss that ignores return_outputs (LLaMA-Factory's use_asft_loss) is left alone,
    counted and warned about once, never crashing training."""
    from types import SimpleNamespace

    class OnlyLoss:
        args = SimpleNamespace(process_index=0)
        state = SimpleNamespace(epoch=0.0, global_step=0)

        def compute_loss(self, model: Any, inputs: Any, return_outputs: bool = False) -> Any:
            return torch.tensor(1.5)

    trainer = OnlyLoss()
    recorder = record_per_sample_losses(trainer, tmp_path / "r.jsonl")  # type: ignore[arg-type]
    model = SimpleNamespace(training=True)
    with pytest.warns(RuntimeWarning, match="no model outputs"):
        assert float(trainer.compute_loss(model, {"labels": torch.tensor([[1, 2]])})) == 1.5
    assert float(trainer.compute_loss(model, {"labels": torch.tensor([[1, 2]])})) == 1.5
    assert recorder.skipped_batches == 2 and recorder.rows == []
    assert float(trainer.compute_loss(model, {"input_ids": torch.tensor([[1]])})) == 1.5
