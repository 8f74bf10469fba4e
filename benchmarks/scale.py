"""Scale check: scan + clean on a large dataset built from real rows with planted duplicates.

Rows come from the shared real datasets (gsm8k train, GPTeacher Toolformer, alpaca_en_demo),
cycled; each later cycle shuffles the answer's words so rows stay distinct; then a share of rows is replaced by
exact copies and by near copies (a few word edits). Prints wall time, peak memory, and whether the
planted duplicates were found.

    .venv/bin/python benchmarks/scale.py --rows 100000
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import tempfile
import time
from pathlib import Path

from dedup_audit import ScanConfig, clean

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SOURCES = [
    SHARED / "gsm8k" / "train_alpaca.json",
    SHARED / "gpteacher" / "toolformer-dedupe-only-dataset.json",
    SHARED / "llamafactory" / "alpaca_en_demo.json",
]


def build(n: int, seed: int) -> tuple[list[dict[str, str]], int, int]:
    rng = random.Random(seed)
    base: list[dict[str, str]] = []
    for path in SOURCES:
        for row in json.loads(path.read_text(encoding="utf-8")):
            base.append(
                {
                    "instruction": row["instruction"],
                    "input": row.get("input", ""),
                    "output": row.get("output", row.get("response", "")),
                }
            )
    rows = []
    for i in range(n):
        src = base[i % len(base)]
        if i < len(base):
            rows.append(dict(src))
            continue
        # a distinct row: the answer's words shuffled (breaks every n-gram), the prompt tagged
        words = src["output"].split(" ")
        rng.shuffle(words)
        rows.append(
            {
                "instruction": f"{src['instruction']} (variant {i // len(base)})",
                "input": src["input"],
                "output": " ".join(words),
            }
        )
    exact = near = 0
    for i in rng.sample(range(n), n // 10):
        j = rng.randrange(n)
        if rng.random() < 0.5:
            rows[i] = dict(rows[j])
            exact += 1
        else:
            words = rows[j]["output"].split(" ")
            if len(words) < 40:
                continue
            for _ in range(2):
                words[rng.randrange(len(words))] = "edited"
            rows[i] = {**rows[j], "output": " ".join(words)}
            near += 1
    return rows, exact, near


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--views", default="full", help="comma-separated views to scan")
    args = ap.parse_args()
    rows, exact, near = build(args.rows, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "big.json"
        src.write_text(json.dumps(rows, ensure_ascii=False, indent=2), encoding="utf-8")
        t0 = time.perf_counter()
        result = clean(
            src,
            Path(tmp) / "big.clean.json",
            ScanConfig(views=tuple(args.views.split(","))),
            report_dir=Path(tmp) / "report",
            progress=True,
        )
        wall = time.perf_counter() - t0
        size = sum(p.stat().st_size for p in (Path(tmp) / "report").iterdir())
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"rows {args.rows}, views {args.views}: planted exact copies {exact}, near copies {near}")
    print(
        f"clean (scan + write): {wall:.1f} s, peak RSS {peak_mb:.0f} MiB, report {size / 1e6:.1f} MB"
    )
    print(f"removed {result.removed}: {result.scan.removed_by_reason()}")


if __name__ == "__main__":
    main()
