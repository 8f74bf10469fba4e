"""Near-duplicate detection speed and agreement: dedup-audit's MinHash-LSH against its peers.

Why: `find_near` (datasketch) is the reference; before adding a faster backend we need, on the
same real data in one run, (a) wall time and (b) whether the faster thing makes the same verified
decisions. Ground truth is exact all-pairs Jaccard of the same shingles (sparse products in
blocks, exact integer counts), so precision/recall are measured, not assumed.

Each method gets the distinct normalised `full`-view texts of a dataset (built the way
dedup_audit.views does, alpaca rows -> user/assistant turns) and must return the pairs it calls
duplicates at Jaccard >= threshold. Methods:

  datasketch-ref   dedup_audit.detect.minhash.find_near as is
  datasketch-xxh   the same loop with xxhash32 as hashfunc, shared permutations (MinHash.bulk)
  engine           dedup_audit.engine.lexical.find_lexical (C kernels + numpy banding)
  rensa-lsh        rensa RMinHash digest matrix + rensa's own RMinHashLSH, candidates verified
  text-dedup       text_dedup.minhash (separate venv), clusters -> pairs, no verification
  semhash          has no lexical/MinHash mode (embedding-only): reported, not run

Also: recall of find_near at default settings on near duplicates injected into real samples (a
few word edits), by exact-Jaccard bucket, against datasketch's default banding.

Usage:
  .venv/bin/python benchmarks/minhash_speed.py --repeat 3   # both datasets, ~3 min on 2 cores
  .venv/bin/python benchmarks/minhash_speed.py --no-text-dedup --inject 300
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix

from dedup_audit.config import MinHashConfig, NormalizeConfig
from dedup_audit.detect.minhash import lsh_bands
from dedup_audit.engine.lexical import find_lexical

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from dedup_audit.records import Sample, Turn
from dedup_audit.views import jaccard, normalize, shingle_mode, shingles, view_text
from tests.reference import find_near

ROOT = Path(__file__).resolve().parent
DATA = Path(os.environ.get("DEDUP_AUDIT_DATA", "/work/shared/data"))
DATASETS = {
    "gpteacher-toolformer": (DATA / "gpteacher/toolformer-dedupe-only-dataset.json", "response"),
    "gsm8k-train": (DATA / "gsm8k/train_alpaca.json", "output"),
}
TEXTDEDUP_PY = ROOT / "_work/textdedup-venv/bin/python"
Pairs = set[tuple[int, int]]


def load_full_texts(path: Path, response_key: str) -> list[str]:
    """Alpaca rows -> normalised `full` view, as dedup_audit does (user = instruction\\ninput)."""
    rows = json.loads(path.read_text(encoding="utf-8"))
    out = []
    for row in rows:
        user = "\n".join(p for p in (row["instruction"], row.get("input") or "") if p)
        sample = Sample(turns=(Turn("user", user), Turn("assistant", row[response_key])))
        out.append(normalize(view_text(sample, "full"), NormalizeConfig()))
    return out


def _shingle_ids(sets: list[set[str]]) -> tuple[list[str], list[np.ndarray]]:
    """Distinct shingles (first-seen order) and each text's shingle ids."""
    vocab: dict[str, int] = {}
    rows = [np.fromiter((vocab.setdefault(x, len(vocab)) for x in s), np.int64) for s in sets]
    return list(vocab), rows


class _Edges:
    """find_lexical's pairs behind find_near's `edges(threshold)` interface."""

    def __init__(self, texts: Sequence[str], cfg: MinHashConfig) -> None:
        self.pairs = find_lexical(texts, "full", cfg).near_pairs.pairs()

    def edges(self, threshold: float) -> list[Any]:
        return [p for p in self.pairs if p.score >= threshold]


def truth_pairs(texts: Sequence[str], cfg: MinHashConfig, threshold: float) -> Pairs:
    """Every pair with exact shingle Jaccard >= threshold (all pairs, blocked sparse product)."""
    mode = shingle_mode(texts, cfg)
    _, rows = _shingle_ids([shingles(t, mode, cfg) for t in texts])
    sizes = np.array([len(r) for r in rows], dtype=np.int64)
    x = csr_matrix(
        (np.ones(int(sizes.sum()), np.float32), np.concatenate(rows), np.r_[0, np.cumsum(sizes)]),
        shape=(len(rows), int(max(int(r.max()) for r in rows if len(r)) + 1)),
    )
    xt = x.T.tocsr()
    found: Pairs = set()
    for start in range(0, len(rows), 1000):
        inter = np.rint((x[start : start + 1000] @ xt).toarray()).astype(np.int64)
        union = sizes[start : start + 1000, None] + sizes[None, :] - inter
        ii, jj = np.nonzero(inter / np.maximum(union, 1) >= threshold)
        found.update((int(i) + start, int(j)) for i, j in zip(ii, jj, strict=True) if i + start < j)
    return found


