"""`--engine ray`: the lexical engine on Ray Data, a thin adapter over `engine.partition`.

Stages, each checkpointed to Parquet under the work folder (a `_SUCCESS` marker is written
last, so a stage either finished or is redone; a rerun with the same input and options resumes
after the last finished stage):

    texts      records -> normalised view texts (read in the workers for JSON Lines and Parquet
               files read lazily; written by the driver for small, eagerly loaded inputs)
    sketch     exact hash, shingles, MinHash signature, band keys of every view (a map)
    exact      one hash shuffle of (view, row, hash) only: each record linked to its group's
               representative (the exact pairs)
    bandsG     per group of bands: one hash shuffle on (view, band, key); each bucket keeps
               one representative per text and proposes the local engine's candidates
    attached   one shuffle on lo: distinct candidates carrying lo's sketch
    near       one shuffle on hi: exact Jaccard of every candidate, >= the score floor

Every view goes through the same stages (rows carry a `view` column), so a run has six to
eight stages whatever the number of views.

The driver then reads the pairs (and each record's exact hash) back; connected components run
on the driver with scipy up to `EngineConfig.driver_edges` edges and as distributed
large-star/small-star rounds above it (`engine.components`). Outputs are written by the
pipeline only after every stage finished: a failed run leaves checkpoints, never outputs.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import socket
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dedup_audit.config import EngineConfig, MinHashConfig, NormalizeConfig
from dedup_audit.detect.minhash import score_floor
from dedup_audit.engine import components as cc
from dedup_audit.engine import partition as part
from dedup_audit.engine.lexical import LexicalResult, sketch_params
from dedup_audit.errors import ConfigError, DedupAuditError, MissingDependencyError
from dedup_audit.records import Dataset, PairSet
from dedup_audit.views import shingle_mode

if TYPE_CHECKING:
    import numpy.typing as npt

INSTALL = "pip install 'dedup-audit[ray]'"
FAIL_AFTER_ENV = "DEDUP_AUDIT_RAY_FAIL_AFTER"
"""Tests only: stop the run with an error right after this stage's checkpoint is written."""

CHUNK_ROWS = 20_000
"""Records per read task (one block of the texts stage)."""

BAND_SHUFFLE_ROWS = 20_000_000
"""(band, key, row) rows per band shuffle: a group of bands is as many as fit (all 18 bands of
the default banding for up to ~370k records per view; 1M records x 3 views take 3 shuffles)."""

PARTITION_BYTES = 128 * 2**20
"""Target size of one shuffle partition. Ray's key repartition never splits a partition into
several blocks (`disallow_block_splitting`), so a whole-block map sees every row of its keys;
this only bounds a block's memory."""

SKETCH_BYTES = 2_400
"""About one sketch row (128 slots, 18 band keys, ~150 shingles, list overhead)."""

BAND_BYTES = 40
"""One (view, band, key, row, h0, h1) row (also about an exact-stage row)."""

CONNECT_TIMEOUT_S = 15.0
SCHEME = "dedup-audit/ray-v1"
_VIEW = ("view", pa.int8())
HASHES = pa.schema([("row", pa.int64()), ("h0", pa.uint64()), ("h1", pa.uint64()), _VIEW])
LINKS = pa.schema([("row", pa.int64()), ("rep", pa.int64()), _VIEW])
VIEWS = pa.schema([_VIEW])
CANDIDATES = part.CANDIDATES.append(pa.field(*_VIEW))
PAIRS = part.PAIRS.append(pa.field(*_VIEW))


class RayStageError(DedupAuditError):
    """A stage failed on the cluster after Ray's retries; finished stages stay checkpointed."""

    exit_code = 1


def import_ray() -> Any:
    """The ray module, or a clear error naming the extra that installs it."""
    try:
        import ray
        import ray.data
    except ImportError:
        raise MissingDependencyError(
            f"--engine ray needs Ray Data, which is not installed: {INSTALL}"
        ) from None
    return ray


