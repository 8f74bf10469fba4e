"""`--engine ray`: the same kept rows, pairs and clusters as the local engine, on Ray Data.

Ray starts once for the module (`ray.init(num_cpus=2, include_dashboard=False)`, ~6-8 s) and
every run reuses it; the data is real (alpaca_en_demo, GPTeacher Toolformer rows that share one
long prompt) with planted exact, normalised and edited copies. The per-partition functions are
also checked in-process, without Ray, against the local engine and scipy.
"""

from __future__ import annotations

import json
import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from click.testing import CliRunner

from dedup_audit.cli import cli as main
from dedup_audit.config import EngineConfig, ScanConfig
from dedup_audit.engine import components as cc
from dedup_audit.engine import partition as part
from dedup_audit.engine.lexical import find_lexical, sketch_params
from dedup_audit.engine.ray_engine import FAIL_AFTER_ENV, INSTALL
from dedup_audit.pipeline import ScanResult, load, scan
from tests.conftest import DATA, ROOT, SAMPLE

pytestmark = pytest.mark.slow


def _rows() -> list[dict[str, Any]]:
    """1,300 real rows plus 160 planted copies (exact, case/space changed, 1-3 word edits)."""
    rows = json.loads((SAMPLE / "alpaca_en_demo.json").read_text())
    tool = json.loads((DATA / "minhash_gpteacher_300.json").read_text())
    rows += [
        {"instruction": r["instruction"], "input": r["input"], "output": r["response"]}
        for r in tool
    ]
    rng = random.Random(8)
    planted = []
    for k in range(160):
        src = dict(rows[rng.randrange(len(rows))])
        words = src["output"].split()
        if k % 4 == 1:
            src["instruction"] = src["instruction"].upper() + "  "
        elif k % 4 >= 2 and len(words) > 8:
            for _ in range(k % 4 - 1):
                words[rng.randrange(len(words))] = rng.choice(["indeed", "also", "the"])
            src["output"] = " ".join(words)
        planted.append(src)
    for src in planted:
        rows.insert(rng.randrange(len(rows) + 1), src)
    return rows


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ray") / "corpus.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _rows()))
    return path


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Any]:
    import ray  # the [ray] extra is in dev: a missing install must fail, not skip

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def local_result(corpus: Path) -> ScanResult:
    return scan(load(corpus))


def _same(a: ScanResult, b: ScanResult) -> None:
    """Identical decisions, clusters and evidence per view."""
    assert a.kept_indices == b.kept_indices
    assert [(d.index, d.reason, d.kept_twin) for d in a.removed] == [
        (d.index, d.reason, d.kept_twin) for d in b.removed
    ]
    assert [(c.view, c.kind, c.members) for c in a.clusters] == [
        (c.view, c.kind, c.members) for c in b.clusters
    ]
    assert set(a.views) == set(b.views)
    for view, x in a.views.items():
        y = b.views[view]
        assert np.array_equal(x.text_hash, y.text_hash)
        for name in ("exact", "near"):
            p, q = getattr(x, name), getattr(y, name)
            assert np.array_equal(p.a, q.a) and np.array_equal(p.b, q.b), (view, name)
            assert np.array_equal(p.score, q.score), (view, name)
        assert (x.candidates, x.dense_buckets) == (y.candidates, y.dense_buckets)


# --- the per-partition functions, in one process -------------------------------------------


