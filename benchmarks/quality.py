"""Precision / recall / F1 of exact, MinHash, embedding and their union against GPTeacher's own
published dedup levels.

Labels: GPTeacher Toolformer ships the same data deduplicated at five levels. A row of
`dedupe-only` that is missing from `similarity-<L>` is one the publisher removed as a duplicate at
level L (positive); a row still present is a keeper (negative). CAVEAT: the publisher's
similarity measure is undocumented, and its choice of which member of a group to keep is
unknown; we keep the first occurrence. On a prefix sample, a row's twin may lie outside the
sample, which caps recall. Detection is on the full view (instruction + input + response).

    .venv/bin/python benchmarks/quality.py --n 1000 --level 0.9
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
DATA = Path("/work/shared/data/gpteacher")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.reference import find_near  # noqa: E402  (the datasketch reference)


def key(r: dict[str, str]) -> tuple[str, str, str]:
    return (r["instruction"], r["input"], r["response"])


def removed_by(n: int, edges: list[tuple[int, int]]) -> set[int]:
    """Union-find; every member but the first (lowest index) of a component is removed."""
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {i for i in range(n) if find(i) != i}


def prf(pred: set[int], truth: set[int], n: int) -> tuple[float, float, float]:
    """Row-level precision, recall and F1 of `pred` against `truth` over rows 0..n-1
    (scikit-learn; 0.0 where a ratio is undefined)."""
    from sklearn.metrics import precision_recall_fscore_support

    y_true = [i in truth for i in range(n)]
    y_pred = [i in pred for i in range(n)]
    p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, average="binary", zero_division=0)
    return float(p), float(r), float(f)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--levels", default="0.9,0.8")
    ap.add_argument("--minhash-threshold", type=float, default=0.8)
    ap.add_argument("--semantic-thresholds", default="0.9,0.95,0.97")
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--cache-dir", default=None)
    args = ap.parse_args()

    from dedup_audit.config import MinHashConfig, NormalizeConfig, SemanticConfig
    from dedup_audit.detect.embed import find_semantic
    from dedup_audit.detect.exact import find_exact
    from dedup_audit.views import normalize

    base = json.loads((DATA / "toolformer-dedupe-only-dataset.json").read_text())[: args.n]
    texts = [f"{r['instruction']}\n{r['input']}\n{r['response']}" for r in base]
    norm = [normalize(t, NormalizeConfig()) for t in texts]
    t0 = time.perf_counter()
    exact = [(p.a, p.b) for p in find_exact(norm, "full")]
    near = [
        (p.a, p.b)
        for p in find_near(norm, "full", MinHashConfig(threshold=args.minhash_threshold)).edges(
            args.minhash_threshold
        )
    ]
    t_ngram = time.perf_counter() - t0
    thrs = [float(x) for x in args.semantic_thresholds.split(",")]
    cfg = SemanticConfig(
        enabled=True,
        backend=args.backend,
        threshold=min(thrs),
        cache_dir=args.cache_dir or tempfile.mkdtemp(prefix="quality-"),
    )
    t0 = time.perf_counter()
    scored = find_semantic(texts, "full", cfg, floor=min(thrs))
    t_sem = time.perf_counter() - t0
    print(
        f"rows: {len(base)} (first rows of dedupe-only); exact+minhash {t_ngram:.1f} s, embedding ({args.backend}) {t_sem:.1f} s"
    )
    preds = {
        "exact": removed_by(len(base), exact),
        f"minhash@{args.minhash_threshold}": removed_by(len(base), exact + near),
    }
    for thr in thrs:
        sem = [(p.a, p.b) for p in scored if p.score >= thr]
        preds[f"embedding@{thr}"] = removed_by(len(base), sem)
        preds[f"union (embedding@{thr})"] = removed_by(len(base), exact + near + sem)
    for level in args.levels.split(","):
        kept = {
            key(r)
            for r in json.loads((DATA / f"toolformer-similarity-{level}-dataset.json").read_text())
        }
        truth = {i for i, r in enumerate(base) if key(r) not in kept}
        print(f"\npublisher level similarity-{level}: {len(truth)} of {len(base)} rows removed")
        print("| detector | flagged | precision | recall | F1 |")
        print("|---|---|---|---|---|")
        for name, pred in preds.items():
            p, r, f = prf(pred, truth, len(base))
            print(f"| {name} | {len(pred)} | {p:.3f} | {r:.3f} | {f:.3f} |")


if __name__ == "__main__":
    main()
