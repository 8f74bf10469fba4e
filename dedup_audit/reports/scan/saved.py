"""A saved scan: one writer (`save`) and one reader (`read`, and `load` on top of it) for the
whole scan result, so nothing is lost between a scan and what is done with it later.

A scan folder holds:

- report.json: the config, the dataset it read, the summary, every cluster with its strongest
  edges (evidence), the contamination and --index hits (unrounded scores, kind, estimate) and
  how the embedding contamination check set its cuts;
- pairs.parquet: the scored-pair store, every scored pair of every view down to its method's
  score floor, scores unrounded;
- report.md and report.html: pages for people, rendered from the same result.

`load(save(x))` gives back `x` field by field: the pairs come back from the store, each view's
text keys are re-hashed from the data, and clusters and decisions are rebuilt from those by the
same code the scan ran (`pipeline.assemble`), so `rethreshold` at the scanned thresholds
reproduces every removal. `rethreshold`, `calibrate`, `report --scan` and the Python API read
saved scans only through this module.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from dedup_audit.config import ScanConfig, scan_config_from_dict
from dedup_audit.decide import AgainstHit
from dedup_audit.detect.minhash import score_floor
from dedup_audit.errors import InputError
from dedup_audit.pipeline import ScanResult, ViewScan, assemble
from dedup_audit.pipeline import load as load_data
from dedup_audit.records import PAIR_METHODS, Dataset, Pair, PairSet
from dedup_audit.reports.scan.html import render_scan_html
from dedup_audit.reports.scan.report_json import (
    PAIRS_FILE,
    SCHEMA,
    build_report,
    dumps,
    render_markdown,
)

REPORT_JSON = "report.json"


def scored_pairs_table(result: ScanResult) -> Any:
    """The scored-pair store as an Arrow table (view, a, b, method, score, estimate): every
    pair of every view down to its method's score floor (`detect.minhash.score_floor`), scores
    unrounded so a re-threshold at the scanned threshold reproduces the scan exactly. Enough to
    re-threshold upwards and to show borderline pairs, without keeping every LSH candidate."""
    import pyarrow as pa

    near_floor = score_floor(result.config.minhash.threshold)
    semantic_floor = score_floor(result.config.semantic.threshold, -1.0)
    sets = [
        PairSet.concat(
            view,
            [vs.exact, vs.near.at_least(near_floor), vs.semantic.at_least(semantic_floor)],
        )
        for view, vs in result.views.items()
    ]
    views = list(result.views)
    view_codes = np.concatenate(
        [np.full(len(ps), i, np.int32) for i, ps in enumerate(sets)] or [np.empty(0, np.int32)]
    )
    both = PairSet.concat("", sets)
    estimate = pa.array(both.estimate, pa.float64(), mask=np.isnan(both.estimate))
    return pa.table(
        {
            "view": pa.DictionaryArray.from_arrays(view_codes, pa.array(views, pa.string())),
            "a": pa.array(both.a, pa.int64()),
            "b": pa.array(both.b, pa.int64()),
            "method": pa.DictionaryArray.from_arrays(
                both.method.astype(np.int32), pa.array(list(PAIR_METHODS), pa.string())
            ),
            "score": pa.array(both.score, pa.float64()),
            "estimate": estimate,
        }
    )


def save(result: ScanResult, folder: str | Path) -> dict[str, Any]:
    """Write the scan into `folder` (created when missing): report.json, pairs.parquet,
    report.md and report.html, each written atomically. Returns the report.json content.

    The commands stage the folder through `writers.OutputPlan` (checked before any work,
    replaced all at once); library callers get the same files.

    Examples:
        >>> from dedup_audit.pipeline import scan
        >>> result = scan("sample_data/alpaca_en_demo.json")
        >>> report = save(result, "out/scan")
        >>> report["summary"]["removed"]
        14
    """
    import pyarrow.parquet as pq

    from dedup_audit.writers import atomic_write_bytes, atomic_write_text

    outdir = Path(folder)
    report = build_report(result)
    outdir.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    pq.write_table(scored_pairs_table(result), buf, compression="zstd")
    atomic_write_bytes(outdir / PAIRS_FILE, buf.getvalue())
    atomic_write_text(outdir / REPORT_JSON, dumps(report))
    atomic_write_text(outdir / "report.md", render_markdown(report, result))
    atomic_write_text(outdir / "report.html", render_scan_html(report, result))
    return report


def read_scored_pairs(path: Path) -> dict[str, PairSet]:
    """The scored-pair store: {view: PairSet} in stored order."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    views = table.column("view").combine_chunks()
    methods = table.column("method").combine_chunks()
    view_names = np.asarray(views.dictionary.to_pylist(), dtype=object)[
        views.indices.to_numpy(zero_copy_only=False)
    ]
    code_of = np.array([PAIR_METHODS.index(m) for m in methods.dictionary.to_pylist()], np.int8)
    method = code_of[methods.indices.to_numpy(zero_copy_only=False)]
    estimate = table.column("estimate").to_numpy()
    estimate = np.where(np.isnan(estimate.astype(np.float64)), np.nan, estimate)
    both = PairSet(
        "",
        table.column("a").to_numpy(),
        table.column("b").to_numpy(),
        table.column("score").to_numpy(),
        estimate.astype(np.float64),
        method,
    )
    out: dict[str, PairSet] = {}
    for view in dict.fromkeys(view_names.tolist()):
        part = both.take(view_names == view)
        out[view] = PairSet(view, part.a, part.b, part.score, part.estimate, part.method)
    return out