def _by_partitions(texts: pa.Table) -> dict[str, Any]:
    """The stages run by hand on a few uneven partitions, split by the shuffle keys."""
    from dedup_audit.config import MinHashConfig

    params = sketch_params("word", MinHashConfig())

    def shuffle(table: pa.Table, key: str, parts: int = 3) -> list[pa.Table]:
        h = np.asarray(table[key]).astype(np.uint64) % np.uint64(parts)
        return [table.filter(pa.array(h == k)) for k in range(parts)]

    n = texts.num_rows
    sk = pa.concat_tables(
        [part.sketch_block(texts.slice(lo, 500), "full", params) for lo in range(0, n, 500)]
    )
    exact = pa.concat_tables([part.exact_block(b) for b in shuffle(sk, "h0")])
    banded = part.band_rows(sk, range(params.bands))
    buckets = pa.concat_tables([part.bucket_block(b) for b in shuffle(banded, "key")])
    joined = pa.concat_tables([part.payload_rows(sk), part.candidate_rows(buckets)])
    attached = pa.concat_tables([part.attach_block(b) for b in shuffle(joined, "key", 2)])
    both = pa.concat_tables([attached, part.payload_rows(sk)])
    pairs = pa.concat_tables([part.verify_block(b, 0.7) for b in shuffle(both, "key", 4)])
    order = np.lexsort((np.asarray(pairs["b"]), np.asarray(pairs["a"])))
    marks = np.asarray(buckets["lo"]) == part.DENSE_MARK
    return {
        "exact": part.exact_pairs(exact),
        "candidates": attached.num_rows,
        "dense": int(np.asarray(buckets["hi"])[marks].sum()),
        "near": tuple(np.asarray(pairs[c])[order] for c in ("a", "b", "score", "estimate")),
    }


def test_partition_functions_reproduce_the_local_engine() -> None:
    """Exact pairs, candidates, dense buckets and verified pairs equal the local engine's, on
    the corpus and on templated rows (one long real answer plus a row number: buckets of 300
    members, past DENSE_BUCKET, linked as star + chain)."""
    from dedup_audit.config import MinHashConfig, NormalizeConfig
    from dedup_audit.formats import build_sample
    from dedup_audit.formats.detect import detect_spec

    rows = _rows()
    spec = detect_spec(rows, "corpus", "auto")
    samples = [build_sample(r, spec, "corpus") for r in rows]
    long = max((r["output"] for r in rows), key=len)
    templated = [f"{long} row {k} of {k % 7}" for k in range(300)] + [long, long]
    for texts in (
        part.samples_texts(samples, 0, ["full"], NormalizeConfig()),
        pa.table({"row": np.arange(len(templated)), "full": templated}),
    ):
        local = find_lexical(texts["full"].to_pylist(), "full", MinHashConfig())
        got = _by_partitions(texts)
        assert np.array_equal(got["exact"][0], local.exact_pairs.a)
        assert np.array_equal(got["exact"][1], local.exact_pairs.b)
        assert (got["candidates"], got["dense"]) == (local.candidates, local.dense_buckets)
        p = local.near_pairs
        for mine, theirs in zip(got["near"], (p.a, p.b, p.score, p.estimate), strict=True):
            assert np.array_equal(mine, theirs)
        assert len(p) > 50  # the planted copies and the templated rows are found
    assert local.dense_buckets > 0


def test_large_star_small_star_labels_equal_scipy() -> None:
    rng = np.random.default_rng(3)
    for _ in range(25):
        n = int(rng.integers(2, 400))
        m = int(rng.integers(0, 500))
        a, b = rng.integers(0, n, m), rng.integers(0, n, m)
        assert np.array_equal(cc.local_labels(a, b, n), cc.scipy_labels(a, b, n))
    chain = np.arange(999)  # a path: the worst case for rounds
    assert np.array_equal(cc.local_labels(chain, chain + 1, 1000), np.zeros(1000, np.int64))


# --- Ray ------------------------------------------------------------------------------------


def test_clean_with_ray_from_a_uri_writes_the_local_engines_outputs(
    ray_cluster: Any, corpus: Path, tmp_path: Path
) -> None:
    """The ray run reads DATA as a URI (file://, the way s3:// and gs:// objects are read):
    the workers read byte ranges of the object, the driver a copy in --work-dir."""
    runner = CliRunner()
    outs = {}
    for engine in ("local", "ray"):
        out = tmp_path / engine / "clean.jsonl"
        data = corpus.as_uri() if engine == "ray" else str(corpus)
        more = ["--work-dir", str(tmp_path / "work")] if engine == "ray" else []
        res = runner.invoke(
            main,
            ["clean", data, "-o", str(out), "--engine", engine, "-q", *more],
            catch_exceptions=False,
        )
        assert res.exit_code == 0, res.output
        outs[engine] = (out.read_bytes(), Path(f"{out}.removed.jsonl").read_bytes())
    assert outs["ray"] == outs["local"]
    (copy,) = (tmp_path / "work").glob("remote-*/corpus.jsonl")
    assert copy.read_bytes() == corpus.read_bytes()
    removed = outs["ray"][1].decode().splitlines()
    assert len(removed) > 100  # planted copies and the dataset's own duplicates


