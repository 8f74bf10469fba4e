"""`--engine ray` (a local Ray started by the run) next to the local engine, whole processes.

Why: the Ray adapter exists for corpora past one machine; on one machine it should give the same
clusters, and its overhead (Ray's ~18 processes, a Parquet checkpoint and a hash shuffle per
stage) is what a user pays to get there. This runs, per corpus size, interleaved and repeated:

  local   dedup-audit scan CORPUS -o OUT -q --force
  ray     dedup-audit scan CORPUS -o OUT -q --force --engine ray --work-dir FRESH_DIR

(default views: full, prompt, response) as subprocesses timed whole, with `engine_peers.py`'s
measurements: wall, CPU (user + sys of the tree), peak RSS of the largest process (os.wait4) and
the peak of the summed PSS of the process tree sampled every 0.2 s (Ray's raylet, GCS and
workers are children of the run; PSS splits shared pages, e.g. Ray's object store, among the
processes that map them, where summed RSS would count them once per process). Each ray run
gets an empty work dir (no resume). The
clusters of both (report.json, view full) must be identical; the table says so.

    .venv/bin/python benchmarks/ray_vs_local.py --rows 200000 --repeat 2
    .venv/bin/python benchmarks/ray_vs_local.py --rows 1000000 --repeat 1 --timeout 3600

Corpora come from corpus.py (written when missing, like engine_peers.py does).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import engine_peers  # noqa: E402
from engine_peers import WORK, Run, TreeRss, digest, ensure_corpus, read_clusters  # noqa: E402


class TreePss(TreeRss):
    """Also the peak of the summed PSS of the tree (/proc/PID/smaps_rollup): shared pages
    (Ray's object store, mapped by every worker) split among the processes that map them,
    so the sum is the memory the run really holds. Reported as `tree_mib` in place of RSS."""

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            total = 0
            for p in self._tree():
                try:
                    text = Path(f"/proc/{p}/smaps_rollup").read_text()
                except OSError:
                    continue
                for line in text.splitlines():
                    if line.startswith("Pss:"):
                        total += int(line.split()[1]) * 1024
                        break
            self.peak = max(self.peak, total)


engine_peers.TreeRss = TreePss  # type: ignore[misc]  # run_once samples with it
run_once = engine_peers.run_once

METHODS = ("local", "ray")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, action="append", help="corpus size (repeatable)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--corpus", default=None, help="use this JSONL instead of corpus.py's")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument("--dedup-audit-bin", default=str(HERE.parent / ".venv" / "bin" / "dedup-audit"))
    args = ap.parse_args(argv)
    rows_list = args.rows or [200_000]
    lines = [
        "| rows | engine | wall s (median) | walls | CPU s | peak RSS MiB (largest process) "
        "| tree PSS MiB | x local wall | same clusters |",
        "|---:|---|---:|---|---:|---:|---:|---:|---|",
    ]
    for rows in rows_list:
        args.rows = rows
        corpus = ensure_corpus(args)
        base = WORK / f"ray_vs_local-{rows}"
        runs: dict[str, list[Run]] = {m: [] for m in METHODS}
        digests: dict[str, set[str]] = {m: set() for m in METHODS}
        for r in range(args.repeat):
            order = METHODS if r % 2 == 0 else METHODS[::-1]
            for method in order:
                out = base / method
                shutil.rmtree(out, ignore_errors=True)
                cmd = [args.dedup_audit_bin, "scan", str(corpus), "-o", str(out / "scan")]
                cmd += ["-q", "--force"]
                if method == "ray":
                    work = base / "ray-work"
                    shutil.rmtree(work, ignore_errors=True)
                    cmd += ["--engine", "ray", "--work-dir", str(work)]
                run = run_once(cmd, out, args.timeout, base / f"{method}-{r}.log")
                if run.rc == 0:
                    run.digest = digest(read_clusters("dedup-audit", out / "scan"))
                    digests[method].add(run.digest)
                runs[method].append(run)
                print(
                    f"{rows} {method} round {r}: rc {run.rc}, {run.wall:.1f} s wall, "
                    f"{run.cpu:.1f} s CPU, {run.maxrss_mib:.0f} MiB max RSS, "
                    f"tree PSS {run.tree_mib:.0f} MiB, clusters {run.digest}",
                    flush=True,
                )
        local_wall = statistics.median(x.wall for x in runs["local"])
        same = len(digests["local"] | digests["ray"]) == 1
        for method in METHODS:
            rs = runs[method]
            wall = statistics.median(x.wall for x in rs)
            lines.append(
                f"| {rows:,} | {method} | {wall:.1f} | {', '.join(f'{x.wall:.1f}' for x in rs)} | "
                f"{statistics.median(x.cpu for x in rs):.1f} | "
                f"{max(x.maxrss_mib for x in rs):.0f} | {max(x.tree_mib for x in rs):.0f} | "
                f"{wall / local_wall:.2f}x | {'yes' if same else 'NO'} |"
            )
        (base.parent / f"ray_vs_local-{rows}.json").write_text(
            json.dumps({m: [vars(x) for x in runs[m]] for m in METHODS}, indent=1)
        )
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
