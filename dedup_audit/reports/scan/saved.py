"""Reload a saved scan (report.json + its dataset) as a ScanResult, to re-threshold without
recomputing any similarity: the report keeps every scored pair."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dedup_audit.config import scan_config_from_dict
from dedup_audit.errors import InputError
from dedup_audit.pipeline import ScanResult, ViewScan, _assemble, load
from dedup_audit.records import Dataset
from dedup_audit.reports.scan.report_json import read_scan_report


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
    from dedup_audit.engine.local import scan_lexical

    scanned = list(report["scored_pairs"])
    hashes = scan_lexical(
        dataset.records,
        scanned,
        cfg.normalize,
        cfg.minhash,
        exact=False,
        near=False,
        skip_first_turn_if_prompt=False,
    )
    views: dict[str, ViewScan] = {}
    for view, rows in report["scored_pairs"].items():
        text_hash = hashes[view].exact_hash
        assert text_hash is not None
        vs = ViewScan(view, text_hash, shingle=report["summary"]["views"][view]["shingle"])
        from dedup_audit.records import PAIR_METHODS

        for name, method in (("exact", "exact"), ("near", "minhash"), ("semantic", "embedding")):
            setattr(vs, name, rows.take(rows.method == PAIR_METHODS.index(method)))
        views[view] = vs
    from dedup_audit.decide import AgainstHit

    # contamination and --index hits do not depend on the thresholds: they come back as saved
    against = [
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
        for h in report.get("contamination", [])
    ]
    return _assemble(dataset, cfg, views, against)