def test_workers_read_jsonl_with_the_same_result(
    ray_cluster: Any, corpus: Path, local_result: ScanResult
) -> None:
    """A lazily read JSON Lines file is read by the workers (byte ranges), not the driver."""
    from dedup_audit.engine.ray_engine import plan_chunks

    lazy = load(corpus, lazy=True)
    assert plan_chunks(lazy.records) is not None
    _same(local_result, scan(lazy, engine=EngineConfig(kind="ray")))


def test_bad_input_found_by_a_worker_is_raised_as_itself(
    ray_cluster: Any, corpus: Path, tmp_path: Path
) -> None:
    """A worker reading a truncated line raises InputError naming the file and row; the stage
    unwraps Ray's task error and raises that, not an internal error."""
    from dedup_audit.engine.ray_engine import Chunk, RaySession, Store, read_chunk
    from dedup_audit.errors import InputError
    from dedup_audit.formats.detect import detect_spec

    lines = corpus.read_text().splitlines()
    lines[3] = lines[3][:-5]
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines[:10]) + "\n")
    spec = detect_spec([json.loads(x) for x in lines[:3]], "bad", "auto")
    chunk = Chunk(bad.as_uri(), "jsonl", 0, 0, bad.stat().st_size)
    with pytest.raises(InputError, match=r"bad\.jsonl: row 4 is not valid JSON \(column"):
        read_chunk(vars(chunk), spec, ["full"], ScanConfig().normalize)
    with RaySession(EngineConfig(kind="ray")) as session:
        session.store = Store(str(tmp_path / "work"))
        ds = ray_cluster.data.from_items([vars(chunk)]).map_batches(
            ray_engine_read_batch(),
            batch_size=1,
            batch_format="pyarrow",
            fn_kwargs={"spec": spec, "views": ["full"], "normalize_cfg": ScanConfig().normalize},
        )
        with pytest.raises(InputError, match=r"bad\.jsonl: row 4 is not valid JSON \(column"):
            session._stage("texts", lambda: ds)
    assert not session.store.done("texts")


def ray_engine_read_batch() -> Any:
    from dedup_audit.engine.ray_engine import _read_batch

    return _read_batch


def test_parquet_row_groups_and_distributed_components(
    ray_cluster: Any, corpus: Path, tmp_path: Path
) -> None:
    """Parquet read by the workers one row group a task, and driver_edges=0, which sends the
    components to large-star/small-star rounds on Ray: the same clusters as the local engine."""
    import pyarrow.parquet as pq

    from dedup_audit.engine import ray_engine

    pq_path = tmp_path / "corpus.parquet"
    table = pa.Table.from_pylist([json.loads(x) for x in corpus.read_text().splitlines()])
    pq.write_table(table, pq_path, row_group_size=400)
    data = load(pq_path, lazy=True)
    planned = ray_engine.plan_chunks(data.records)
    assert planned is not None and len(planned[0]) == 4
    cfg = ScanConfig(views=("full",))
    local = scan(data, cfg)
    calls: list[int] = []
    real = ray_engine.RaySession._distributed_labels

    def spy(self: Any, a: Any, b: Any, n: int) -> Any:
        calls.append(len(a))
        return real(self, a, b, n)

    ray_engine.RaySession._distributed_labels = spy  # type: ignore[method-assign]
    try:
        dist = scan(data, cfg, engine=EngineConfig(kind="ray", driver_edges=0))
    finally:
        ray_engine.RaySession._distributed_labels = real  # type: ignore[method-assign]
    assert calls and calls[0] > 100
    _same(local, dist)


