"""Peer: the datasketch per-document loop users write (one MinHash per document, MinHashLSH
insert then query, union-find over the candidates; no verification).

    python benchmarks/peers/datasketch_loop.py CORPUS.jsonl CLUSTERS.jsonl
"""

from __future__ import annotations

import sys
from pathlib import Path

from common import NUM_PERM, SEED, THRESHOLD, UnionFind, read_shingle_sets, write_clusters
from datasketch import MinHash, MinHashLSH


def main(corpus: Path, out: Path) -> None:
    sets = read_shingle_sets(corpus)
    lsh = MinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM)
    sigs = []
    for i, s in enumerate(sets):
        m = MinHash(num_perm=NUM_PERM, seed=SEED)
        m.update_batch([t.encode("utf-8") for t in s])
        lsh.insert(i, m, check_duplication=False)
        sigs.append(m)
    uf = UnionFind(len(sets))
    for i, m in enumerate(sigs):
        for j in lsh.query(m):
            uf.union(i, j)
    write_clusters(out, uf.clusters())


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
