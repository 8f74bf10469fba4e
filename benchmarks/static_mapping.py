"""Can the static (model2vec) backend's threshold be mapped so its decisions approximate fp32?

The fp32 decisions are the duplicate edges (all pairs at cosine >= `--threshold`) of the packaged
all-MiniLM-L6-v2 (ONNX fp32, whose edges equal torch fp32's: benchmarks/README.md, "Semantic:
embedding speed"). For the static table distilled from the same model, the static threshold that
maximises edge F1 against them is fitted on one set (GPTeacher Toolformer + identity +
self_cognition, full view) and then applied to a held-out set (the GSM8K planted set of
benchmarks/gsm8k_planted.py), reporting pair precision, recall and Jaccard on both, plus the
held-out set's own best threshold (an upper bound no mapping can beat).

    .venv/bin/python benchmarks/static_mapping.py      # needs the bench extra (model2vec, skeletoken)

Measured before the `static` backend was removed (it used the backend; the table is now
distilled by benchmarks/static_model.py the same way: PCA 256 from the packaged model).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def upper_pairs(emb, lo: float):  # type: ignore[no-untyped-def]
    import numpy as np

    sims = emb @ emb.T
    iu = np.triu_indices(len(emb), k=1)
    s = sims[iu]
    keep = s >= lo
    return iu[0][keep], iu[1][keep], s[keep]


def agreement(truth: set[tuple[int, int]], got: set[tuple[int, int]]) -> tuple[float, float, float]:
    inter = len(truth & got)
    p = inter / len(got) if got else 1.0
    r = inter / len(truth) if truth else 1.0
    j = inter / len(truth | got) if truth | got else 1.0
    return p, r, j


def static_edges(emb, t: float) -> set[tuple[int, int]]:  # type: ignore[no-untyped-def]
    a, b, _ = upper_pairs(emb, t)
    return set(zip(a.tolist(), b.tolist(), strict=True))


def best_threshold(emb, truth: set[tuple[int, int]]) -> float:  # type: ignore[no-untyped-def]
    best, best_f1 = 0.9, -1.0
    for k in range(500, 1000, 2):
        t = k / 1000
        p, r, _ = agreement(truth, static_edges(emb, t))
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        if f1 > best_f1:
            best, best_f1 = t, f1
    return best


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--threshold", type=float, default=0.9)
    ap.add_argument("--n", type=int, default=400, help="GPTeacher rows of the fitting set")
    ap.add_argument("--rows", type=int, default=850, help="GSM8K rows of the held-out set")
    ap.add_argument("--plant", type=int, default=100)
    args = ap.parse_args()
    from embed_speed import load_texts
    from gsm8k_planted import build
    from static_model import static_encode, static_model

    from dedup_audit.config import SemanticConfig
    from dedup_audit.encoders import get_encoder

    fit = load_texts(args.n)
    rows, _ = build(args.rows, args.plant, 7)
    held = [f"{r['instruction']}\n{r['input']}\n{r['output']}".strip() for r in rows]
    cache = tempfile.mkdtemp(prefix="static-map-")
    onnx = get_encoder(SemanticConfig(enabled=True, backend="onnx", cache_dir=cache))
    table = static_model(Path(cache))
    out = {}
    for name, texts in (("fit", fit), ("held-out", held)):
        ref = onnx.encode(texts, batch_size=64, progress=False)
        st = static_encode(table, texts)
        truth = static_edges(ref, args.threshold)
        out[name] = (ref, st, truth)
    t_fit = best_threshold(out["fit"][1], out["fit"][2])
    t_held = best_threshold(out["held-out"][1], out["held-out"][2])
    print(f"fp32 threshold {args.threshold}; static threshold fitted on the fit set: {t_fit:.3f}")
    print(
        "| set | texts | fp32 edges | static threshold | static edges | precision | recall | Jaccard |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, t in (
        ("fit", args.threshold),
        ("fit", t_fit),
        ("held-out", args.threshold),
        ("held-out", t_fit),
        ("held-out (its own best)", t_held),
    ):
        _, st, truth = out[name.split(" ")[0]]
        got = static_edges(st, t)
        p, r, j = agreement(truth, got)
        n = len(st)
        print(
            f"| {name} | {n} | {len(truth)} | {t:.3f} | {len(got)} | {p:.3f} | {r:.3f} | {j:.3f} |"
        )
    print(json.dumps({"fit_threshold": t_fit, "held_out_best": t_held}))


if __name__ == "__main__":
    main()