def run_ref(texts: Sequence[str], cfg: MinHashConfig) -> Pairs:
    return {(p.a, p.b) for p in find_near(texts, "full", cfg).edges(cfg.threshold)}


def run_engine(texts: Sequence[str], cfg: MinHashConfig) -> Pairs:
    pairs = find_lexical(texts, "full", cfg).near_pairs.at_least(cfg.threshold)
    return set(zip(pairs.a.tolist(), pairs.b.tolist(), strict=True))


def run_datasketch_xxh(texts: Sequence[str], cfg: MinHashConfig) -> Pairs:
    """find_near's loop with the two cheap datasketch knobs: xxhash32 as hashfunc and
    MinHash.bulk (permutations built once). Same banding and exact verification."""
    import xxhash
    from datasketch import MinHash, MinHashLSH

    mode = shingle_mode(texts, cfg)
    sets = [shingles(t, mode, cfg) for t in texts]
    keep = [i for i, s in enumerate(sets) if s]
    sigs = MinHash.bulk(
        [[s.encode("utf-8") for s in sets[i]] for i in keep],
        num_perm=cfg.num_perm,
        seed=cfg.seed,
        hashfunc=xxhash.xxh32_intdigest,
    )
    lsh = MinHashLSH(num_perm=cfg.num_perm, params=lsh_bands(cfg.threshold, cfg.num_perm))
    for i, m in zip(keep, sigs, strict=True):
        lsh.insert(i, m, check_duplication=False)
    out: Pairs = set()
    for i, m in zip(keep, sigs, strict=True):
        for j in lsh.query(m):
            if j > i and jaccard(sets[i], sets[j]) >= cfg.threshold:
                out.add((i, j))
    return out


def run_rensa_lsh(texts: Sequence[str], cfg: MinHashConfig) -> Pairs:
    """rensa end to end (digest matrix + its native LSH), candidates verified by exact Jaccard.
    rensa's LSH needs bands dividing num_perm: 16 bands x 8 rows (P(candidate | J=0.8)=0.95)."""
    from rensa import RMinHash, RMinHashLSH

    mode = shingle_mode(texts, cfg)
    sets = [shingles(t, mode, cfg) for t in texts]
    matrix = RMinHash.digest_matrix_from_token_sets(
        [sorted(s) for s in sets], cfg.num_perm, cfg.seed
    )
    lsh = RMinHashLSH(cfg.threshold, cfg.num_perm, 16)
    lsh.insert_matrix(matrix, 0)
    mhs = RMinHash.from_token_sets([sorted(s) for s in sets], cfg.num_perm, cfg.seed)
    out: Pairs = set()
    for i, cands in enumerate(lsh.query_all(mhs)):
        for j in cands:
            if j > i and jaccard(sets[i], sets[j]) >= cfg.threshold:
                out.add((i, int(j)))
    return out


_TEXTDEDUP_RUNNER = r"""
import json, sys, time
sys.argv = sys.argv[:1] + json.loads(sys.argv[1])
import text_dedup.minhash as tm
t0 = time.perf_counter()
try:
    tm.main(standalone_mode=False)
except SystemExit:
    pass
wall = time.perf_counter() - t0
clusters = {}
for i in list(tm.uf.parent):
    clusters.setdefault(tm.uf.find(i), []).append(i)
with open(OUT, "w") as fh:
    json.dump({"wall": wall, "clusters": [sorted(c) for c in clusters.values() if len(c) > 1]}, fh)
"""