@dataclass
class SavedScan:
    """A saved scan as read back, without its dataset: what report.json and pairs.parquet hold.
    The pair store is read on first use (the memorization report needs only the clusters)."""

    path: Path  # the report.json
    report: dict[str, Any]
    _pairs: dict[str, PairSet] | None = field(default=None, repr=False)

    @cached_property
    def config(self) -> ScanConfig:
        return scan_config_from_dict(self.report["config"])

    @property
    def pairs(self) -> dict[str, PairSet]:
        """The scored-pair store by view, every scanned view present (empty when it has none)."""
        if self._pairs is None:
            sidecar = self.path.parent / self.report.get("scored_pairs_file", PAIRS_FILE)
            try:
                scored = read_scored_pairs(sidecar)
            except Exception as exc:  # pyarrow raises several types for a missing/corrupt file
                raise InputError(
                    f"{sidecar}: cannot read the scored pairs saved with {self.path.name} "
                    f"({exc}); keep the scan folder together or rescan"
                ) from exc
            views = self.report.get("summary", {}).get("views", {})
            self._pairs = {v: scored.get(v, PairSet.empty(v)) for v in views}
        return self._pairs

    def scored_pairs(self) -> list[Pair]:
        """Every stored pair, views in name order, each view's pairs in stored order."""
        return [p for view, ps in sorted(self.pairs.items()) for p in ps.pairs()]

    def thresholds(self) -> dict[str, float]:
        """The thresholds the scan ran with, keyed by pair method (exact has none)."""
        cfg = self.config
        out = {"minhash": cfg.minhash.threshold}
        if cfg.semantic.enabled:
            out["embedding"] = cfg.semantic.threshold
        return out

    def record_ids(self) -> dict[int, str]:
        """index -> record id of every record a cluster or hit names (the report's id table)."""
        ids: dict[int, str] = {}
        for c in self.report.get("clusters", []):
            for m in c.get("members", []):
                ids[int(m["index"])] = str(m["id"])
        for h in self.report.get("contamination", []):
            ids[int(h["index"])] = str(h["id"])
        return ids

    def against(self) -> list[AgainstHit]:
        """Contamination and --index hits: they do not depend on the thresholds, so they come
        back as saved (unrounded scores)."""
        return [
            AgainstHit(
                index=h["index"],
                reference=h["reference"],
                ref_id=h["reference_id"],
                method=h["method"],
                score=h["score"],
                view=h["view"],
                ref_text=h.get("reference_text", ""),
                kind=h.get("kind", "contamination"),
                estimate=h.get("estimate"),
            )
            for h in self.report.get("contamination", [])
        ]

    def data_path(self) -> Path | None:
        """The file the scan read, when it read exactly one."""
        paths = self.report.get("dataset", {}).get("paths") or []
        return Path(paths[0]) if len(paths) == 1 else None


