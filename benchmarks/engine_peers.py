"""dedup-audit's lexical engine against the pipelines users write instead, in one sitting.

Why: issue 7's targets are ratios (scan --views full at least 30x the datasketch loop and 1.5x
rensa on 50k rows; 1M rows in at most 3 GiB), and ratios on a shared 2-core machine only mean
something when the methods run side by side, interleaved, repeated, on the same file, timed as
whole processes, and scored on the same labels. This script does exactly that:

  dedup-audit-full   `dedup-audit scan CORPUS --views full -o OUT -q --force`
  dedup-audit-all    `dedup-audit scan CORPUS -o OUT -q --force` (default views)
  datasketch-loop    peers/datasketch_loop.py: MinHash per document + MinHashLSH + union-find
  datasketch-bulk    peers/datasketch_bulk.py: MinHash.bulk + MinHashLSH + union-find
  rensa              peers/rensa_lsh.py: Python shingling + rensa RMinHash + RMinHashLSH + union-find
  python-floor       peers/python_floor.py: start Python, import numpy, json-parse every line,
                     nothing else: the least any Python tool pays, so datasketch-loop / floor is
                     the largest ratio any Python pipeline can reach on this corpus
  text-dedup         peers/text_dedup_runner.py in benchmarks/_work/textdedup-venv (skipped, with
                     the reason, when that venv is missing or the run fails)

Every method is its own subprocess, timed as a whole (interpreter start, reading, writing): wall
time, CPU time and peak RSS from os.wait4 (the largest process of the tree), plus the peak of the
summed RSS of the process tree sampled from /proc every 0.2 s (multi-process engines). --repeat N
runs N rounds; each round runs every method once, the order rotated by one per round; the table
gives the median wall time.

Scoring, the same for every method, against the corpus labels (benchmarks/corpus.py):
- recall: a planted copy counts when it lands in the same cluster as its source; by kind (exact,
  norm, near edit levels) and by exact-Jaccard band (>= 0.8 is the threshold every method uses).
- precision: the share of a method's merges that exact Jaccard supports. A cluster of s members
  makes s - 1 merges; of those, s - k are supported, where k is the number of connected components
  of the graph "exact Jaccard >= 0.8" among its members (the best spanning explanation). Clusters
  over 256 members are judged on their first 256 members, weighted by s - 1.
dedup-audit's clusters come from OUT/report.json (`clusters` with view "full"), the peers' from
their clusters JSONL (one list of row indices per line).

    .venv/bin/python benchmarks/engine_peers.py --rows 50000 --repeat 2
    .venv/bin/python benchmarks/engine_peers.py --rows 50000 --methods dedup-audit-full,rensa \\
        --dedup-audit-bin /path/to/other/checkout/.venv/bin/dedup-audit
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORK = HERE / "_work"
PEERS = HERE / "peers"
TEXTDEDUP_PY = WORK / "textdedup-venv" / "bin" / "python"
sys.path.insert(0, str(PEERS))
sys.path.insert(0, str(HERE))
from common import THRESHOLD, full_view, normalize, read_rows, shingles  # noqa: E402
from corpus import BANDS, KINDS, band  # noqa: E402

METHODS = (
    "dedup-audit-full",
    "dedup-audit-all",
    "datasketch-loop",
    "datasketch-bulk",
    "rensa",
    "text-dedup",
    "python-floor",
)
MAX_JUDGED = 256


@dataclass
class Run:
    wall: float
    cpu: float
    maxrss_mib: float
    tree_mib: float
    rc: int
    digest: str = ""


@dataclass
class Result:
    method: str
    runs: list[Run] = field(default_factory=list)
    clusters: list[list[int]] | None = None
    note: str = ""


class TreeRss:
    """Peak of the summed RSS of a process and its descendants, sampled from /proc."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self.pid, self.interval, self.peak = pid, interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._page = os.sysconf("SC_PAGE_SIZE")
        self._thread.start()

    def _tree(self) -> list[int]:
        children: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    stat = Path(f"/proc/{entry}/stat").read_text()
                except OSError:
                    continue
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
        out, todo = [], [self.pid]
        while todo:
            p = todo.pop()
            out.append(p)
            todo += children.get(p, [])
        return out

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            total = 0
            for p in self._tree():
                with contextlib.suppress(OSError, IndexError, ValueError):
                    total += int(Path(f"/proc/{p}/statm").read_text().split()[1]) * self._page
            self.peak = max(self.peak, total)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak / 2**20