def check_address(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Fail fast, naming the address, when no Ray head answers there (ray.init alone retries
    for minutes). `auto` and `local` are left to Ray."""
    if address in ("auto", "local"):
        return
    parsed = urlparse(address if "://" in address else f"tcp://{address}")
    host, port = parsed.hostname, parsed.port
    if not host or not port:
        raise ConfigError(
            f"--ray-address {address!r} is not HOST:PORT or ray://HOST:PORT (or auto)"
        )
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as err:
        raise ConfigError(
            f"cannot reach the Ray cluster at {address} within {timeout:g} s ({err}); check "
            "--ray-address / RAY_ADDRESS, or drop it to start Ray on this machine"
        ) from None


# --- checkpoint storage (a local folder or a pyarrow filesystem URI) -------------------------


@dataclass(frozen=True)
class Store:
    """Stage folders under one root, on a local disk or object storage (s3://, gs://)."""

    root: str

    def fs(self) -> tuple[Any, str]:
        from pyarrow import fs

        if "://" in self.root:
            return fs.FileSystem.from_uri(self.root)
        return fs.LocalFileSystem(), os.path.abspath(self.root)

    def uri(self, stage: str) -> str:
        return (
            f"{self.root.rstrip('/')}/{stage}"
            if "://" in self.root
            else os.path.abspath(os.path.join(self.root, stage))
        )

    def done(self, stage: str) -> bool:
        from pyarrow import fs as pafs

        filesystem, base = self.fs()
        info = filesystem.get_file_info(f"{base}/{stage}/_SUCCESS")
        return bool(info.type == pafs.FileType.File)

    def clear(self, stage: str) -> None:
        from pyarrow import fs as pafs

        filesystem, base = self.fs()
        if filesystem.get_file_info(f"{base}/{stage}").type != pafs.FileType.NotFound:
            filesystem.delete_dir(f"{base}/{stage}")

    def mark(self, stage: str) -> None:
        filesystem, base = self.fs()
        filesystem.create_dir(f"{base}/{stage}", recursive=True)
        with filesystem.open_output_stream(f"{base}/{stage}/_SUCCESS") as out:
            out.write(json.dumps({"finished": time.time()}).encode())

    def log(self, stage: str, seconds: float) -> None:
        """Append a finished stage and its wall seconds to the root's stages.jsonl."""
        filesystem, base = self.fs()
        path = f"{base}/stages.jsonl"
        try:
            with filesystem.open_input_stream(path) as fh:
                old = fh.read()
        except (FileNotFoundError, OSError):
            old = b""
        line = json.dumps({"stage": stage, "seconds": round(seconds, 2)}) + "\n"
        with filesystem.open_output_stream(path) as out:
            out.write(old + line.encode())

    def count(self, stage: str) -> int:
        import pyarrow.parquet as pq

        filesystem, base = self.fs()
        total = 0
        for f in self.files(stage):
            with filesystem.open_input_file(f"{base}/{f}") as fh:
                total += pq.ParquetFile(fh).metadata.num_rows
        return total

    def files(self, stage: str) -> list[str]:
        """The stage's Parquet files, relative to the root, sorted."""
        from pyarrow import fs as pafs

        filesystem, base = self.fs()
        infos = filesystem.get_file_info(pafs.FileSelector(f"{base}/{stage}", recursive=True))
        names = [
            i.path[len(base) + 1 :]
            for i in infos
            if i.type == pafs.FileType.File and i.path.endswith(".parquet")
        ]
        return sorted(names)

    def read(
        self,
        stage: str,
        columns: Sequence[str] | None = None,
        flt: Any = None,
        schema: pa.Schema | None = None,
    ) -> pa.Table:
        """A finished stage as one table (Ray writes no file for an empty result: `schema`
        is then the empty table's)."""
        import pyarrow.dataset as pds

        filesystem, base = self.fs()
        files = [f"{base}/{f}" for f in self.files(stage)]
        if not files:
            assert schema is not None, f"stage {stage} wrote no rows"
            return schema.empty_table()
        ds = pds.dataset(files, filesystem=filesystem, format="parquet")
        return ds.to_table(columns=list(columns) if columns else None, filter=flt)


# --- input ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Chunk:
    """One read task: records first_row.. of a JSON Lines byte range or Parquet row groups."""

    path: str
    kind: str  # "jsonl" | "parquet"
    first_row: int
    start: int  # jsonl: byte offset; parquet: first row group
    end: int  # jsonl: byte end; parquet: row group after the last


def plan_chunks(
    records: Sequence[Any], source_uri: str | None = None
) -> tuple[list[Chunk], Any] | None:
    """Read tasks over the file behind lazily read records (and their format spec), or None
    when the records are in memory (the driver then writes the texts itself). `source_uri`:
    the object the records' local file was copied from (the workers read that instead)."""
    from dedup_audit.readers.lazy import JsonlSource, LazyRecords, ParquetSource

    if not isinstance(records, LazyRecords):
        return None
    src = records.source
    chunks: list[Chunk] = []
    if isinstance(src, JsonlSource):
        path = source_uri or str(Path(src._read).resolve())
        for lo in range(0, src.n, CHUNK_ROWS):
            hi = min(lo + CHUNK_ROWS, src.n)
            chunks.append(Chunk(path, "jsonl", lo, int(src._starts[lo]), int(src._ends[hi - 1])))
        return chunks, records.spec
    if isinstance(src, ParquetSource):
        path = source_uri or str(Path(src.path).resolve())
        bounds = src._bounds.tolist()
        for g in range(len(bounds) - 1):
            chunks.append(Chunk(path, "parquet", int(bounds[g]), g, g + 1))
        return chunks, records.spec
    return None


def read_chunk(
    chunk: dict[str, Any], spec: Any, views: Sequence[str], normalize_cfg: NormalizeConfig
) -> pa.Table:
    """Texts of one read task (runs in a worker; local paths or pyarrow filesystem URIs)."""
    from pyarrow import fs

    path = chunk["path"]
    filesystem, where = (
        fs.FileSystem.from_uri(path) if "://" in path else (fs.LocalFileSystem(), path)
    )
    with filesystem.open_input_file(where) as fh:
        if chunk["kind"] == "jsonl":
            data = fh.read_at(chunk["end"] - chunk["start"], chunk["start"])
            rows = part.parse_jsonl(data, path, chunk["first_row"])
        else:
            import pyarrow.parquet as pq

            rows = pq.ParquetFile(fh).read_row_groups([chunk["start"]]).to_pylist()
    return part.view_texts(rows, chunk["first_row"], spec, views, normalize_cfg, path)


# --- the session ---------------------------------------------------------------------------


class RaySession:
    """Ray connected (or started) for one scan: the lexical stages and, when there are more
    edges than the driver should hold, connected components."""

    def __init__(self, engine: EngineConfig) -> None:
        self.engine = engine
        self.ray = import_ray()
        self.started = False
        self.store: Store | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.ran: list[str] = []
        self.resumed: list[str] = []
        self.seconds: dict[str, float] = {}  # per stage that ran
        self._bar: Any = None  # one tick per stage, finished or resumed

    def __enter__(self) -> RaySession:
        import logging

        ray = self.ray
        if not ray.is_initialized():
            address = self.engine.ray_address or os.environ.get("RAY_ADDRESS")
            if address:
                check_address(address, self.engine.ray_connect_timeout)
                ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
            else:
                ray.init(
                    num_cpus=self.engine.threads,
                    include_dashboard=False,
                    log_to_driver=False,
                    logging_level=logging.WARNING,
                )
            self.started = True
        for name in ("ray", "ray.data"):
            logging.getLogger(name).setLevel(logging.WARNING)
        # our own bar counts stages; Ray's notice that its bars are off is noise
        logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)
        ctx = ray.data.DataContext.get_current()
        # the hash shuffle (aggregator actors) measured 2-3x faster per stage than SHUFFLE_V2
        ctx.shuffle_strategy = ray.data.context.ShuffleStrategy.HASH_SHUFFLE
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
        if self.started:
            self.ray.shutdown()

    # -- stages ---------------------------------------------------------------------------

    def _cpus(self) -> int:
        return max(1, int(self.ray.cluster_resources().get("CPU", 1)))

    def _blocks(self, rows: int, row_bytes: int = SKETCH_BYTES) -> int:
        """Partitions for a shuffle of `rows` rows: every CPU busy, none past the target."""
        return max(self._cpus(), math.ceil(rows * row_bytes / PARTITION_BYTES))

    def _stage(self, name: str, build: Any) -> None:
        """Run a stage unless its checkpoint is there; write it, then mark it finished."""
        assert self.store is not None
        if self._bar is not None:
            self._bar.update(1)
        if self.store.done(name):
            self.resumed.append(name)
            return
        self.store.clear(name)
        began = time.perf_counter()
        try:
            ds = build()
            ds.write_parquet(self.store.uri(name))
        except Exception as err:
            cause = _user_error(err)
            if cause is not None:  # bad input found by a worker: its own message
                raise cause from None
            if not isinstance(err, self.ray.exceptions.RayError) and not _from_ray_data(err):
                raise
            raise RayStageError(
                f"Ray stage {name} failed after retries ({type(err).__name__}: "
                f"{str(err).splitlines()[0] if str(err) else ''}); finished stages are kept in "
                f"{self.store.root}: rerun the same command to resume"
            ) from None
        self.store.mark(name)
        self.ran.append(name)
        self.seconds[name] = time.perf_counter() - began
        self.store.log(name, self.seconds[name])
        if os.environ.get(FAIL_AFTER_ENV) == name:
            raise RayStageError(f"stopped after stage {name} ({FAIL_AFTER_ENV} is set)")

    def _read(self, *stages: str, columns: Sequence[str] | None = None) -> Any:
        """A Ray dataset over finished stages: one read task per Parquet file (Ray's own
        read_parquet resolves paths through fsspec's HTTP filesystem, which needs aiohttp)."""
        assert self.store is not None
        files = [f for s in stages for f in self.store.files(s)]
        items = [{"path": f} for f in files]
        return self.ray.data.from_items(items, override_num_blocks=max(1, len(items))).map_batches(
            _read_parquet,
            batch_size=1,
            batch_format="pyarrow",
            fn_kwargs={"root": self.store.root, "columns": list(columns) if columns else None},
        )

    def _open_store(self, key: dict[str, Any], resumable: bool) -> None:
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
        if self.engine.work_dir and resumable:
            self.store = Store(f"{self.engine.work_dir.rstrip('/')}/ray-{digest}")
            return
        hint = (
            self.engine.work_dir
            if self.engine.work_dir and "://" not in self.engine.work_dir
            else None
        )
        if hint:
            Path(hint).mkdir(parents=True, exist_ok=True)
        self._tmp = tempfile.TemporaryDirectory(prefix="dedup-audit-ray-", dir=hint)
        self.store = Store(self._tmp.name)

    def scan_lexical(
        self,
        dataset: Dataset,
        views: Sequence[str],
        normalize_cfg: NormalizeConfig,
        minhash: MinHashConfig,
        *,
        exact: bool = True,
        near: bool = True,
        skip_first_turn_if_prompt: bool = True,
        progress: bool = False,
    ) -> dict[str, LexicalResult]:
        """The same results as `local.scan_lexical`, computed by Ray Data stages."""
        if progress:
            from dedup_audit.progress import stage_bar

            self._bar = stage_bar(total=None, desc="ray stages", unit="stage")
        try:
            return self._scan(
                dataset, views, normalize_cfg, minhash, exact, near, skip_first_turn_if_prompt
            )
        finally:
            if self._bar is not None:
                self._bar.close()
                self._bar = None

    def _scan(
        self,
        dataset: Dataset,
        views: Sequence[str],
        normalize_cfg: NormalizeConfig,
        minhash: MinHashConfig,
        exact: bool,
        near: bool,
        skip_first_turn_if_prompt: bool,
    ) -> dict[str, LexicalResult]:
        records = dataset.records
        n = len(records)
        planned = plan_chunks(records, dataset.writer_hints.get("source_uri"))
        identity = [_file_identity(p) for p in dataset.paths]
        key = {
            "scheme": SCHEME,
            "input": identity,
            "rows": n,
            "views": list(views),
            "normalize": asdict(normalize_cfg),
            "minhash": asdict(minhash),
            "exact": exact,
            "near": near,
        }
        self._open_store(key, resumable=bool(identity) and None not in identity)
        assert self.store is not None
        views = list(views)
        if planned is not None:
            chunks, spec = planned
            items = [asdict(c) for c in chunks]
            self._stage(
                "texts",
                lambda: self.ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
                    _read_batch,
                    batch_size=1,
                    batch_format="pyarrow",
                    fn_kwargs={"spec": spec, "views": views, "normalize_cfg": normalize_cfg},
                ),
            )
        elif not self.store.done("texts"):
            self._driver_texts(dataset, views, normalize_cfg)
        head = self.store.read("texts", flt=_row_below(min(n, 2000))).sort_by("row")
        same_as_prompt = skip_first_turn_if_prompt and "first_turn" in views and "prompt" in views
        if same_as_prompt:
            differs = self.store.read("texts", columns=["first_turn_differs"])
            if pc.any(differs["first_turn_differs"]).as_py():
                same_as_prompt = False
        active = [v for v in views if not (v == "first_turn" and same_as_prompt)]
        modes = {v: shingle_mode(head[v].to_pylist(), minhash) for v in active}
        return self._views(active, modes, n, minhash, exact=exact, near=near)

    def _driver_texts(
        self, dataset: Dataset, views: Sequence[str], normalize_cfg: NormalizeConfig
    ) -> None:
        """In-memory records: the driver writes their texts (small inputs only: larger files
        are read lazily, so in the workers)."""
        import pyarrow.parquet as pq

        assert self.store is not None
        self.store.clear("texts")
        filesystem, base = self.store.fs()
        filesystem.create_dir(f"{base}/texts", recursive=True)
        records = dataset.records
        for k, lo in enumerate(range(0, len(records), CHUNK_ROWS)):
            batch = records[lo : lo + CHUNK_ROWS]
            table = part.samples_texts([r.sample for r in batch], lo, views, normalize_cfg)
            with filesystem.open_output_stream(f"{base}/texts/part-{k:06d}.parquet") as out:
                pq.write_table(table, out)
        self.store.mark("texts")
        self.ran.append("texts")

    def _views(
        self,
        views: list[str],
        modes: dict[str, str],
        n: int,
        minhash: MinHashConfig,
        *,
        exact: bool,
        near: bool,
    ) -> dict[str, LexicalResult]:
        """Every view through the same stages: rows carry the view's position (`view`)."""
        assert self.store is not None
        store = self.store
        params = {v: sketch_params(modes[v], minhash, near=near) for v in views}
        tagged = [(k, v, params[v]) for k, v in enumerate(views)]
        rows = n * len(views)
        blocks = self._blocks(rows)
        self._stage(
            "sketch",
            lambda: self._read("texts", columns=["row", *views]).map_batches(
                part.sketch_views, batch_format="pyarrow", fn_kwargs={"views": tagged}
            ),
        )
        self._stage(
            "exact",
            lambda: (
                self._read("sketch", columns=["row", "h0", "h1", "view"])
                .repartition(self._blocks(rows, BAND_BYTES), keys=["view", "h0"])
                .map_batches(part.exact_views, batch_size=None, batch_format="pyarrow")
            ),
        )
        bands = params[views[0]].bands if views else 0
        per = max(1, min(bands, BAND_SHUFFLE_ROWS // max(rows, 1)))
        groups = [range(g, min(g + per, bands)) for g in range(0, bands, per)] if near else []
        band_stages = [f"bands{k}" for k in range(len(groups))]
        for name, group in zip(band_stages, groups, strict=True):
            self._stage(
                name,
                lambda group=group: (
                    self._read("sketch", columns=["row", "count", "keys", "h0", "h1", "view"])
                    .map_batches(
                        part.band_views, batch_format="pyarrow", fn_kwargs={"bands": group}
                    )
                    .repartition(
                        self._blocks(rows * len(group), BAND_BYTES), keys=["view", "band", "key"]
                    )
                    .map_batches(part.bucket_views, batch_size=None, batch_format="pyarrow")
                ),
            )

        def payload() -> Any:
            return self._read(
                "sketch", columns=["row", "count", "sig", "shingles", "view"]
            ).map_batches(part.payload_views, batch_format="pyarrow")

        if near:
            self._stage(
                "attached",
                lambda: (
                    payload()
                    .union(
                        self._read(*band_stages).map_batches(
                            part.candidate_views, batch_format="pyarrow"
                        )
                    )
                    .repartition(blocks, keys=["view", "key"])
                    .map_batches(part.attach_views, batch_size=None, batch_format="pyarrow")
                ),
            )
            floor = score_floor(minhash.threshold)
            self._stage(
                "near",
                lambda: (
                    self._read("attached")
                    .union(payload())
                    .repartition(blocks, keys=["view", "key"])
                    .map_batches(
                        part.verify_views,
                        batch_size=None,
                        batch_format="pyarrow",
                        fn_kwargs={"floor": floor},
                    )
                ),
            )
        results: dict[str, LexicalResult] = {}
        sk = store.read("sketch", ["row", "h0", "h1", "view"], schema=HASHES)
        links = store.read("exact", ["row", "rep", "view"], schema=LINKS) if exact else None
        if near:
            marks = [
                store.read(s, flt=pc.field("lo") == part.DENSE_MARK, schema=CANDIDATES)
                for s in band_stages
            ]
            dense_all = pa.concat_tables(marks) if marks else CANDIDATES.empty_table()
            attached = store.read("attached", ["view"], schema=VIEWS)
            pairs = store.read("near", schema=PAIRS)
        for k, view in enumerate(views):
            p = params[view]
            result = LexicalResult(view, modes[view], p.bands, p.rows)
            mine = _of_view(sk, k)
            hashes = np.zeros((n, 2), np.uint64)
            at = np.asarray(mine["row"], np.int64)
            hashes[at, 0] = np.asarray(mine["h0"], np.uint64)
            hashes[at, 1] = np.asarray(mine["h1"], np.uint64)
            result.exact_hash = hashes
            if links is not None:
                a, b = part.exact_pairs(_of_view(links, k))
                result.exact_pairs = PairSet.from_arrays(view, "exact", a, b, np.ones(len(a)))
            if near:
                result.dense_buckets = int(pc.sum(_of_view(dense_all, k)["hi"]).as_py() or 0)
                result.candidates = _of_view(attached, k).num_rows
                found = _of_view(pairs, k)
                fa = np.asarray(found["a"], np.int64)
                fb = np.asarray(found["b"], np.int64)
                order = np.lexsort((fb, fa))
                result.near_pairs = PairSet.from_arrays(
                    view,
                    "minhash",
                    fa[order],
                    fb[order],
                    np.asarray(found["score"], np.float64)[order],
                    np.asarray(found["estimate"], np.float64)[order],
                )
            results[view] = result
        return results

    # -- components -----------------------------------------------------------------------

    def labels(
        self, a: npt.NDArray[np.int64], b: npt.NDArray[np.int64], n: int
    ) -> npt.NDArray[np.int64]:
        """Per node, the smallest node of its component: scipy on the driver up to
        `driver_edges` edges, large-star/small-star rounds on the cluster above."""
        if len(a) <= self.engine.driver_edges:
            return cc.scipy_labels(a, b, n)
        return self._distributed_labels(a, b, n)

    def _distributed_labels(
        self, a: npt.NDArray[np.int64], b: npt.NDArray[np.int64], n: int
    ) -> npt.NDArray[np.int64]:
        ray = self.ray
        blocks = self._blocks(len(a), BAND_BYTES)
        step = max(1, math.ceil(len(a) / blocks))
        edges = ray.data.from_arrow(
            [cc._table(a[i : i + step], b[i : i + step]) for i in range(0, len(a), step)]
        ).materialize()
        seen = None
        for _ in range(200):
            grouped = (
                edges.map_batches(cc.both_directions, batch_format="pyarrow")
                .repartition(blocks, keys=["u"])
                .materialize()
            )
            sums = grouped.map_batches(
                cc.checksum_block, batch_size=None, batch_format="pyarrow"
            ).to_arrow_refs()
            tables = ray.get(sums)
            mark = (
                sum(int(x) for t in tables for x in t["edges"].to_pylist()),
                sum(int(x) for t in tables for x in t["hash"].to_pylist()) % 2**64,
            )
            if mark == seen:
                break
            seen = mark
            edges = (
                grouped.map_batches(cc.large_star_block, batch_size=None, batch_format="pyarrow")
                .map_batches(cc.larger_end, batch_format="pyarrow")
                .repartition(blocks, keys=["u"])
                .map_batches(cc.small_star_block, batch_size=None, batch_format="pyarrow")
                .materialize()
            )
        final = pa.concat_tables(ray.get(edges.to_arrow_refs()))
        return cc.labels_from_stars(np.asarray(final["u"]), np.asarray(final["v"]), n)


def _read_batch(batch: pa.Table, spec: Any, views: Sequence[str], normalize_cfg: Any) -> pa.Table:
    tables = [read_chunk(c, spec, views, normalize_cfg) for c in batch.to_pylist()]
    return pa.concat_tables(tables)


def _user_error(err: BaseException) -> DedupAuditError | None:
    """The dedup-audit error (bad input, say) a worker raised, rebuilt on the driver. Ray Data
    wraps a task's exception as RayTaskError(UserCodeException) whose text ends with the
    worker's traceback (`dedup_audit.errors.InputError: MESSAGE`); the exception object itself
    does not travel, so its class and message are read from that text."""
    import re

    from dedup_audit import errors

    seen: set[int] = set()
    cur: BaseException | None = err
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, DedupAuditError):
            return cur
        found = re.findall(r"^dedup_audit\.errors\.(\w+): (.+)$", str(cur), flags=re.M)
        if found:
            name, message = found[-1]
            cls = getattr(errors, name, None)
            if isinstance(cls, type) and issubclass(cls, DedupAuditError):
                return cls(message)
        cur = getattr(cur, "cause", None) or cur.__cause__
    return None


def _from_ray_data(err: BaseException) -> bool:
    return type(err).__module__.startswith("ray.")


def _of_view(table: pa.Table, k: int) -> pa.Table:
    return table.filter(pc.field("view") == k)


def _read_parquet(batch: pa.Table, root: str, columns: list[str] | None) -> pa.Table:
    import pyarrow.parquet as pq

    filesystem, base = Store(root).fs()
    tables = []
    for rel in batch["path"].to_pylist():
        with filesystem.open_input_file(f"{base}/{rel}") as fh:
            tables.append(pq.read_table(fh, columns=columns))
    return pa.concat_tables(tables)


def _row_below(limit: int) -> Any:
    import pyarrow.compute as pc

    return pc.field("row") < limit


def _file_identity(path: str) -> list[Any] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [os.path.abspath(path), st.st_size, st.st_mtime_ns]


@contextlib.contextmanager
def session(engine: EngineConfig) -> Iterator[RaySession]:
    with RaySession(engine) as s:
        yield s
