"""Reload a saved scan (report.json + its dataset) as a ScanResult, to re-threshold without
recomputing any similarity: the report keeps every scored pair."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dedup_audit.config import scan_config_from_dict
from dedup_audit.errors import InputError
from dedup_audit.pipeline import ScanResult, ViewScan, _assemble, load
from dedup_audit.records import Dataset, Pair
from dedup_audit.scan_report import read_scan_report
from dedup_audit.views import build_views


def load_scan(
    report_path: Path, data: str | Path | Dataset | None = None, **load_kwargs: Any
) -> ScanResult:
    """The ScanResult a saved report describes. `data` defaults to the paths the report names."""
    report = read_scan_report(report_path)
    cfg = scan_config_from_dict(report["config"])
    if data is None:
        paths = report["dataset"]["paths"]
        if len(paths) != 1:
            raise InputError(f"{report_path}: the scan read several files; pass the data again")
        data = Path(paths[0])
        load_kwargs.setdefault("format", report["dataset"]["format"])
    if report["dataset"].get("id_column"):
        load_kwargs.setdefault("id_column", report["dataset"]["id_column"])
    dataset = load(data, **load_kwargs)
    if len(dataset.records) != report["dataset"]["rows"]:
        raise InputError(
            f"{report_path}: the report has {report['dataset']['rows']} rows but the data has "
            f"{len(dataset.records)}; pass the data the scan was run on"
        )
    views: dict[str, ViewScan] = {}
    for view, rows in report["scored_pairs"].items():
        raw, normalized = build_views(dataset.records, view, cfg.normalize)
        vs = ViewScan(view, raw, normalized, shingle=report["summary"]["views"][view]["shingle"])
        for a, b, method, score, estimate in rows:
            pair = Pair(a, b, score, method, view, estimate)
            {"exact": vs.exact, "minhash": vs.near, "embedding": vs.semantic}[method].append(pair)
        views[view] = vs
    return _assemble(dataset, cfg, views, [])
