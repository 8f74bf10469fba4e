"""A real, reproducible memorization run: LLaMA-Factory SFT on CPU with injected duplicates.

Why: the memorization report (issue 3) must be shown on a real training run, not on a synthetic
curve. This script builds everything locally (no hub downloads), trains a tiny random Llama with
LLaMA-Factory's own trainer for several epochs, records per-sample losses while training (the
recorder callback) and after training (the post-hoc scorer over every epoch checkpoint), and copies
a small recorded output to sample_data/run/ so tests and the README demo run in seconds.

Usage (from the repository root, any Python >= 3.10):

    python3 benchmarks/memorization_run.py                # venv + data + train + score + copy
    python3 benchmarks/memorization_run.py --no-copy      # leave sample_data/run/ untouched

Steps:
1. venv at benchmarks/_work/venv (gitignored): torch==2.13.0 first (the local CPU wheel), then
   llamafactory==0.9.5 constrained to that torch, then torchvision/torchaudio are uninstalled
   (PyPI's wheels break next to CPU torch) and dedup-audit is installed editable without deps.
   llamafactory 0.9.5 imports torchaudio unguarded in data/mm_plugin.py; the inner stage puts a
   stub module in sys.modules before importing it (text-only SFT never calls it). Nothing in
   site-packages is edited.
2. Data: rows of LLaMA-Factory's alpaca_en_demo.json (natural duplicates dropped, short rows only),
   a held-out split of unique rows never trained on, and injected duplicates: exact copies x2, x3,
   x5 and near-duplicates (a few word edits). duplicates_manifest.json says which is which.
3. A byte-level BPE tokenizer trained on this text and a random Llama (LlamaConfig), saved locally.
4. Training with llamafactory.train.tuner.run_exp (stage sft, full fine-tuning, logging_steps 1,
   save_strategy epoch, eval on the held-out split each epoch), OMP_NUM_THREADS=1, with
   dedup_audit.training.recorder.PerSampleLossCallback recording per-sample losses.
5. dedup_audit.training.scorer.score_run over the base model and every checkpoint.
6. Copies logs, YAML, data, manifest and losses (no weights) to sample_data/run/.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "benchmarks" / "_work"
VENV = WORK / "venv"
CONFIG_DIR = ROOT / "benchmarks" / "memorization"
SOURCE_DATA = (
    Path(os.environ.get("DEDUP_AUDIT_SHARED_DATA", str(ROOT.parent / "shared" / "data")))
    / "llamafactory"
)
TORCH_SPEC = os.environ.get("TORCH_SPEC", "torch==2.13.0")
LLAMAFACTORY_SPEC = "llamafactory==0.9.5"

# Data design: counts of source rows per group. Train rows = singletons + sum(copies).
SEED = 42
N_HELDOUT = 40
N_SINGLETONS = 120
EXACT_GROUPS = {2: 15, 3: 10, 5: 8}  # copies -> number of source rows copied that often
NEAR_PAIRS = 12  # source rows that get one edited variant each
MAX_WORDS = 80  # instruction + input + output, keeps most rows under cutoff_len tokens

# Model / tokenizer sizes (tiny, random init).
VOCAB_SIZE = 3000
HIDDEN = 256
LAYERS = 4
HEADS = 4
INTERMEDIATE = 512


def log(msg: str) -> None:
    print(f"[memorization_run] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# Stage 1: the venv (runs under any python3)
# --------------------------------------------------------------------------------------------


def venv_python() -> Path:
    return VENV / "bin" / "python"


def ensure_venv() -> None:
    """Create the benchmark venv once; a marker file records that all steps finished."""
    marker = VENV / ".dedup_audit_ready"
    if marker.exists():
        return
    WORK.mkdir(parents=True, exist_ok=True)
    constraints = WORK / "constraints.txt"
    constraints.write_text(TORCH_SPEC + "\n", encoding="utf-8")
    py = str(venv_python())
    steps: list[list[str]] = [
        [sys.executable, "-m", "venv", str(VENV)],
        [py, "-m", "pip", "install", "-q", TORCH_SPEC],
        [py, "-m", "pip", "install", "-q", LLAMAFACTORY_SPEC, "-c", str(constraints)],
        [py, "-m", "pip", "uninstall", "-y", "torchvision", "torchaudio"],
        [py, "-m", "pip", "install", "-q", "--no-deps", "-e", str(ROOT)],
    ]
    for cmd in steps:
        log("$ " + " ".join(cmd))
        subprocess.run(cmd, check=True)
    marker.write_text("ok\n", encoding="utf-8")


# --------------------------------------------------------------------------------------------
# Stage 2: data with injected duplicates
# --------------------------------------------------------------------------------------------


def _words(row: dict[str, str]) -> int:
    return len(" ".join([row["instruction"], row["input"], row["output"]]).split())


def near_edit(text: str, rng: random.Random, n_edits: int = 3) -> tuple[str, list[str]]:
    """A few word-level edits (delete, swap neighbours, duplicate) that keep the text readable
    and its word-shingle Jaccard high: what a paraphrasing pipeline or a sloppy merge leaves."""
    words = text.split(" ")
    edits: list[str] = []
    for _ in range(n_edits):
        if len(words) < 4:
            break
        i = rng.randrange(1, len(words) - 1)
        op = rng.choice(["delete", "swap", "duplicate"])
        if op == "delete":
            edits.append(f"delete {words[i]!r}")
            del words[i]
        elif op == "swap":
            edits.append(f"swap {words[i]!r} {words[i + 1]!r}")
            words[i], words[i + 1] = words[i + 1], words[i]
        else:
            edits.append(f"duplicate {words[i]!r}")
            words.insert(i, words[i])
    return " ".join(words), edits


def prepare_data(data_dir: Path) -> dict[str, Any]:
    """Write train.json, heldout.json, dataset_info.json and duplicates_manifest.json."""
    src_path = SOURCE_DATA / "alpaca_en_demo.json"
    rows: list[dict[str, str]] = json.loads(src_path.read_text(encoding="utf-8"))
    # Drop the demo's own natural duplicates (same prompt or same answer) so every injected group
    # is the only repetition of its content, and keep short rows so cutoff_len rarely truncates.
    prompt_count: dict[tuple[str, str], int] = {}
    output_count: dict[str, int] = {}
    for r in rows:
        prompt_count[(r["instruction"], r["input"])] = (
            prompt_count.get((r["instruction"], r["input"]), 0) + 1
        )
        output_count[r["output"]] = output_count.get(r["output"], 0) + 1
    candidates = [
        i
        for i, r in enumerate(rows)
        if prompt_count[(r["instruction"], r["input"])] == 1
        and output_count[r["output"]] == 1
        and _words(r) <= MAX_WORDS
        and len(r["output"].split()) >= 8
    ]
    rng = random.Random(SEED)
    rng.shuffle(candidates)
    need = N_HELDOUT + N_SINGLETONS + sum(EXACT_GROUPS.values()) + NEAR_PAIRS
    if len(candidates) < need:
        raise SystemExit(f"only {len(candidates)} short unique rows in {src_path}, need {need}")
    pos = 0

    def take(n: int) -> list[int]:
        nonlocal pos
        out = candidates[pos : pos + n]
        pos += n
        return out

    heldout_src = take(N_HELDOUT)
    singles_src = take(N_SINGLETONS)
    entries: list[tuple[dict[str, str], dict[str, Any]]] = []  # (row, provenance)
    groups: list[dict[str, Any]] = []
    for i in singles_src:
        entries.append((dict(rows[i]), {"source_row": i, "group": None}))
    gid = 0
    for copies, n_groups in sorted(EXACT_GROUPS.items()):
        for i in take(n_groups):
            groups.append({"group": gid, "kind": "exact", "copies": copies, "source_row": i})
            for c in range(copies):
                entries.append((dict(rows[i]), {"source_row": i, "group": gid, "copy": c}))
            gid += 1
    for i in take(NEAR_PAIRS):
        variant = dict(rows[i])
        variant["output"], edits = near_edit(rows[i]["output"], rng)
        groups.append({"group": gid, "kind": "near", "copies": 2, "source_row": i, "edits": edits})
        entries.append((dict(rows[i]), {"source_row": i, "group": gid, "copy": 0}))
        entries.append((variant, {"source_row": i, "group": gid, "copy": 1, "edited": True}))
        gid += 1
    rng.shuffle(entries)
    train = [row for row, _ in entries]
    for g in groups:
        g["train_rows"] = [k for k, (_, p) in enumerate(entries) if p["group"] == g["group"]]
        g["ids"] = [f"train.json:{k}" for k in g["train_rows"]]
    heldout = [dict(rows[i]) for i in heldout_src]

    data_dir.mkdir(parents=True, exist_ok=True)
    _write_json(data_dir / "train.json", train)
    _write_json(data_dir / "heldout.json", heldout)
    _write_json(
        data_dir / "dataset_info.json",
        {
            "dedup_demo_train": {"file_name": "train.json"},
            "dedup_demo_heldout": {"file_name": "heldout.json"},
        },
    )
    manifest = {
        "source": "LLaMA-Factory data/alpaca_en_demo.json (see SOURCES.md)",
        "seed": SEED,
        "n_train_rows": len(train),
        "n_heldout_rows": len(heldout),
        "design": {
            "singletons": N_SINGLETONS,
            "exact_groups": {str(k): v for k, v in sorted(EXACT_GROUPS.items())},
            "near_pairs": NEAR_PAIRS,
            "max_words": MAX_WORDS,
        },
        "groups": groups,
        "train_source_rows": [p["source_row"] for _, p in entries],
        "heldout_source_rows": heldout_src,
    }
    _write_json(data_dir / "duplicates_manifest.json", manifest)
    log(f"data: {len(train)} train rows ({len(groups)} duplicate groups), {len(heldout)} held out")
    return manifest


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


# --------------------------------------------------------------------------------------------
# Stage 3: tokenizer + random model
# --------------------------------------------------------------------------------------------


def build_base_model(data_dir: Path, model_dir: Path) -> None:
    """Train a byte-level BPE on the run's own text and save a random Llama next to it."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    texts: list[str] = []
    for name in ("train.json", "heldout.json"):
        for r in json.loads((data_dir / name).read_text(encoding="utf-8")):
            texts += [r["instruction"], r["input"], r["output"]]
    # Template words too, so "Human:" / "Assistant:" are single tokens as in a real vocabulary.
    texts += ["Human: ", "\nAssistant:", "System: "] * 50
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=["<|endoftext|>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<pad>", model_max_length=512
    )
    torch.manual_seed(SEED)
    config = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=HIDDEN,
        intermediate_size=INTERMEDIATE,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        num_key_value_heads=HEADS,
        max_position_embeddings=512,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
        bos_token_id=None,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config)
    model_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(model_dir)
    fast.save_pretrained(model_dir)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"model: random Llama {n_params / 1e6:.2f}M params, vocab {len(fast)}")