def read(path: str | Path) -> SavedScan:
    """A saved scan folder (or its report.json), checked to be one, without its dataset.

    Examples:
        >>> from dedup_audit.pipeline import scan
        >>> _ = save(scan("sample_data/alpaca_en_demo.json"), "out/scan")
        >>> read("out/scan").thresholds()
        {'minhash': 0.8}
    """
    p = Path(path)
    if p.is_dir():
        p = p / REPORT_JSON
    try:
        report = json.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"{p}: cannot read the scan report ({exc.strerror or exc})") from exc
    except json.JSONDecodeError as exc:
        raise InputError(f"{p}: the scan report is not valid JSON ({exc})") from exc
    if not isinstance(report, dict) or report.get("schema") != SCHEMA:
        raise InputError(
            f"{p}: not a dedup-audit scan report.json (schema {SCHEMA}); pass the report.json "
            "`dedup-audit scan` wrote"
        )
    if not isinstance(report.get("clusters"), list):
        raise InputError(f"{p}: the scan report has no 'clusters' list; rescan")
    return SavedScan(p, report)


def load(
    path: str | Path | SavedScan, data: str | Path | Dataset | None = None, **load_kwargs: Any
) -> ScanResult:
    """The ScanResult a saved scan describes, rebuilt without recomputing any similarity.

    `data` is the dataset the scan read (a path or a loaded Dataset); by default the file the
    report names, read with the scan's format and id column.

    Examples:
        >>> from dedup_audit.pipeline import scan
        >>> _ = save(scan("sample_data/alpaca_en_demo.json"), "out/scan")
        >>> load("out/scan").removed_by_reason()
        {'exact:full': 14}
    """
    saved = path if isinstance(path, SavedScan) else read(path)
    report, cfg = saved.report, saved.config
    dataset_info = report.get("dataset", {})
    if data is None:
        data = saved.data_path()
        if data is None:
            raise InputError(
                f"{saved.path}: the scan did not read exactly one file; pass its data again"
            )
        load_kwargs.setdefault("format", dataset_info.get("format", "auto"))
        if dataset_info.get("columns"):
            load_kwargs.setdefault("columns", dataset_info["columns"])
    if dataset_info.get("id_column"):
        load_kwargs.setdefault("id_column", dataset_info["id_column"])
    dataset = load_data(data, **load_kwargs)
    rows = dataset_info.get("rows")
    if rows is not None and len(dataset.records) != rows:
        raise InputError(
            f"{saved.path}: the scan had {rows} rows but the data has {len(dataset.records)}; "
            "pass the data the scan was run on"
        )
    from dedup_audit.engine.local import scan_lexical

    stored = saved.pairs
    hashes = scan_lexical(
        dataset.records,
        list(stored),
        cfg.normalize,
        cfg.minhash,
        exact=False,
        near=False,
        skip_first_turn_if_prompt=False,
    )
    summary = report["summary"]["views"]
    views: dict[str, ViewScan] = {}
    for view, pairs in stored.items():
        text_hash = hashes[view].exact_hash
        assert text_hash is not None
        vs = ViewScan(
            view,
            text_hash,
            shingle=summary[view]["shingle"],
            candidates=int(summary[view].get("minhash_candidates", 0)),
            dense_buckets=int(summary[view].get("dense_buckets", 0)),
        )
        for name, method in (("exact", "exact"), ("near", "minhash"), ("semantic", "embedding")):
            setattr(vs, name, pairs.take(pairs.method == PAIR_METHODS.index(method)))
        views[view] = vs
    result = assemble(dataset, cfg, views, saved.against())
    result.against_calibration = list(report.get("contamination_calibration", []))
    return result
