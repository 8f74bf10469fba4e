"""The post-hoc scorer on a real (tiny, random, locally built) Llama and a locally trained tokenizer.

Data: the recorded run's train/held-out rows (LLaMA-Factory's alpaca_en_demo, see
sample_data/run/README.md). Nothing is downloaded.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch
from click.testing import CliRunner

from dedup_audit.errors import ConfigError, InputError, OutputError
from dedup_audit.records import Sample, Turn, sample_key
from dedup_audit.training.run_config import read_run_config
from dedup_audit.training.scorer import (
    check_rows_against_run,
    find_checkpoints,
    load_records,
    response_losses,
    score_run,
    set_threads,
    write_loss_rows,
)
from dedup_audit.training.sft_encoding import (
    IGNORE_INDEX,
    TEMPLATES,
    infer_seqlen,
    make_encoder,
    read_run_template,
)

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / "sample_data" / "run"
N_TRAIN = 12
N_HELD = 12
CUTOFF = 96


def build_tiny_model(where: Path) -> Path:
    """A byte-level BPE trained on the sample rows and a random 2-layer Llama, saved to `where`.
    Takes about a second; shared by the scorer and recorder tests."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    texts: list[str] = []
    for name in ("train.json", "heldout.json"):
        for r in json.loads((RUN / name).read_text(encoding="utf-8")):
            texts += [r["instruction"], r["input"], r["output"]]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(
        texts,
        trainers.BpeTrainer(
            vocab_size=600,
            special_tokens=["<|endoftext|>", "<pad>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        ),
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<pad>"
    )
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=256,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
        bos_token_id=None,
        tie_word_embeddings=False,
    )
    where.mkdir(parents=True, exist_ok=True)
    LlamaForCausalLM(config).save_pretrained(where)
    fast.save_pretrained(where)
    return where


def subset(src: str, n: int, dest: Path) -> Path:
    """The first n rows of a sample file, written under the same file name in `dest`."""
    rows = json.loads((RUN / src).read_text(encoding="utf-8"))[:n]
    dest.mkdir(parents=True, exist_ok=True)
    out = dest / src
    out.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return out


def train_steps(
    model: Any, items: list[tuple[list[int], list[int]]], steps: int, lr: float
) -> None:
    """Plain full-batch AdamW on (input_ids, labels) pairs: enough to memorize a dozen rows."""
    width = max(len(i) for i, _ in items)
    ids = torch.full((len(items), width), 1, dtype=torch.long)
    lab = torch.full((len(items), width), IGNORE_INDEX, dtype=torch.long)
    att = torch.zeros((len(items), width), dtype=torch.long)
    for k, (i, la) in enumerate(items):
        ids[k, : len(i)] = torch.tensor(i)
        lab[k, : len(la)] = torch.tensor(la)
        att[k, : len(i)] = 1
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        loss = model(input_ids=ids, attention_mask=att, labels=lab).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    model.eval()


def save_checkpoint(model: Any, tokenizer: Any, path: Path, epoch: float, step: int) -> None:
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    (path / "trainer_state.json").write_text(
        json.dumps({"epoch": epoch, "global_step": step, "log_history": []}), encoding="utf-8"
    )


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """base model + a run folder with one full checkpoint trained on N_TRAIN rows, a LoRA run
    folder, and the train/held-out subsets."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    root = tmp_path_factory.mktemp("tiny")
    base = build_tiny_model(root / "base")
    data = root / "data"
    train_path = subset("train.json", N_TRAIN, data)
    held_path = subset("heldout.json", N_HELD, data)
    tokenizer = AutoTokenizer.from_pretrained(base)
    encoder = make_encoder(tokenizer, "default", CUTOFF)
    items = [encoder.encode(r.sample) for r in load_records(train_path)]

    run = root / "run"
    (run).mkdir()
    (run / "training_args.yaml").write_text(
        f"stage: sft\ntemplate: default\ncutoff_len: {CUTOFF}\n", encoding="utf-8"
    )
    model = AutoModelForCausalLM.from_pretrained(base)
    train_steps(model, items, steps=30, lr=3e-3)
    save_checkpoint(model, tokenizer, run / "checkpoint-30", 1.0, 30)

    lora_run = root / "lora_run"
    torch.manual_seed(1)
    lora = get_peft_model(
        AutoModelForCausalLM.from_pretrained(base),
        LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], lora_dropout=0.0),
    )
    train_steps(lora, items, steps=30, lr=1e-2)
    lora.save_pretrained(lora_run / "checkpoint-30")
    tokenizer.save_pretrained(lora_run / "checkpoint-30")
    return {
        "base": base,
        "run": run,
        "lora_run": lora_run,
        "train": train_path,
        "heldout": held_path,
    }


def by(rows: list[dict[str, Any]], checkpoint: str, split: str) -> dict[str, float]:
    return {
        r["key"]: r["loss"] for r in rows if r["checkpoint"] == checkpoint and r["split"] == split
    }


def mean(xs: Any) -> float:
    xs = list(xs)
    return sum(xs) / len(xs)


def test_trained_rows_score_lower_than_heldout_and_base(tiny: dict[str, Path]) -> None:
    rows = score_run(
        tiny["run"],
        tiny["train"],
        heldout=tiny["heldout"],
        base_model=tiny["base"],
        device="cpu",
        batch_size=5,
        progress=False,
    )
    assert len(rows) == 2 * (N_TRAIN + N_HELD)
    assert all(math.isfinite(r["loss"]) and r["n_tokens"] > 0 for r in rows)
    train_base, held_base = by(rows, "base", "train"), by(rows, "base", "heldout")
    train_ck, held_ck = by(rows, "checkpoint-30", "train"), by(rows, "checkpoint-30", "heldout")
    # Before training both splits sit near ln(vocab); after, the trained rows are memorized.
    assert abs(mean(train_base.values()) - mean(held_base.values())) < 0.5
    assert mean(train_ck.values()) < mean(held_ck.values()) - 1.0
    assert all(train_ck[k] < train_base[k] for k in train_ck)
    # every trained row scores below every held-out row: memorized, not generalized
    assert max(train_ck.values()) < min(held_ck.values())
    # schema, keys and stable order
    first = rows[0]
    assert list(first) == [
        "key",
        "epoch",
        "step",
        "checkpoint",
        "loss",
        "n_tokens",
        "split",
        "content_key",
        "scored_with",
    ]
    # the settings came from the YAML left in the run folder, and every row says so
    assert first["scored_with"].startswith("llamafactory:default, cutoff_len 96 (YAML in ")
    recs = {r.id: r for r in load_records(tiny["train"])}
    for r in rows:
        if r["split"] == "train":
            assert r["content_key"] == sample_key(recs[r["key"]].sample)
    ck = [r for r in rows if r["checkpoint"] == "checkpoint-30"]
    assert {(r["epoch"], r["step"]) for r in ck} == {(1.0, 30)}
    assert {(r["epoch"], r["step"]) for r in rows if r["checkpoint"] == "base"} == {(0.0, 0)}
    assert rows == sorted(rows, key=lambda r: (r["split"], r["key"], r["epoch"]))


def test_batching_does_not_change_losses(tiny: dict[str, Path]) -> None:
    """Right padding and length buckets must not leak into any sample's loss."""
    a = score_run(tiny["run"], tiny["train"], device="cpu", batch_size=1, progress=False)
    b = score_run(tiny["run"], tiny["train"], device="cpu", batch_size=7, progress=False)
    assert [r["key"] for r in a] == [r["key"] for r in b]
    for x, y in zip(a, b, strict=True):
        assert x["loss"] == pytest.approx(y["loss"], abs=1e-4)


def test_response_only_masking(tiny: dict[str, Path]) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny["base"])
    sample = Sample(turns=(Turn("user", "Name a color."), Turn("assistant", "Blue is a color.")))
    ids, labels = make_encoder(tok, "default").encode(sample)
    # LLaMA-Factory's `default` template, slot by slot
    assert (
        tok.decode(ids)
        == "Human: Name a color.<|endoftext|>\nAssistant:Blue is a color.<|endoftext|>\n"
    )
    n_prompt = sum(1 for x in labels if x == IGNORE_INDEX)
    assert tok.decode(ids[:n_prompt]) == "Human: Name a color.<|endoftext|>\nAssistant:"
    assert labels[n_prompt:] == ids[n_prompt:]
    # The loss ignores whatever the model predicts at prompt positions.
    torch.manual_seed(0)
    logits = torch.randn(1, len(ids), len(tok))
    lab = torch.tensor([labels])
    base_loss, n = response_losses(logits, lab)
    assert n == [len(ids) - n_prompt]
    changed = logits.clone()
    changed[0, : n_prompt - 1] = torch.randn(n_prompt - 1, len(tok)) * 10
    assert response_losses(changed, lab)[0] == pytest.approx(base_loss)
    changed[0, n_prompt, ids[n_prompt + 1]] += 5.0  # a response position: now it counts
    assert response_losses(changed, lab)[0] != pytest.approx(base_loss)
    manual = torch.nn.functional.cross_entropy(logits[0, n_prompt - 1 : -1], lab[0, n_prompt:])
    assert base_loss[0] == pytest.approx(float(manual), rel=1e-5)