# --------------------------------------------------------------------------------------------
# Stage 4: LLaMA-Factory training
# --------------------------------------------------------------------------------------------


def stub_torchaudio() -> None:
    """llamafactory.data.mm_plugin imports torchaudio at module level although text SFT never
    uses it, and PyPI's torchaudio wheel does not load next to the CPU torch wheel. A stub with a
    real ModuleSpec (so importlib.util.find_spec works) stands in; touching it raises."""
    import importlib.machinery
    import types

    class _Stub(types.ModuleType):
        def __getattr__(self, name: str) -> Any:
            if name.startswith("__"):
                raise AttributeError(name)
            raise ImportError(
                "torchaudio is stubbed by benchmarks/memorization_run.py (text-only run)"
            )

    mod = _Stub("torchaudio")
    mod.__spec__ = importlib.machinery.ModuleSpec("torchaudio", None)
    sys.modules.setdefault("torchaudio", mod)


def render_yaml(model_dir: Path, data_dir: Path, out_dir: Path, epochs: int | None) -> str:
    text = (CONFIG_DIR / "sft.yaml").read_text(encoding="utf-8")
    text = text.replace("{base_model}", str(model_dir))
    text = text.replace("{dataset_dir}", str(data_dir))
    text = text.replace("{output_dir}", str(out_dir))
    if epochs is not None:
        text = re.sub(r"(?m)^num_train_epochs: .*$", f"num_train_epochs: {epochs}", text)
    return text