def run_text_dedup(texts: Sequence[str], cfg: MinHashConfig) -> tuple[Pairs, float, str]:
    """text-dedup's MinHash CLI in its own venv. Its clusters (LSH collisions joined by
    union-find, never verified) become all within-cluster pairs. Returns (pairs, its own
    wall time excluding interpreter start, note)."""
    if not TEXTDEDUP_PY.exists():
        return set(), float("nan"), f"not installed ({TEXTDEDUP_PY} missing)"
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "texts.jsonl"
        data.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
        out = Path(tmp) / "clusters.json"
        runner = Path(tmp) / "runner.py"
        runner.write_text(_TEXTDEDUP_RUNNER.replace("OUT", repr(str(out))), encoding="utf-8")
        args = ["--path", "json", "--data_files", str(data), "--split", "train",
                "--cache_dir", str(Path(tmp) / "cache"), "--output", str(Path(tmp) / "out"),
                "--column", "text", "--num_perm", str(cfg.num_perm), "--ngram", str(cfg.ngram),
                "--min_length", "0", "--threshold", str(cfg.threshold), "--hash_func", "xxh3",
                "--num_proc", "1"]  # fmt: skip
        env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
        proc = subprocess.run(
            [str(TEXTDEDUP_PY), str(runner), json.dumps(args)],
            capture_output=True, text=True, env=env, timeout=900,
        )  # fmt: skip
        if proc.returncode != 0 or not out.exists():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            return set(), float("nan"), "failed: " + " | ".join(tail)
        result = json.loads(out.read_text())
    pairs: Pairs = set()
    for members in result["clusters"]:
        pairs.update((a, b) for k, a in enumerate(members) for b in members[k + 1 :])
    return pairs, float(result["wall"]), "unverified clusters"


def score(found: Pairs, truth: Pairs) -> tuple[float, float]:
    tp = len(found & truth)
    precision = tp / len(found) if found else 1.0
    recall = tp / len(truth) if truth else 1.0
    return precision, recall


