"""Contamination by rephrased benchmark items: recall, precision and distractor flags at defaults.

Development set (Yang et al. 2023, LLM-Decontaminator): GPT-4 rephrasings of MMLU sociology
(197 non-empty) and HumanEval (147 non-empty), each index-aligned with its original. The
rephrasings are mixed into ~2000 unrelated SFT rows (LLaMA-Factory alpaca_en_demo 999 + the first
1000 GPTeacher Toolformer rows; `--distractors gsm8k` uses 2000 GSM8K train rows instead, the
same-domain case) as alpaca rows (rephrasing = instruction). The references are the originals in
their native files: sociology_test.csv (MMLU, no header) and HumanEval.jsonl ({"text"}).

Defaults: `scan --semantic --against ...` (packaged all-MiniLM-L6-v2, false-flag rate 0.001).
A rephrasing counts as found when its row is flagged by any method and matched to its own
original; a flagged distractor is a false flag.

    .venv/bin/python benchmarks/contamination_dev.py
    .venv/bin/python benchmarks/contamination_dev.py --distractors gsm8k
    .venv/bin/python benchmarks/contamination_dev.py --heldout gsm8k

`--heldout gsm8k` is a held-out, same-domain case the defaults were not tuned on: the reference
is GSM8K test (1319 questions, native {question, answer}); the training rows are 2000 GSM8K
train rows plus heavy rewrites of 150 test questions (benchmarks/gsm8k_planted.py's heavy edit:
context sentences reordered, a third of the words swapped for synonyms or dropped, numbers kept),
each with its test answer; the 2000 train rows are the distractors (GSM8K train and test are
disjoint sets of problems, though some train problems are close to test ones).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
D = Path("/work/shared/data")
DEC = D / "llm_decontaminator"


def distractors(kind: str, n: int, seed: int) -> list[dict[str, str]]:
    if kind == "gsm8k":
        rows = json.loads((D / "gsm8k/train_alpaca.json").read_text(encoding="utf-8"))
        return [{k: r[k] for k in ("instruction", "input", "output")} for r in rows[:n]]
    alp = json.loads((D / "llamafactory/alpaca_en_demo.json").read_text(encoding="utf-8"))
    gpt = json.loads(
        (D / "gpteacher/toolformer-dedupe-only-dataset.json").read_text(encoding="utf-8")
    )
    rows = [{k: r[k] for k in ("instruction", "input", "output")} for r in alp]
    rows += [
        {"instruction": r["instruction"], "input": r["input"], "output": r["response"]}
        for r in gpt[: n - len(rows)]
    ]
    return rows[:n]


def build(kind: str, n: int, seed: int) -> tuple[list[dict[str, str]], dict[int, tuple[str, int]]]:
    """(training rows, truth: training row -> (reference file, reference row))."""
    rng = random.Random(seed)
    items: list[tuple[dict[str, str], tuple[str, int] | None]] = [
        (r, None) for r in distractors(kind, n, seed)
    ]
    for ref, reph in (
        ("sociology_test.csv", "sociology_test_rephrase_english_filtered_question.jsonl"),
        ("HumanEval.jsonl", "humaneval_python.jsonl"),
    ):
        lines = (DEC / reph).read_text(encoding="utf-8").splitlines()
        for j, line in enumerate(lines):
            text = json.loads(line)["text"]
            if text.strip():
                row = {"instruction": text, "input": "", "output": "Sure."}
                items.insert(rng.randint(0, len(items)), (row, (ref, j)))
    truth = {i: t for i, (_, t) in enumerate(items) if t is not None}
    return [r for r, _ in items], truth


def build_gsm8k_heldout(
    n: int, seed: int, plant: int = 150
) -> tuple[list[dict[str, str]], dict[int, tuple[str, int]]]:
    """GSM8K train distractors + heavy rewrites of `plant` GSM8K test questions."""
    from gsm8k_planted import plant as rewrite

    rng = random.Random(seed)
    items: list[tuple[dict[str, str], tuple[str, int] | None]] = [
        (r, None) for r in distractors("gsm8k", n, seed)
    ]
    test = [json.loads(x) for x in (D / "gsm8k/test.jsonl").read_text("utf-8").splitlines()]
    for j in sorted(rng.sample(range(len(test)), plant)):
        row = {"instruction": test[j]["question"], "input": "", "output": test[j]["answer"]}
        items.insert(rng.randint(0, len(items)), (rewrite(row, "heavy", rng), ("test.jsonl", j)))
    truth = {i: t for i, (_, t) in enumerate(items) if t is not None}
    return [r for r, _ in items], truth


def build_humaneval_split(
    n: int, seed: int, out: Path
) -> tuple[list[dict[str, str]], dict[int, tuple[str, int]], Path, set[int]]:
    """Same-domain code: the reference is HumanEval's even-numbered programs; the training rows
    are the unrelated distractors, every GPT-4 rephrasing (of even programs: contamination; of
    odd ones: a HumanEval-style program for another task) and the odd programs themselves.
    Returns (rows, truth, reference file, rows that are same-domain negatives)."""
    rng = random.Random(seed)
    he = [json.loads(x)["text"] for x in (DEC / "HumanEval.jsonl").read_text("utf-8").splitlines()]
    reph = [
        json.loads(x)["text"]
        for x in (DEC / "humaneval_python.jsonl").read_text("utf-8").splitlines()
    ]
    ref = out / "humaneval_even.jsonl"
    ref.write_text("".join(json.dumps({"text": t}) + "\n" for t in he[::2]), encoding="utf-8")
    items: list[tuple[dict[str, str], tuple[str, int] | None, bool]] = [
        (r, None, False) for r in distractors("unrelated", n, seed)
    ]
    for j, text in enumerate(reph):
        if text.strip():
            row = {"instruction": text, "input": "", "output": "Sure."}
            truth = (ref.name, j // 2) if j % 2 == 0 else None
            items.insert(rng.randint(0, len(items)), (row, truth, j % 2 == 1))
    for j in range(1, len(he), 2):
        row = {"instruction": he[j], "input": "", "output": "Sure."}
        items.insert(rng.randint(0, len(items)), (row, None, True))
    truth_map = {i: t for i, (_, t, _) in enumerate(items) if t is not None}
    hard = {i for i, (_, _, h) in enumerate(items) if h}
    return [r for r, _, _ in items], truth_map, ref, hard


def native_humaneval(out: Path) -> Path:
    """HumanEval in its own layout ({task_id, prompt, canonical_solution, entry_point}), rebuilt
    from the {"text"} file: the prompt runs to the end of the last top-level function's
    docstring (helpers before it stay in the prompt, as in HumanEval), the rest is the solution."""
    rows = []
    lines = (DEC / "HumanEval.jsonl").read_text("utf-8").splitlines()
    for j, line in enumerate(lines):
        text = json.loads(line)["text"]
        main_def = list(re.finditer(r"^def\s+(\w+)", text, re.MULTILINE))[-1]
        doc = re.compile(r'("""|\'\'\')[\s\S]*?\1').search(text, main_def.end())
        end = doc.end() if doc else main_def.end()
        end = text.find("\n", end) + 1 or len(text)
        rows.append(
            {
                "task_id": f"HumanEval/{j}",
                "prompt": text[:end],
                "canonical_solution": text[end:],
                "test": "",
                "entry_point": main_def[1],
            }
        )
    path = out / "HumanEval_native.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--distractors", choices=["unrelated", "gsm8k"], default="unrelated")
    ap.add_argument("--heldout", choices=["gsm8k", "humaneval-split"], default=None)
    ap.add_argument(
        "--humaneval-format",
        choices=["text", "native"],
        default="text",
        help="the HumanEval reference as LLM-Decontaminator's {text} file or in HumanEval's "
        "own prompt / canonical_solution layout (rebuilt from it); rows stay matched by index",
    )
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--rate", type=float, default=0.001)
    ap.add_argument("--show", type=int, default=10, help="false flags to print")
    ap.add_argument("--out", type=Path, default=Path("/tmp/contamination_dev"))
    args = ap.parse_args()
    import sys

    from dedup_audit.config import ScanConfig, SemanticConfig
    from dedup_audit.pipeline import scan
    from dedup_audit.readers import load_dataset
    from dedup_audit.readers.reference import load_reference

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    args.out.mkdir(parents=True, exist_ok=True)
    hard: set[int] = set()
    if args.heldout == "gsm8k":
        rows, truth = build_gsm8k_heldout(args.n, args.seed)
        ref_paths = {"test.jsonl": D / "gsm8k/test.jsonl"}
    elif args.heldout == "humaneval-split":
        rows, truth, ref_file, hard = build_humaneval_split(args.n, args.seed, args.out)
        ref_paths = {ref_file.name: ref_file}
    else:
        rows, truth = build(args.distractors, args.n, args.seed)
        ref_paths = {n: DEC / n for n in ("sociology_test.csv", "HumanEval.jsonl")}
        if args.humaneval_format == "native":  # same row order: truth names stay valid
            ref_paths["HumanEval.jsonl"] = native_humaneval(args.out)
    path = args.out / "train.json"
    path.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    refs = {name: load_reference(p, None) for name, p in ref_paths.items()}
    cfg = ScanConfig(
        views=("full",),
        exact=False,
        near=False,
        semantic=SemanticConfig(
            enabled=True, cache_dir=str(args.out / "cache"), against_false_flag_rate=args.rate
        ),
    )
    t0 = time.perf_counter()
    result = scan(load_dataset(path), cfg, references=refs)
    wall = time.perf_counter() - t0
    flagged: dict[int, set[tuple[str, int]]] = {}
    methods: dict[int, set[str]] = {}
    for h in result.against:
        ref_row = int(h.ref_id.rsplit(":", 1)[1])
        flagged.setdefault(h.index, set()).add((h.reference, ref_row))
        methods.setdefault(h.index, set()).add(h.method)
    print("| reference | rephrasings | found | recall |")
    print("|---|---:|---:|---:|")
    for ref in refs:
        pos = [i for i, t in truth.items() if t[0] == ref]
        found = [i for i in pos if truth[i] in flagged.get(i, set())]
        print(f"| {ref} | {len(pos)} | {len(found)} | {len(found) / len(pos):.3f} |")
    tp = sum(1 for i in flagged if i in truth and truth[i] in flagged[i])
    wrong = sum(1 for i in flagged if i in truth and truth[i] not in flagged[i])
    fp = [i for i in flagged if i not in truth]
    print(
        f"\nrecall {tp / len(truth):.3f}  precision {tp / len(flagged):.3f}  "
        f"distractors flagged {len(fp)} of {len(rows) - len(truth)}  "
        f"(rephrasings matched to another item: {wrong})  scan {wall:.0f} s"
    )
    for cal in result.against_calibration:
        print(json.dumps(cal))
    if hard:
        print(
            f"same-domain negatives flagged: {len(set(fp) & hard)} of {len(hard)} (other HumanEval"
            f" programs and their rephrasings); unrelated rows flagged: {len(set(fp) - hard)}"
        )
    for i in fp[: args.show]:
        print("FP", i, sorted(methods[i]), rows[i]["instruction"][:100].replace("\n", " "))
        for ref, j in sorted(flagged[i]):
            print(
                "   =", ref, j, refs[ref].records[j].sample.turns[0].text[:100].replace("\n", " ")
            )
    missed = [i for i in truth if truth[i] not in flagged.get(i, set())]
    for i in missed[:15]:
        print("MISS", i, truth[i], rows[i]["instruction"][:100].replace("\n", " "))


if __name__ == "__main__":
    main()