def train(yaml_text: str, out_dir: Path, recorded: Path) -> float:
    import yaml

    stub_torchaudio()
    from llamafactory.train.tuner import run_exp

    from dedup_audit.training.recorder import PerSampleLossCallback

    args = yaml.safe_load(yaml_text)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    t0 = time.time()
    run_exp(args=args, callbacks=[PerSampleLossCallback(recorded)])
    return time.time() - t0


# --------------------------------------------------------------------------------------------
# Stage 5+6: score and copy
# --------------------------------------------------------------------------------------------


def score(out_dir: Path, data_dir: Path, model_dir: Path, losses: Path, cutoff: int) -> float:
    from dedup_audit.training.scorer import score_run, write_loss_rows

    t0 = time.time()
    rows = score_run(
        out_dir,
        data_dir / "train.json",
        heldout=data_dir / "heldout.json",
        base_model=model_dir,
        device="cpu",
        batch_size=16,
        max_length=cutoff,
        template="default",
        progress=True,
    )
    write_loss_rows(rows, losses, force=True)
    return time.time() - t0


def join_recorded(recorded: Path, data_dir: Path, model_dir: Path, cutoff: int, dest: Path) -> None:
    """Map the recorder's label-hash keys back to dataset ids (train + held out)."""
    from dedup_audit.training.recorder import join_recorded_losses, read_jsonl
    from dedup_audit.training.scorer import load_records, load_tokenizer, write_loss_rows

    tokenizer = load_tokenizer(model_dir)
    rows = read_jsonl(recorded)
    records = load_records(data_dir / "train.json") + load_records(data_dir / "heldout.json")
    joined, unmatched = join_recorded_losses(
        rows, records, tokenizer, template="default", max_length=cutoff
    )
    log(f"recorder: {len(joined)} rows joined, {len(unmatched)} unmatched")
    write_loss_rows(joined, dest, force=True)