def command(method: str, corpus: Path, out: Path, args: argparse.Namespace) -> list[str] | None:
    if method.startswith("dedup-audit"):
        views = ["--views", "full"] if method == "dedup-audit-full" else []
        return [str(args.dedup_audit_bin), "scan", str(corpus), *views, "-o", str(out), "-q", "--force"]  # fmt: skip
    script = {
        "datasketch-loop": "datasketch_loop.py",
        "datasketch-bulk": "datasketch_bulk.py",
        "rensa": "rensa_lsh.py",
        "python-floor": "python_floor.py",
    }.get(method)
    if script:
        return [args.python, str(PEERS / script), str(corpus), str(out / "clusters.jsonl")]
    if method == "text-dedup":
        if not TEXTDEDUP_PY.exists():
            return None
        return [str(TEXTDEDUP_PY), str(PEERS / "text_dedup_runner.py"), str(corpus),
                str(out / "clusters.jsonl"), str(out / "work")]  # fmt: skip
    raise SystemExit(f"unknown method {method!r}; choose from {', '.join(METHODS)}")


def run_once(cmd: list[str], out: Path, timeout: float, log: Path) -> Run:
    """One whole-process run: wall, CPU (user + sys of the tree), peak RSS."""
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1",
               TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
               PYTHONDONTWRITEBYTECODE="1")  # fmt: skip
    with log.open("w") as fh:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env)
        sampler = TreeRss(proc.pid)
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
    tree = sampler.stop()
    rss = usage.ru_maxrss / 1024  # KiB on Linux
    return Run(wall, usage.ru_utime + usage.ru_stime, rss, max(tree, rss), proc.returncode)