def test_a_stopped_run_resumes_from_its_checkpoints(
    ray_cluster: Any, corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    work = tmp_path / "work"
    out = tmp_path / "out" / "clean.jsonl"
    args = ["clean", str(corpus), "-o", str(out), "--engine", "ray", "--work-dir", str(work)]
    monkeypatch.setenv(FAIL_AFTER_ENV, "exact")
    res = runner.invoke(main, [*args, "-q"])
    assert res.exit_code == 1
    assert "stopped after stage exact" in res.output
    assert not out.exists() and not Path(f"{out}.removed.jsonl").exists()  # nothing partial
    (run,) = work.glob("ray-*")
    done = {p.parent.name: p.stat().st_mtime_ns for p in run.glob("*/_SUCCESS")}
    assert set(done) == {"texts", "sketch", "exact"}
    monkeypatch.delenv(FAIL_AFTER_ENV)
    time.sleep(0.01)
    res = runner.invoke(main, [*args, "-q"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    after = {p.parent.name: p.stat().st_mtime_ns for p in run.glob("*/_SUCCESS")}
    assert {k: after[k] for k in done} == done  # resumed, not recomputed
    assert {"bands0", "attached", "near"} <= set(after)
    local = tmp_path / "local.jsonl"
    assert runner.invoke(main, ["clean", str(corpus), "-o", str(local), "-q"]).exit_code == 0
    assert out.read_bytes() == local.read_bytes()
    assert Path(f"{out}.removed.jsonl").read_bytes() == Path(f"{local}.removed.jsonl").read_bytes()


def test_unreachable_cluster_exits_2_naming_the_address(corpus: Path, tmp_path: Path) -> None:
    """A fresh process (no Ray running in it): a closed port is refused at once, named."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"ray://127.0.0.1:{port}"
    began = time.monotonic()
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "dedup_audit", "scan", str(corpus)),
            *("-o", str(tmp_path / "s"), "--engine", "ray", "--ray-address", address, "-q"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert proc.returncode == 2, proc.stderr
    assert address in proc.stderr and "cannot reach the Ray cluster" in proc.stderr
    assert time.monotonic() - began < 60
    assert not (tmp_path / "s").exists()


def test_without_ray_the_engine_exits_2_naming_the_extra(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    res = CliRunner().invoke(
        main, ["scan", str(corpus), "-o", str(tmp_path / "s"), "--engine", "ray", "-q"]
    )
    assert res.exit_code == 2
    assert INSTALL in res.output
    assert not (tmp_path / "s").exists()


def test_a_killed_run_resumes_from_its_checkpoints(corpus: Path, tmp_path: Path) -> None:
    """SIGKILL the whole run (driver and the Ray processes it started) while a later stage is
    running, as an OOM killer or a lost machine would: no outputs appear, and the same command
    then resumes after the last finished stage and writes the local engine's outputs."""
    import os
    import signal

    work = tmp_path / "work"
    out = tmp_path / "out" / "clean.jsonl"
    cmd = [sys.executable, "-m", "dedup_audit", "clean", str(corpus), "-o", str(out), "-q",
           "--engine", "ray", "--work-dir", str(work)]  # fmt: skip
    env = {**os.environ, "RAY_ADDRESS": ""}
    proc = subprocess.Popen(cmd, env=env, start_new_session=True)
    deadline = time.monotonic() + 240
    done: dict[str, int] = {}
    while time.monotonic() < deadline and proc.poll() is None:
        done = {p.parent.name: p.stat().st_mtime_ns for p in work.glob("ray-*/*/_SUCCESS")}
        if "sketch" in done:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert "sketch" in done and "near" not in done
    assert not out.exists() and not Path(f"{out}.removed.jsonl").exists()
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    after = {p.parent.name: p.stat().st_mtime_ns for p in work.glob("ray-*/*/_SUCCESS")}
    assert {k: after[k] for k in done} == done  # finished stages were not recomputed
    assert {"attached", "near"} <= set(after)
    local = tmp_path / "local.jsonl"
    assert CliRunner().invoke(main, ["clean", str(corpus), "-o", str(local), "-q"]).exit_code == 0
    assert out.read_bytes() == local.read_bytes()
    assert Path(f"{out}.removed.jsonl").read_bytes() == Path(f"{local}.removed.jsonl").read_bytes()