def summarize(losses: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Mean loss per group size and epoch: the check that duplicates were memorized most."""
    copies_of: dict[str, int] = {}
    for g in manifest["groups"]:
        for i in g["ids"]:
            copies_of[i] = g["copies"] if g["kind"] == "exact" else -2
    table: dict[str, dict[str, list[float]]] = {}
    for line in losses.read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        if r["split"] == "heldout":
            label = "heldout"
        else:
            c = copies_of.get(r["key"], 1)
            label = "near x2" if c == -2 else f"exact x{c}"
        table.setdefault(label, {}).setdefault(f"{r['epoch']:.0f}", []).append(r["loss"])
    return {
        g: {e: round(sum(v) / len(v), 3) for e, v in sorted(ep.items(), key=lambda x: float(x[0]))}
        for g, ep in sorted(table.items())
    }


SAMPLE_FILES = (
    "trainer_log.jsonl",
    "trainer_state.json",
    "training_args.yaml",
    "losses.jsonl",
    "recorded_losses.jsonl",
    "train.json",
    "heldout.json",
    "dataset_info.json",
    "duplicates_manifest.json",
)


def inner(ns: argparse.Namespace) -> None:
    data_dir = WORK / "data"
    model_dir = WORK / "base_model"
    out_dir = WORK / "run"
    losses = WORK / "losses.jsonl"
    if ns.copy_only:
        summary_file = json.loads((WORK / "summary.json").read_text(encoding="utf-8"))
        copy_outputs(Path(ns.out), data_dir, out_dir, losses, summary_file)
        return
    timings: dict[str, float] = {}
    t0 = time.time()
    manifest = prepare_data(data_dir)
    build_base_model(data_dir, model_dir)
    timings["prepare_s"] = round(time.time() - t0, 1)
    yaml_text = render_yaml(model_dir, data_dir, out_dir, ns.epochs)
    (WORK / "training_args.yaml").write_text(yaml_text, encoding="utf-8")
    recorded_raw = WORK / "recorded_raw.jsonl"
    timings["train_s"] = round(train(yaml_text, out_dir, recorded_raw), 1)
    import yaml

    cutoff = int(yaml.safe_load(yaml_text)["cutoff_len"])
    timings["score_s"] = round(score(out_dir, data_dir, model_dir, losses, cutoff), 1)
    join_recorded(recorded_raw, data_dir, model_dir, cutoff, WORK / "recorded_losses.jsonl")
    summary = summarize(losses, manifest)
    log("mean post-hoc loss per group and epoch:\n" + json.dumps(summary, indent=1))
    summary_obj = {"timings": timings, "mean_loss": summary}
    _write_json(WORK / "summary.json", summary_obj)
    log(f"timings: {timings}")
    if not ns.no_copy:
        copy_outputs(Path(ns.out), data_dir, out_dir, losses, summary_obj)


def copy_outputs(
    dest: Path, data_dir: Path, out_dir: Path, losses: Path, summary: dict[str, Any]
) -> None:
    """The small recorded output (no weights) for sample_data/run/."""
    dest.mkdir(parents=True, exist_ok=True)
    sources = {
        "trainer_log.jsonl": out_dir / "trainer_log.jsonl",
        "trainer_state.json": out_dir / "trainer_state.json",
        "training_args.yaml": WORK / "training_args.yaml",
        "losses.jsonl": losses,
        "recorded_losses.jsonl": WORK / "recorded_losses.jsonl",
        "train.json": data_dir / "train.json",
        "heldout.json": data_dir / "heldout.json",
        "dataset_info.json": data_dir / "dataset_info.json",
        "duplicates_manifest.json": data_dir / "duplicates_manifest.json",
    }
    for name in SAMPLE_FILES:
        shutil.copyfile(sources[name], dest / name)
    # Paths in the YAML point into benchmarks/_work; make them repo-relative for readers.
    y = (dest / "training_args.yaml").read_text(encoding="utf-8").replace(str(ROOT) + "/", "")
    (dest / "training_args.yaml").write_text(y, encoding="utf-8")
    _write_json(dest / "run_summary.json", summary)
    log(f"copied recorded output to {dest}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--epochs", type=int, default=None, help="override num_train_epochs")
    p.add_argument("--out", default=str(ROOT / "sample_data" / "run"), help="recorded output dir")
    p.add_argument("--no-copy", action="store_true", help="do not write the recorded output")
    p.add_argument(
        "--copy-only", action="store_true", help="only copy the last run's output (no training)"
    )
    ns = p.parse_args()
    if ns.inner:
        inner(ns)
        return
    ensure_venv()
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    env.setdefault("DISABLE_VERSION_CHECK", "1")
    cmd = [str(venv_python()), str(Path(__file__).resolve()), "--inner", *sys.argv[1:]]
    rc = subprocess.run(cmd, env=env, cwd=str(ROOT)).returncode
    if rc == 0 and not ns.copy_only:
        rc = write_report(Path(ns.out) if not ns.no_copy else None)
    sys.exit(rc)


def write_report(recorded: Path | None) -> int:
    """The memorization report on this run, with the interpreter that launched the script (the
    project's environment; the benchmark venv lacks the report's plotting/statistics deps)."""
    run = recorded if recorded is not None else WORK / "run"
    data = (recorded or WORK / "data") / "train.json"
    losses = (recorded or WORK) / "losses.jsonl"
    targs = (recorded or WORK) / "training_args.yaml"
    cmd = [
        sys.executable,
        "-m",
        "dedup_audit",
        "report",
        str(run),
        "--data",
        str(data),
        "--losses",
        str(losses),
        "--training-args",
        str(targs),
        "-o",
        str(WORK / "report"),
        "--force",
    ]
    probe = subprocess.run(
        [sys.executable, "-c", "import dedup_audit.commands.report"], capture_output=True
    )
    if probe.returncode != 0:
        log("report skipped: this interpreter lacks dedup-audit's dependencies; run:")
        log("  .venv/bin/python " + " ".join(cmd[1:]))
        return 0
    log("$ " + " ".join(cmd))
    return subprocess.run(cmd, cwd=str(ROOT)).returncode


if __name__ == "__main__":
    main()
