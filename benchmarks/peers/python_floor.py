"""Not a peer: the floor under every Python pipeline on this corpus. It starts the interpreter,
imports numpy, parses every JSON line and writes singleton-free (empty) clusters: no view
building, no hashing, no LSH. Any Python tool that reads the corpus costs at least this, so the
datasketch loop's wall time over this one is the largest speed-up any Python tool can reach.

    python benchmarks/peers/python_floor.py CORPUS.jsonl CLUSTERS.jsonl
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np


def main(corpus: Path, out: Path) -> None:
    with corpus.open(encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    np.zeros(len(rows))
    out.write_text("", encoding="utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