def test_templates_system_history_and_truncation(tiny: dict[str, Path]) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny["base"])
    s = Sample(
        turns=(
            Turn("user", "hi"),
            Turn("assistant", "hello"),
            Turn("user", "bye"),
            Turn("assistant", "ok"),
        ),
        system="Be brief.",
    )
    ids, labels = make_encoder(tok, "default").encode(s)
    text = tok.decode(ids)
    assert text == (
        "System: Be brief.<|endoftext|>\nHuman: hi<|endoftext|>\nAssistant:hello<|endoftext|>\n"
        "Human: bye<|endoftext|>\nAssistant:ok<|endoftext|>\n"
    )
    trained = tok.decode([x for x in labels if x != IGNORE_INDEX])
    assert trained == "hello<|endoftext|>\nok<|endoftext|>\n"  # every assistant turn trains
    alpaca = tok.decode(make_encoder(tok, "alpaca").encode(s)[0])
    assert alpaca.startswith("Be brief.### Instruction:\nhi\n\n### Response:\nhello<|endoftext|>")
    assert set(TEMPLATES) >= {"default", "empty", "alpaca", "chatml", "qwen", "llama3"}
    # truncation follows LLaMA-Factory's infer_seqlen
    assert infer_seqlen(10, 20, 100) == (10, 20)
    assert infer_seqlen(10, 200, 100) == (10, 90)
    assert infer_seqlen(300, 10, 100) == (90, 10)
    assert infer_seqlen(80, 120, 100) == (40, 60)
    short_ids, short_labels = make_encoder(tok, "default", max_length=8).encode(s)
    assert len(short_ids) <= 8 and len(short_ids) == len(short_labels)


