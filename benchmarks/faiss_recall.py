"""Recall@k of the approximate FAISS indexes (HNSW, IVF) against exact flat search, and timings.

Vectors: real texts (GSM8K train + GPTeacher Toolformer, full view) embedded with a model2vec
static table distilled from the packaged model (benchmarks/static_model.py; fast enough to embed
~15k texts here); the index behaviour depends on the vector distribution, not on which encoder
produced it.

    .venv/bin/python benchmarks/faiss_recall.py --k 10
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
DATA = Path("/work/shared/data")
sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument(
        "--cache-dir", default=None, help="artifact/embedding cache (default: a temp dir)"
    )
    args = ap.parse_args()

    import faiss
    import numpy as np
    from static_model import static_encode, static_model

    from dedup_audit.detect.faiss_index import HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH, HNSW_M

    texts = [
        f"{r['instruction']}\n{r['output']}"
        for r in json.loads((DATA / "gsm8k/train_alpaca.json").read_text())
    ]
    gpt = json.loads((DATA / "gpteacher/toolformer-dedupe-only-dataset.json").read_text())
    texts += [f"{r['instruction']}\n{r['input']}\n{r['response']}" for r in gpt]
    cache = args.cache_dir or tempfile.mkdtemp(prefix="faiss-recall-")
    emb = static_encode(static_model(Path(cache)), texts)
    n, d = emb.shape
    print(f"vectors: {n} x {d}, k={args.k}, threads={faiss.omp_get_max_threads()}")
    t0 = time.perf_counter()
    flat = faiss.IndexFlatIP(d)
    flat.add(emb)
    _, truth = flat.search(emb, args.k)
    t_flat = time.perf_counter() - t0
    print("| index | build+search s | recall@k vs flat |")
    print("|---|---|---|")
    print(f"| flat (exact) | {t_flat:.2f} | 1.000 |")

    def recall(ids: np.ndarray) -> float:
        return float(
            np.mean([len(set(a) & set(b)) / args.k for a, b in zip(ids, truth, strict=True)])
        )

    for ef in (64, HNSW_EF_SEARCH, 256):
        t0 = time.perf_counter()
        h = faiss.IndexHNSWFlat(d, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        h.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        h.add(emb)
        h.hnsw.efSearch = ef
        _, ids = h.search(emb, args.k)
        print(
            f"| HNSW M={HNSW_M} efSearch={ef} | {time.perf_counter() - t0:.2f} | {recall(ids):.3f} |"
        )
    nlist = int(4 * np.sqrt(n))
    for nprobe in (8, 32):
        t0 = time.perf_counter()
        q = faiss.IndexFlatIP(d)
        ivf = faiss.IndexIVFFlat(q, d, nlist, faiss.METRIC_INNER_PRODUCT)
        ivf.train(emb)
        ivf.add(emb)
        ivf.nprobe = nprobe
        _, ids = ivf.search(emb, args.k)
        print(
            f"| IVF nlist={nlist} nprobe={nprobe} | {time.perf_counter() - t0:.2f} | {recall(ids):.3f} |"
        )


if __name__ == "__main__":
    main()
