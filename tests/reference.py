"""Reference implementations the tests and benchmarks check the package against. They are not
part of dedup-audit: the package's own code paths are the engine (dedup_audit.engine), the saved
scan (`ScanResult.rethreshold`) and the contamination check.

- `find_near`: MinHash-LSH with datasketch, every candidate verified by exact Jaccard, the
  straightforward pipeline the engine must agree with (and the speed benchmarks' baseline).
- `summarize`: distinct training records hit per contamination method.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from dedup_audit.config import MinHashConfig
from dedup_audit.detect.against import METHODS, ContaminationHit
from dedup_audit.detect.exact import exact_groups
from dedup_audit.detect.minhash import lsh_bands, score_floor
from dedup_audit.progress import progress_bar
from dedup_audit.records import Pair
from dedup_audit.views import jaccard, shingle_mode, shingles


@dataclass
class NearResult:
    """Scored MinHash candidates of one view. `pairs` holds every verified candidate scoring at
    least `score_floor(threshold)`, with its exact Jaccard (`score`) and MinHash estimate
    (`estimate`); `candidates` counts all LSH proposed; `edges(threshold)` keeps those that count."""

    view: str
    shingle: str
    bands: int = 0
    rows: int = 0
    dense_buckets: int = 0  # LSH buckets sampled as star + chain instead of all pairs
    pairs: list[Pair] = field(default_factory=list)
    candidates: int = 0

    def edges(self, threshold: float) -> list[Pair]:
        return [p for p in self.pairs if p.score >= threshold]


def find_near(
    texts: Sequence[str], view: str, cfg: MinHashConfig, *, progress: bool = False
) -> NearResult:
    """MinHash-LSH over the distinct non-empty texts of one view.

    Identical texts are collapsed to one representative first (exact edges already join them), so
    a text repeated 1,000 times costs one signature, and near pairs are emitted between
    representatives only.
    """
    from datasketch import MinHash, MinHashLSH

    mode = shingle_mode(texts, cfg)
    reps = [g[0] for g in exact_groups(texts)]
    shingle_sets = {i: shingles(texts[i], mode, cfg) for i in reps}
    reps = [i for i in reps if shingle_sets[i]]
    lsh = MinHashLSH(num_perm=cfg.num_perm, params=lsh_bands(cfg.threshold, cfg.num_perm))
    sigs: dict[int, MinHash] = {}
    for i in progress_bar(reps, desc=f"minhash[{view}]", enabled=progress):
        m = MinHash(num_perm=cfg.num_perm, seed=cfg.seed)
        m.update_batch([s.encode("utf-8") for s in sorted(shingle_sets[i])])
        sigs[i] = m
        lsh.insert(i, m, check_duplication=False)

    bands, rows = lsh_bands(cfg.threshold, cfg.num_perm)
    result = NearResult(view=view, shingle=mode, bands=bands, rows=rows)
    floor = score_floor(cfg.threshold)
    for i in progress_bar(reps, desc=f"verify[{view}]", enabled=progress):
        for j in sorted(c for c in lsh.query(sigs[i]) if c > i):
            result.candidates += 1
            score = jaccard(shingle_sets[i], shingle_sets[j])
            if score < floor:
                continue
            result.pairs.append(
                Pair(i, j, score, "minhash", view, estimate=sigs[i].jaccard(sigs[j]))
            )
    return result


def summarize(hits: Sequence[ContaminationHit]) -> dict[str, int]:
    """Number of distinct training records hit, per method."""
    per: dict[str, set[int]] = {}
    for h in hits:
        per.setdefault(h.method, set()).add(h.train_index)
    return {m: len(per[m]) for m in METHODS if m in per}