def test_chat_template_and_plain_fallbacks(tiny: dict[str, Path]) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny["base"])
    s = Sample(turns=(Turn("user", "Name a color."), Turn("assistant", "Blue.")))
    plain = make_encoder(tok)  # no chat template, no name: the documented plain template
    ids, labels = plain.encode(s)
    assert plain.description == "plain"
    assert tok.decode(ids) == "Name a color.\nBlue.<|endoftext|>"
    assert tok.decode([x for x in labels if x != IGNORE_INDEX]) == "Blue.<|endoftext|>"
    tok.chat_template = (
        "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}</s>{% endfor %}"
        "{% if add_generation_prompt %}<assistant>{% endif %}"
    )
    chat = make_encoder(tok)
    assert chat.description == "tokenizer.apply_chat_template"
    ids, labels = chat.encode(s)
    assert tok.decode(ids) == "<user>Name a color.</s><assistant>Blue.</s>"
    assert tok.decode([x for x in labels if x != IGNORE_INDEX]) == "Blue.</s>"
    del tok.chat_template
    with pytest.raises(ConfigError, match="not one dedup-audit reproduces"):
        make_encoder(AutoTokenizer.from_pretrained(tiny["base"]), "mistral")


def test_lora_adapter_checkpoint_scored_via_peft(tiny: dict[str, Path]) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    run = tiny["lora_run"]
    (target,) = find_checkpoints(run)
    assert target.adapter and target.step == 30
    rows = score_run(
        run,
        tiny["train"],
        heldout=tiny["heldout"],
        base_model=tiny["base"],
        template="default",
        max_length=CUTOFF,
        device="cpu",
        progress=False,
    )
    base_train, lora_train = by(rows, "base", "train"), by(rows, "checkpoint-30", "train")
    assert mean(lora_train.values()) < mean(base_train.values()) - 0.1
    assert mean(lora_train.values()) < mean(by(rows, "checkpoint-30", "heldout").values())
    # same number as a manual peft forward pass on one record
    tok = AutoTokenizer.from_pretrained(tiny["base"])
    rec = load_records(tiny["train"])[3]
    ids, labels = make_encoder(tok, "default", CUTOFF).encode(rec.sample)
    model = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(tiny["base"]), str(run / "checkpoint-30")
    )
    model.eval()
    with torch.no_grad():
        manual = model(input_ids=torch.tensor([ids]), labels=torch.tensor([labels])).loss
    assert lora_train[rec.id] == pytest.approx(float(manual), rel=1e-4)