def read_clusters(method: str, out: Path) -> list[list[int]]:
    if method.startswith("dedup-audit"):
        report = json.loads((out / "report.json").read_text(encoding="utf-8"))
        return [
            sorted(m["index"] for m in c["members"])
            for c in report["clusters"]
            if c["view"] == report["config"].get("dedup_view", "full")
        ]
    with (out / "clusters.jsonl").open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def checkout_commit(binary: Path) -> str:
    """Short commit of the checkout whose .venv/bin holds `binary`, "+dirty" with local changes."""
    repo = str(binary.absolute().parents[2])
    head = subprocess.run(["git", "-C", repo, "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    if not head:
        return "?"
    dirty = subprocess.run(["git", "-C", repo, "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()  # fmt: skip
    return head + ("+dirty" if dirty else "")


def digest(clusters: list[list[int]]) -> str:
    return hashlib.sha256(json.dumps(sorted(clusters)).encode()).hexdigest()[:12]


def ensure_corpus(args: argparse.Namespace) -> Path:
    if args.corpus:
        return Path(args.corpus)
    path = WORK / f"corpus-{args.rows}-s{args.seed}.jsonl"
    if not path.exists():
        subprocess.run(
            [sys.executable, str(HERE / "corpus.py"), "--rows", str(args.rows), "--seed",
             str(args.seed), "--out-dir", str(WORK)],
            check=True,
        )  # fmt: skip
    return path


@dataclass
class Score:
    recall_by_kind: dict[str, tuple[int, int]]
    recall_by_band: dict[str, tuple[int, int]]
    merges: int
    supported: float
    clusters: int


def score(clusters: list[list[int]], labels: list[dict[str, object]], sets: dict[int, set[str]]) -> Score:  # fmt: skip
    cluster_of: dict[int, int] = {}
    for c, members in enumerate(clusters):
        for m in members:
            cluster_of[m] = c
    by_kind: dict[str, list[int]] = {}
    by_band: dict[str, list[int]] = {}
    for x in labels:
        a, b = int(x["copy"]), int(x["source"])  # type: ignore[call-overload]
        hit = int(a in cluster_of and cluster_of.get(a) == cluster_of.get(b))
        for key, table in ((str(x["kind"]), by_kind), (band(float(x["jaccard"])), by_band)):  # type: ignore[arg-type]
            cell = table.setdefault(key, [0, 0])
            cell[0] += hit
            cell[1] += 1
    merges = 0
    supported = 0.0
    for members in clusters:
        judged = members[:MAX_JUDGED]
        s = len(members)
        merges += s - 1
        comps = components([sets[m] for m in judged])
        supported += (s - 1) * (len(judged) - comps) / max(1, len(judged) - 1)
    return Score(
        {k: (v[0], v[1]) for k, v in by_kind.items()},
        {k: (v[0], v[1]) for k, v in by_band.items()},
        merges,
        supported,
        len(clusters),
    )


def components(ss: list[set[str]]) -> int:
    """Connected components of the graph "exact Jaccard >= THRESHOLD" over these sets."""
    parent = list(range(len(ss)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    sizes = [len(s) for s in ss]
    comps = len(ss)
    for i in range(len(ss)):
        for j in range(i + 1, len(ss)):
            lo, hi = sorted((sizes[i], sizes[j]))
            if hi == 0 or lo < THRESHOLD * hi:
                continue  # Jaccard <= lo / hi < threshold
            inter = len(ss[i] & ss[j])
            if inter >= THRESHOLD * (sizes[i] + sizes[j] - inter):
                ri, rj = find(i), find(j)
                if ri != rj:
                    parent[ri] = rj
                    comps -= 1
    return comps


def load_sets(corpus: Path, need: set[int]) -> dict[int, set[str]]:
    """Shingle sets (normalised full view, word 3-grams) of the rows that scoring needs."""
    return {
        i: shingles(normalize(full_view(row)))
        for i, row in enumerate(read_rows(corpus))
        if i in need
    }


def fmt_ratio(base: float | None, wall: float) -> str:
    return f"{base / wall:.2f}x" if base else "-"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example: .venv/bin/python benchmarks/engine_peers.py --rows 50000 --repeat 2",
    )
    ap.add_argument("--rows", type=int, default=50_000)
    ap.add_argument("--seed", type=int, default=0, help="corpus seed")
    ap.add_argument("--corpus", help="use this corpus JSONL (its .labels.jsonl next to it)")
    ap.add_argument("--repeat", type=int, default=1, help="rounds; the order rotates per round")
    ap.add_argument("--methods", default=",".join(METHODS), help="comma-separated subset")
    ap.add_argument("--skip-text-dedup", action="store_true")
    ap.add_argument(
        "--dedup-audit-bin",
        type=Path,
        default=ROOT / ".venv" / "bin" / "dedup-audit",
        help="the dedup-audit executable to time (another checkout's .venv/bin/dedup-audit)",
    )
    ap.add_argument(
        "--dedup-audit-label",
        default="",
        help="what to call that dedup-audit in the table (default: its checkout's git commit)",
    )
    ap.add_argument("--python", default=sys.executable, help="interpreter for the peer scripts")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per run")
    ap.add_argument("--tag", default="", help="suffix of the output folder and result files")
    args = ap.parse_args(argv)
    methods = [m for m in args.methods.split(",") if m]
    if args.skip_text_dedup:
        methods = [m for m in methods if m != "text-dedup"]
    corpus = ensure_corpus(args)
    labels_path = corpus.with_name(corpus.stem + ".labels.jsonl")
    labels = [json.loads(line) for line in labels_path.open(encoding="utf-8")]
    rows = sum(1 for _ in corpus.open("rb"))
    tag = f"{rows}{'-' + args.tag if args.tag else ''}"
    base = WORK / f"engine_peers-{tag}"
    results = {m: Result(m) for m in methods}
    commit = args.dedup_audit_label or checkout_commit(Path(args.dedup_audit_bin))
    print(f"corpus {corpus} ({rows:,} rows, {len(labels):,} labelled copies); dedup-audit "
          f"{args.dedup_audit_bin} (commit {commit}); {os.cpu_count()} CPUs; load "
          f"{os.getloadavg()[0]:.1f}")  # fmt: skip
    for r in range(args.repeat):
        order = methods[r % len(methods) :] + methods[: r % len(methods)]
        for m in order:
            res = results[m]
            if res.note:
                continue
            out = base / m
            cmd = command(m, corpus, out, args)
            if cmd is None:
                res.note = f"skipped: {TEXTDEDUP_PY} missing (see benchmarks/README.md)"
                print(f"  {m}: {res.note}")
                continue
            run = run_once(cmd, out, args.timeout, base / f"{m}.log")
            if run.rc != 0:
                tail = (base / f"{m}.log").read_text(errors="replace").strip().splitlines()[-2:]
                res.note = f"failed (exit {run.rc}): " + " | ".join(tail)[:300]
                print(f"  round {r + 1} {m}: {res.note}")
                continue
            clusters = read_clusters(m, out)
            run.digest = digest(clusters)
            res.runs.append(run)
            if res.clusters is None:
                res.clusters = clusters
            print(f"  round {r + 1} {m}: {run.wall:.1f}s wall, {run.cpu:.1f}s CPU, "
                  f"{run.maxrss_mib:.0f} MiB max RSS, tree {run.tree_mib:.0f} MiB, "
                  f"{len(clusters)} clusters [{run.digest}] (load {os.getloadavg()[0]:.1f})",
                  flush=True)  # fmt: skip
    need = {int(x["copy"]) for x in labels} | {int(x["source"]) for x in labels}
    for res in results.values():
        for c in res.clusters or []:
            need.update(c[:MAX_JUDGED])
    sets = load_sets(corpus, need)
    scores = {m: score(res.clusters, labels, sets) for m, res in results.items() if res.clusters is not None}  # fmt: skip
    med = {m: statistics.median(x.wall for x in res.runs) for m, res in results.items() if res.runs}
    lines = [
        f"Corpus: `{corpus.name}` ({rows:,} rows, {len(labels):,} labelled copies), dedup-audit "
        f"commit {commit}, {args.repeat} round(s) interleaved, {os.cpu_count()} CPUs.",
        "",
        "| method | wall s (median) | walls | CPU s | peak RSS MiB | tree RSS MiB | x vs datasketch loop | x vs rensa | recall J>=0.8 | precision | clusters | merges |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m, res in results.items():
        if not res.runs:
            lines.append(f"| {m} | - | - | - | - | - | - | - | - | - | - | - |  {res.note}")
            continue
        sc = scores[m]
        hit = sum(sc.recall_by_band.get(b, (0, 0))[0] for b in ("=1.0", "[0.9,1)", "[0.8,0.9)"))
        tot = sum(sc.recall_by_band.get(b, (0, 0))[1] for b in ("=1.0", "[0.9,1)", "[0.8,0.9)"))
        same = "" if len({x.digest for x in res.runs}) == 1 else " (clusters differ between runs!)"
        lines.append(
            f"| {m} | {med[m]:.1f} | {', '.join(f'{x.wall:.1f}' for x in res.runs)} | "
            f"{statistics.median(x.cpu for x in res.runs):.1f} | "
            f"{max(x.maxrss_mib for x in res.runs):.0f} | {max(x.tree_mib for x in res.runs):.0f} | "
            f"{fmt_ratio(med.get('datasketch-loop'), med[m])} | {fmt_ratio(med.get('rensa'), med[m])} | "
            f"{hit / max(1, tot):.4f} | {sc.supported / max(1, sc.merges):.4f} | "
            f"{sc.clusters:,} | {sc.merges:,} |{same}"
        )
    kinds = [k for k, *_ in KINDS]
    bands = [b for _, b in BANDS]
    lines += [
        "",
        "Recall of planted copies (copy in its source's cluster), by kind and by exact-Jaccard band:",
        "",
        "| method | " + " | ".join(kinds) + " | " + " | ".join(f"J {b}" for b in bands) + " |",
        "|---|" + "---:|" * (len(kinds) + len(bands)),
    ]
    for m, sc in scores.items():
        cells = [sc.recall_by_kind.get(k, (0, 0)) for k in kinds]
        cells += [sc.recall_by_band.get(b, (0, 0)) for b in bands]
        lines.append(f"| {m} | " + " | ".join(f"{h / t:.3f} ({t})" if t else "-" for h, t in cells) + " |")  # fmt: skip
    table = "\n".join(lines)
    print("\n" + table)
    (WORK / f"engine_peers-{tag}.md").write_text(table + "\n", encoding="utf-8")
    raw = {m: {"runs": [vars(x) for x in res.runs], "note": res.note} for m, res in results.items()}
    (WORK / f"engine_peers-{tag}.json").write_text(json.dumps(raw, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
