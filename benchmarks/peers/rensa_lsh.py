"""Peer: Python word-3-gram shingling + rensa (RMinHash built in bulk from the token sets, its
native RMinHashLSH, 16 bands x 8 rows since bands must divide num_perm) + union-find over the
candidates; unverified, the way rensa's README pipeline is used.

    python benchmarks/peers/rensa_lsh.py CORPUS.jsonl CLUSTERS.jsonl
"""

from __future__ import annotations

import sys
from pathlib import Path

from common import NUM_PERM, SEED, THRESHOLD, UnionFind, read_shingle_sets, write_clusters
from rensa import RMinHash, RMinHashLSH

BANDS = 16


def main(corpus: Path, out: Path) -> None:
    sets = read_shingle_sets(corpus)
    mhs = RMinHash.from_token_sets([sorted(s) for s in sets], NUM_PERM, SEED)
    lsh = RMinHashLSH(THRESHOLD, NUM_PERM, BANDS)
    lsh.insert_many(mhs, 0)
    uf = UnionFind(len(sets))
    for i, cands in enumerate(lsh.query_all(mhs)):
        for j in cands:
            uf.union(i, int(j))
    write_clusters(out, uf.clusters())


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