def test_run_yaml_and_checkpoint_discovery(tmp_path: Path) -> None:
    (tmp_path / "checkpoint-100").mkdir()
    (tmp_path / "checkpoint-20").mkdir()
    (tmp_path / "checkpoint-20" / "trainer_state.json").write_text(
        '{"epoch": 1.0, "global_step": 20}'
    )
    (tmp_path / "checkpoint-x").mkdir()
    (tmp_path / "train.yaml").write_text(
        "model_name_or_path: m\ntemplate: qwen  # chat\ncutoff_len: 512\n"
    )
    assert [(t.name, t.step) for t in find_checkpoints(tmp_path)] == [
        ("checkpoint-20", 20),
        ("checkpoint-100", 100),
    ]
    assert find_checkpoints(tmp_path)[0].epoch == 1.0
    assert math.isnan(find_checkpoints(tmp_path)[1].epoch)
    assert read_run_template(tmp_path) == ("qwen", 512)
    assert read_run_template(RUN) == ("default", 128)


def test_bad_inputs_have_clear_errors(tiny: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no checkpoint"):
        score_run(tmp_path, tiny["train"], progress=False)
    with pytest.raises(InputError, match="not a folder"):
        score_run(tmp_path / "missing", tiny["train"], progress=False)
    with pytest.raises(ConfigError, match="batch-size"):
        score_run(tiny["run"], tiny["train"], batch_size=0, progress=False)
    with pytest.raises(ConfigError, match="--device"):
        score_run(tiny["run"], tiny["train"], device="tpu", progress=False)
    out = tmp_path / "l.jsonl"
    write_loss_rows([], out)
    with pytest.raises(OutputError, match="--force"):
        write_loss_rows([], out)


def test_cli_losses(tiny: dict[str, Path], tmp_path: Path) -> None:
    from dedup_audit.cli import cli

    out = tmp_path / "losses.jsonl"
    args = [
        "losses",
        str(tiny["run"]),
        "--data",
        str(tiny["train"]),
        "--heldout",
        str(tiny["heldout"]),
        "--device",
        "cpu",
        "-o",
        str(out),
    ]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert "checkpoint-30" in res.output and "heldout mean" in res.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == N_TRAIN + N_HELD
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 2 and "--force" in again.output
    same = CliRunner().invoke(cli, [*args, "--force"])
    assert same.exit_code == 0
    assert out.read_text() == "\n".join(json.dumps(r) for r in rows) + "\n"  # deterministic
    bad = CliRunner().invoke(cli, ["losses", str(tiny["run"]), "-o", str(tmp_path / "x.jsonl")])
    assert bad.exit_code == 2 and "--data" in bad.output
    assert "Example" in CliRunner().invoke(cli, ["losses", "--help"]).output


def test_recorded_sample_run_matches_scorer_encoding() -> None:
    """The committed LLaMA-Factory run: the recorder's step-0 rows (computed inside LLaMA-Factory's
    trainer from its own tokenization) equal the scorer's base-model rows, which checks that the
    scorer reproduces LLaMA-Factory's template, masking and cutoff."""
    post = {
        (r["key"], r["checkpoint"]): r
        for r in map(json.loads, (RUN / "losses.jsonl").read_text().splitlines())
    }
    rec = [json.loads(x) for x in (RUN / "recorded_losses.jsonl").read_text().splitlines()]
    first = [r for r in rec if r["step"] == 0 and r["split"] == "train"]
    assert len(first) >= 4
    for r in first:
        p = post[(r["key"], "base")]
        assert r["n_tokens"] == p["n_tokens"]
        assert r["loss"] == pytest.approx(p["loss"], abs=1e-4)


def _bare_run(tiny: dict[str, Path], where: Path) -> Path:
    """The tiny run as `llamafactory-cli train` leaves it: checkpoints, no YAML."""
    import shutil

    shutil.copytree(tiny["run"] / "checkpoint-30", where / "checkpoint-30")
    return where


def test_config_yaml_gives_the_run_settings_and_data(tiny: dict[str, Path], tmp_path: Path) -> None:
    """--config train.yaml: template, cutoff_len and dataset/dataset_dir of the user's YAML give
    the same rows as the explicit flags, on a run folder that holds no YAML."""
    run = _bare_run(tiny, tmp_path / "run")
    data_dir = tiny["train"].parent
    (data_dir / "dataset_info.json").write_text(
        json.dumps({"tiny_train": {"file_name": "train.json"}}), encoding="utf-8"
    )
    yaml_path = tmp_path / "train.yaml"
    yaml_path.write_text(
        "### model\nmodel_name_or_path: base\nstage: sft\nfinetuning_type: full\n"
        f"dataset: tiny_train\ndataset_dir: {data_dir}\ntemplate: default\ncutoff_len: {CUTOFF}\n",
        encoding="utf-8",
    )
    cfg = read_run_config(yaml_path)
    assert (cfg.template, cfg.cutoff_len, cfg.datasets) == ("default", CUTOFF, ("tiny_train",))
    from_config = score_run(run, None, config=cfg, device="cpu", progress=False)
    from_flags = score_run(
        run, tiny["train"], template="default", max_length=CUTOFF, device="cpu", progress=False
    )
    strip = lambda rows: [{k: v for k, v in r.items() if k != "scored_with"} for r in rows]  # noqa: E731
    assert strip(from_config) == strip(from_flags)
    assert f"config {yaml_path}" in from_config[0]["scored_with"]
    # no YAML, no --config, no flags: exit 2 naming them, unless --guess-settings (recorded)
    from dedup_audit.cli import cli

    out = tmp_path / "l.jsonl"
    base = ["losses", str(run), "--data", str(tiny["train"]), "--device", "cpu", "-o", str(out)]
    res = CliRunner().invoke(cli, base)
    assert res.exit_code == 2 and "--config train.yaml" in res.output and "--template" in res.output
    assert not out.exists()
    res = CliRunner().invoke(cli, [*base, "--guess-settings", "-q"])
    assert res.exit_code == 0, res.output
    assert "Loading weights" not in res.output and res.output == ""  # -q: no loading bars
    row = json.loads(out.read_text().splitlines()[0])
    assert row["scored_with"].startswith("plain, cutoff_len none (guessed")
    # an unknown --template is refused up front, with the known ones listed
    res = CliRunner().invoke(cli, [*base, "--template", "mistral", "--force"])
    assert res.exit_code == 2 and "known: default, empty, alpaca" in res.output


def test_checkpoint_without_weights_fails_up_front(tiny: dict[str, Path], tmp_path: Path) -> None:
    from dedup_audit.cli import cli

    run = _bare_run(tiny, tmp_path / "run")
    broken = run / "checkpoint-60"
    broken.mkdir()
    (broken / "config.json").write_text("{}", encoding="utf-8")
    res = CliRunner().invoke(
        cli,
        [
            "losses",
            str(run),
            "--data",
            str(tiny["train"]),
            "--template",
            "default",
            "-o",
            str(tmp_path / "l.jsonl"),
        ],
    )
    assert res.exit_code == 2, res.output
    assert "checkpoint-60: no model weights" in res.output and "Traceback" not in res.output


def test_data_is_checked_against_the_recorded_run(tmp_path: Path) -> None:
    """trainer_state.json of the recorded run: 248 steps, 8 epochs, batch 8 -> 31 steps per
    epoch, so 241-248 rows fit (with gradient accumulation unknown, a few multiples too); 300
    rows do not. The issue's case: the 999-row alpaca demo against a 456-row run."""
    assert "244 rows fit" in (check_rows_against_run(RUN, 244, "train.json") or "")
    with pytest.raises(InputError, match="300 training rows do not fit the run"):
        check_rows_against_run(RUN, 300, "other.json")
    (tmp_path / "run456").mkdir()
    (tmp_path / "run456" / "trainer_state.json").write_text(
        json.dumps({"max_steps": 228, "num_train_epochs": 4, "train_batch_size": 8}),
        encoding="utf-8",
    )
    assert check_rows_against_run(tmp_path / "run456", 456, "train.json")
    with pytest.raises(InputError, match="999 training rows do not fit the run"):
        check_rows_against_run(tmp_path / "run456", 999, "alpaca_en_demo.json")
    cfg_path = tmp_path / "train.yaml"
    cfg_path.write_text(
        (RUN / "training_args.yaml").read_text(encoding="utf-8") + "val_size: 0.1\n",
        encoding="utf-8",
    )
    # with val_size 0.1, 244 rows leave 220 to train on: 28 steps, not 31
    with pytest.raises(InputError, match="220 training rows"):
        check_rows_against_run(RUN, 244, "train.json", read_run_config(cfg_path))


def test_recorded_run_yaml_reads_its_dataset(tmp_path: Path) -> None:
    """The recorded run's YAML with dataset_dir pointing at sample_data/run loads the 244 rows
    it trained on (dataset dedup_demo_train in its dataset_info.json)."""
    from dedup_audit.training.scorer import load_training_records

    text = (RUN / "training_args.yaml").read_text(encoding="utf-8")
    text = text.replace('dataset_dir: "benchmarks/_work/data"', f'dataset_dir: "{RUN}"')
    (tmp_path / "train.yaml").write_text(text, encoding="utf-8")
    cfg = read_run_config(tmp_path / "train.yaml")
    assert (cfg.template, cfg.cutoff_len, cfg.finetuning_type) == ("default", 128, "full")
    records, name = load_training_records(None, dataset_info=None, dataset_name=None, config=cfg)
    assert name == "dedup_demo_train" and len(records) == 244
    assert check_rows_against_run(RUN, len(records), name, cfg)
    (tmp_path / "bad.yaml").write_text("stage: dpo\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="sft"):
        read_run_config(tmp_path / "bad.yaml")


def test_threads_default_and_choice() -> None:
    before = torch.get_num_threads()
    try:
        assert set_threads(1, "cpu") == 1 and torch.get_num_threads() == 1
        import os

        assert set_threads(None, "cpu") == max(1, min(8, (os.cpu_count() or 2) // 2))
        assert set_threads(3, "cuda") is None
    finally:
        torch.set_num_threads(before)


def test_no_tokenizer_length_warning_when_a_max_length_is_given(
    tiny: dict[str, Path], tmp_path: Path
) -> None:
    """A tokenizer saved with a small model_max_length warns on every long text it encodes;
    with --max-length the scorer truncates itself, so that warning is noise and must not show."""
    import logging

    from transformers.utils import logging as hf_logging

    from dedup_audit.training.scorer import load_tokenizer

    hf_logging.set_verbosity_warning()  # an earlier `-q` run may have silenced transformers
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    handler = Keep()
    logging.getLogger("transformers").addHandler(handler)
    try:
        run = _bare_run(tiny, tmp_path / "run")
        cfg_path = run / "checkpoint-30" / "tokenizer_config.json"
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
        cfg["model_max_length"] = 16
        cfg_path.write_text(json.dumps(cfg), encoding="utf-8")
        load_tokenizer(run / "checkpoint-30").encode("word " * 40)
        assert any("Token indices sequence length" in m for m in seen)  # the warning exists
        seen.clear()
        score_run(
            run, tiny["train"], template="default", max_length=CUTOFF, device="cpu", progress=False
        )
        assert not any("Token indices sequence length" in m for m in seen), seen
    finally:
        logging.getLogger("transformers").removeHandler(handler)
