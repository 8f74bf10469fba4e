"""Peer: text-dedup 0.4.0's MinHash (`text_dedup.minhash`, xxh3), run in its own venv
(benchmarks/_work/textdedup-venv) on the corpus's normalised full views. Its clusters are LSH
collisions joined by union-find, never verified; they are read back from its `uf` object.

    benchmarks/_work/textdedup-venv/bin/python benchmarks/peers/text_dedup_runner.py \\
        CORPUS.jsonl CLUSTERS.jsonl WORKDIR

Offline: HF_DATASETS_OFFLINE=1, data from a local JSONL (`--path json --data_files`).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path

from common import NGRAM, NUM_PERM, THRESHOLD, full_view, normalize, read_rows, write_clusters


def main(corpus: Path, out: Path, work: Path) -> None:
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    work.mkdir(parents=True, exist_ok=True)
    texts = work / "texts.jsonl"
    with texts.open("w", encoding="utf-8") as fh:
        for row in read_rows(corpus):
            fh.write(json.dumps({"text": normalize(full_view(row))}, ensure_ascii=False) + "\n")
    sys.argv = [
        sys.argv[0],
        "--path", "json", "--data_files", str(texts), "--split", "train",
        "--cache_dir", str(work / "cache"), "--output", str(work / "out"),
        "--column", "text", "--num_perm", str(NUM_PERM), "--ngram", str(NGRAM),
        "--min_length", "0", "--threshold", str(THRESHOLD), "--hash_func", "xxh3",
        "--num_proc", str(os.cpu_count() or 1),
    ]  # fmt: skip
    import text_dedup.minhash as tm

    with contextlib.suppress(SystemExit):  # its CLI may end by raising; tm.uf holds the result
        tm.main(standalone_mode=False)
    groups: dict[int, list[int]] = {}
    for i in list(tm.uf.parent):
        groups.setdefault(tm.uf.find(i), []).append(int(i))
    write_clusters(out, [g for g in groups.values() if len(g) > 1])


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
