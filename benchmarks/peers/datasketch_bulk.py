"""Peer: datasketch's batch API (`MinHash.bulk`: permutations built once, one LeanMinHash per
document), MinHashLSH insert then query, union-find over the candidates; no verification.

    python benchmarks/peers/datasketch_bulk.py CORPUS.jsonl CLUSTERS.jsonl
"""

from __future__ import annotations

import sys
from pathlib import Path

from common import NUM_PERM, SEED, THRESHOLD, UnionFind, read_shingle_sets, write_clusters
from datasketch import MinHash, MinHashLSH


def main(corpus: Path, out: Path) -> None:
    sets = read_shingle_sets(corpus)
    sigs = MinHash.bulk(
        [[t.encode("utf-8") for t in s] for s in sets], num_perm=NUM_PERM, seed=SEED
    )
    lsh = MinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM)
    with lsh.insertion_session() as session:
        for i, m in enumerate(sigs):
            session.insert(i, m, check_duplication=False)
    uf = UnionFind(len(sets))
    for i, m in enumerate(sigs):
        for j in lsh.query(m):
            uf.union(i, j)
    write_clusters(out, uf.clusters())


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
