"""Embedding throughput and duplicate-decision agreement of the CPU backends vs torch fp32.

Same real texts for every backend (GPTeacher Toolformer rows, full view, plus identity.json and
self_cognition.json so there are paraphrases to agree on), one timed run each after a warm-up,
artifact build time (ONNX export / model2vec distillation) reported separately.

Agreement: the duplicate edges (i, j) with cosine >= threshold among all pairs of the sample,
for each backend vs torch fp32: precision, recall and Jaccard of the edge sets.

    .venv/bin/python benchmarks/embed_speed.py --n 600 --threshold 0.9
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
if not DATA.is_dir():
    DATA = Path("/work/shared/data")


def load_texts(n: int) -> list[str]:
    rows = json.loads((DATA / "gpteacher" / "toolformer-dedupe-only-dataset.json").read_text())
    texts = [f"{r['instruction']}\n{r['input']}\n{r['response']}".strip() for r in rows[:n]]
    for name in ("llamafactory/identity.json", "self_cognition/self_cognition.json"):
        for r in json.loads((DATA / name).read_text()):
            texts.append(f"{r['instruction']}\n{r['input']}\n{r['output']}".strip())
    return texts


def edges(emb, threshold: float) -> set[tuple[int, int]]:  # type: ignore[no-untyped-def]
    import numpy as np

    sims = emb @ emb.T
    iu = np.triu_indices(len(emb), k=1)
    keep = sims[iu] >= threshold
    return set(zip(iu[0][keep].tolist(), iu[1][keep].tolist(), strict=True))


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--n", type=int, default=600, help="GPTeacher rows (identity + self_cognition are added)"
    )
    ap.add_argument("--threshold", type=float, default=0.9)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--max-seq-length", type=int, default=256)
    ap.add_argument("--backends", default="torch,onnx,onnx-int8")
    args = ap.parse_args()

    import numpy as np
    import torch

    from dedup_audit.config import SemanticConfig
    from dedup_audit.encoders.factory import build_encoder

    texts = load_texts(args.n)
    art = Path(tempfile.mkdtemp(prefix="embed-speed-"))
    print(f"texts: {len(texts)}  threads: {torch.get_num_threads()}  cpus: {os.cpu_count()}")
    results: dict[str, dict[str, float]] = {}
    embs = {}
    for backend in args.backends.split(","):
        cfg = SemanticConfig(
            enabled=True,
            backend=backend,
            device="cpu",
            max_seq_length=args.max_seq_length,
            batch_size=args.batch_size,
        )
        enc = build_encoder(cfg, cache_dir=art)
        t0 = time.perf_counter()
        enc.encode(texts[:8], batch_size=args.batch_size, progress=False)  # load/build + warm-up
        setup = time.perf_counter() - t0
        t0 = time.perf_counter()
        emb = enc.encode(texts, batch_size=args.batch_size, progress=False)
        dt = time.perf_counter() - t0
        embs[backend] = emb
        results[backend] = {"setup_s": setup, "docs_per_s": len(texts) / dt, "seconds": dt}
        print(
            f"{backend:>10}: {len(texts) / dt:8.1f} docs/s  ({dt:.1f} s; setup/build {setup:.1f} s)"
        )

    ref = embs.get("torch")
    print(
        f"\nagreement with torch fp32 at cosine >= {args.threshold} (all pairs of {len(texts)} texts)"
    )
    print(
        "| backend | docs/s | x torch | edges | precision | recall | Jaccard | mean cos to torch |"
    )
    print("|---|---|---|---|---|---|---|---|")
    ref_edges = edges(ref, args.threshold) if ref is not None else set()
    for backend, emb in embs.items():
        r = results[backend]
        speed = (
            r["docs_per_s"] / results["torch"]["docs_per_s"] if "torch" in results else float("nan")
        )
        if ref is None:
            continue
        e = edges(emb, args.threshold)
        inter = len(e & ref_edges)
        prec = inter / len(e) if e else 1.0
        rec = inter / len(ref_edges) if ref_edges else 1.0
        jac = inter / len(e | ref_edges) if (e | ref_edges) else 1.0
        same_dim = emb.shape[1] == ref.shape[1]
        cos = f"{float(np.mean(np.sum(emb * ref, axis=1))):.4f}" if same_dim else "n/a (256-d)"
        print(
            f"| {backend} | {r['docs_per_s']:.1f} | {speed:.2f} | {len(e)} | {prec:.3f} | {rec:.3f} | {jac:.3f} | {cos} |"
        )


if __name__ == "__main__":
    main()