def benchmark(
    name: str, texts: list[str], cfg: MinHashConfig, with_textdedup: bool, repeat: int = 1
) -> None:
    distinct = list(dict.fromkeys(t for t in texts if t))
    t0 = time.perf_counter()
    truth = truth_pairs(distinct, cfg, cfg.threshold)
    print(f"\n## {name}: {len(texts)} rows, {len(distinct)} distinct full-view texts, "
          f"{len(truth)} pairs with exact Jaccard >= {cfg.threshold} "
          f"(all-pairs truth in {time.perf_counter() - t0:.1f}s)")  # fmt: skip
    methods: list[tuple[str, Callable[[Sequence[str], MinHashConfig], Pairs]]] = [
        ("datasketch-ref (find_near)", run_ref),
        ("datasketch-xxh (xxhash32+bulk)", run_datasketch_xxh),
        ("engine (find_lexical, C kernels)", run_engine),
        ("rensa-lsh (native LSH, verified)", run_rensa_lsh),
    ]
    rows: list[tuple[str, float, Pairs, str]] = []
    for label, fn in methods:
        walls = []
        for _ in range(repeat):  # best of N: the machine is shared, the minimum is the signal
            t0 = time.perf_counter()
            found = fn(distinct, cfg)
            walls.append(time.perf_counter() - t0)
        rows.append((label, min(walls), found, "verified"))
    if with_textdedup:
        found, wall, note = run_text_dedup(distinct, cfg)
        rows.append(("text-dedup 0.4.0 (minhash, xxh3)", wall, found, note))
    rows.append(("semhash 0.5.0", float("nan"), set(), "no lexical/MinHash mode"))
    ref_wall = rows[0][1]
    print("| method | wall s | docs/s | x vs ref | pairs >= thr | precision | recall | note |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for label, wall, found, note in rows:
        if wall != wall:  # NaN: not run
            print(f"| {label} | - | - | - | - | - | - | {note} |")
            continue
        p, r = score(found, truth)
        print(f"| {label} | {wall:.2f} | {len(distinct) / wall:,.0f} | {ref_wall / wall:.1f}x | "
              f"{len(found)} | {p:.4f} | {r:.4f} | {note} |")  # fmt: skip


_WORDS = ("the", "a", "of", "and", "to", "in", "data", "model", "value", "result", "answer", "new")


def inject(text: str, rng: random.Random, edits: int) -> str:
    """A copy of `text` with `edits` random word substitutions, deletions or insertions."""
    words = text.split(" ")
    for _ in range(edits):
        k = rng.randrange(len(words))
        op = rng.choice(("sub", "del", "ins"))
        if op == "sub":
            words[k] = rng.choice(_WORDS)
        elif op == "del" and len(words) > 1:
            del words[k]
        else:
            words.insert(k, rng.choice(_WORDS))
    return " ".join(words)


def recall_check(samples: dict[str, list[str]], per_set: int, cfg: MinHashConfig) -> None:
    """Inject near duplicates into real samples; recall of verified pairs per Jaccard bucket."""
    rng = random.Random(13)
    texts: list[str] = []
    injected: list[tuple[int, int, float]] = []
    for pool in samples.values():
        originals = rng.sample(sorted(set(pool)), per_set)
        for text in originals:
            i = len(texts)
            texts.append(text)
            copy = inject(text, rng, rng.randint(1, 4))
            texts.append(copy)
            mode = shingle_mode([text], cfg)
            injected.append(
                (i, i + 1, jaccard(shingles(text, mode, cfg), shingles(copy, mode, cfg)))
            )
    target = [(a, b, j) for a, b, j in injected if j >= cfg.threshold and j < 1.0]
    default_bands = _datasketch_default_bands(cfg)
    print(f"\n## Recall on injected near duplicates ({len(injected)} injected into real samples, "
          f"{len(target)} with {cfg.threshold} <= exact Jaccard < 1)")  # fmt: skip
    print("| detector | bands x rows | J in [0.80,0.85) | [0.85,0.90) | [0.90,1.0) | all | "
          "verified pairs below threshold |")  # fmt: skip
    print("|---|---|---:|---:|---:|---:|---:|")
    runs: list[tuple[str, tuple[int, int], Callable[[], Any]]] = [
        ("find_near (default cfg)", lsh_bands(cfg.threshold, cfg.num_perm),
         lambda: find_near(texts, "full", cfg)),
        ("engine (find_lexical)", lsh_bands(cfg.threshold, cfg.num_perm),
         lambda: _Edges(texts, cfg)),
        ("datasketch default banding (b,r optimal_param 0.5/0.5)", default_bands,
         lambda: _near_with_bands(texts, cfg, default_bands)),
    ]  # fmt: skip
    for label, (b, r), fn in runs:
        res = fn()
        edges = {(p.a, p.b) for p in res.edges(cfg.threshold)}
        below = sum(1 for p in res.edges(cfg.threshold) if p.score < cfg.threshold)
        cells = []
        for lo, hi in ((0.8, 0.85), (0.85, 0.9), (0.9, 1.0), (0.0, 1.0)):
            bucket = [(a, c) for a, c, j in target if lo <= j < hi]
            hit = sum(1 for pair in bucket if pair in edges)
            cells.append(f"{hit}/{len(bucket)} = {hit / len(bucket):.3f}" if bucket else "-")
        print(f"| {label} | {b} x {r} | " + " | ".join(cells) + f" | {below} |")


def _datasketch_default_bands(cfg: MinHashConfig) -> tuple[int, int]:
    from datasketch import MinHashLSH

    lsh = MinHashLSH(threshold=cfg.threshold, num_perm=cfg.num_perm)
    return int(lsh.b), int(lsh.r)


def _near_with_bands(texts: Sequence[str], cfg: MinHashConfig, bands: tuple[int, int]) -> Any:
    """The engine with other banding (datasketch's default parameters)."""
    import dedup_audit.engine.lexical as lex

    def fixed(threshold: float, num_perm: int, min_recall: float = 0.0) -> tuple[int, int]:
        return bands

    original = lex.lsh_bands
    lex.lsh_bands = fixed  # type: ignore[assignment]
    try:
        return _Edges(texts, cfg)
    finally:
        lex.lsh_bands = original


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-text-dedup", action="store_true")
    parser.add_argument("--repeat", type=int, default=1, help="best of N wall times")
    parser.add_argument("--inject", type=int, default=400, help="injected pairs per dataset")
    args = parser.parse_args(argv)
    cfg = MinHashConfig()
    print(f"MinHashConfig: threshold={cfg.threshold} num_perm={cfg.num_perm} ngram={cfg.ngram} "
          f"seed={cfg.seed}; python {sys.version.split()[0]}, {os.cpu_count()} CPUs")  # fmt: skip
    samples = {}
    for name, (path, key) in DATASETS.items():
        texts = load_full_texts(path, key)
        samples[name] = texts
        benchmark(name, texts, cfg, not args.no_text_dedup, args.repeat)
    recall_check(samples, args.inject, cfg)


if __name__ == "__main__":
    main()
