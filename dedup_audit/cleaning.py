"""clean: scan, then write the kept records in the input's own format, a record of every removal
and (optionally) the scan report, all or nothing."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dedup_audit.config import EngineConfig, ScanConfig
from dedup_audit.pipeline import ScanResult, load, scan
from dedup_audit.records import Dataset
from dedup_audit.reports.scan.report_json import REPORT_FILES, removed_rows
from dedup_audit.reports.scan.saved import save

if TYPE_CHECKING:
    from collections.abc import Mapping

    from dedup_audit.encoders import Encoder


@dataclass
class CleanResult:
    """A clean run: the scan behind it and the files written.

    Examples:
        >>> done = clean("sample_data/identity.json", "out/identity.clean.json", force=True)
        >>> done.kept + done.removed, done.removed_path.name
        (91, 'identity.clean.json.removed.jsonl')
    """

    scan: ScanResult
    output: Path
    removed_path: Path
    report_dir: Path | None = None

    @property
    def kept(self) -> int:
        return len(self.scan.kept_indices)

    @property
    def removed(self) -> int:
        return len(self.scan.removed)


def default_removed_path(output: Path) -> Path:
    """data.clean.json -> data.clean.json.removed.jsonl, beside the cleaned output. The full
    name is kept so data.clean.json and data.clean.parquet never share one record."""
    return output.with_name(f"{output.name}.removed.jsonl")


def clean(
    data: str | Path | Dataset,
    output: str | Path,
    config: ScanConfig | None = None,
    *,
    removed_path: str | Path | None = None,
    report_dir: str | Path | None = None,
    force: bool = False,
    encoder: Encoder | None = None,
    references: Mapping[str, Dataset] | None = None,
    progress: bool = False,
    engine: EngineConfig | None = None,
    index: str | Path | None = None,
    save_index: str | Path | None = None,
    **load_kwargs: Any,
) -> CleanResult:
    """Scan, then write the kept records in the input's own format plus removed.jsonl.

    Output paths are checked before any work, every file is written atomically, and the input is
    never touched. kept + removed == input is checked before anything is written.

    Examples:
        >>> done = clean("sample_data/alpaca_en_demo.json", "out/demo.clean.json", force=True)
        >>> done.kept, done.removed
        (985, 14)
    """
    import json

    from dedup_audit.writers import OutputPlan, stage_dataset, target_type

    dataset = load(data, **load_kwargs)
    out = Path(output)
    removed_out = Path(removed_path) if removed_path else default_removed_path(out)
    rdir = Path(report_dir) if report_dir else None
    refs = [Path(p) for ref in (references or {}).values() for p in ref.paths]
    plan = OutputPlan([*(Path(p) for p in dataset.paths), *refs], force)
    from dedup_audit.readers.arrowio import is_hf_disk

    plan.file(out, "-o/--output", may_be_dir=is_hf_disk(out))
    target_type(out, dataset.file_type)
    plan.file(removed_out, "--removed")
    if rdir is not None:
        plan.folder(rdir, "--report-dir", REPORT_FILES)
    result = scan(
        dataset,
        config,
        encoder=encoder,
        references=references,
        progress=progress,
        engine=engine,
        index=index,
        save_index=save_index,
        force=force,
    )
    kept, removed = result.kept_indices, result.removed
    if sorted(kept + [d.index for d in removed]) != list(range(len(dataset.records))):
        raise RuntimeError("internal error: kept + removed != input; nothing was written")
    rows = removed_rows(result)
    with plan:
        # every output is written to a temporary name first and renamed only when all are
        # written, so a failure leaves neither a cleaned file without its record nor a half report
        stage_dataset(plan, dataset, kept, out)
        plan.stage_text(
            removed_out, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        )
        if rdir is not None:
            plan.stage_folder(rdir, lambda tmp: save(result, tmp))
        plan.commit()
    return CleanResult(result, out, removed_out, rdir)
