"""The notebook API: records in, records out.

`scan` takes a path, a list of dicts, a pandas DataFrame or a Hugging Face Dataset, with
thresholds and options as plain keyword arguments, and returns an `Audit`: the numbers, the
clusters, a `clean` that hands back the kept records and every removed one with its reason,
the record it duplicates and the evidence, and `save`/`load`/`rethreshold` on the saved scores.
`memorization` explains a training run's loss staircase. The nested configs
(`dedup_audit.config.ScanConfig`) stay available: pass `config=` and override fields by keyword.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dedup_audit.config import (
    EngineConfig,
    KeepPolicy,
    MinHashConfig,
    NormalizeConfig,
    ScanConfig,
    SemanticConfig,
)
from dedup_audit.errors import ConfigError
from dedup_audit.pipeline import ScanResult, assemble
from dedup_audit.pipeline import scan as run_scan
from dedup_audit.records import Dataset

if TYPE_CHECKING:
    from dedup_audit.encoders import Encoder

# keyword -> (config section, field); a section of None is a field of ScanConfig itself
OPTIONS: dict[str, tuple[str | None, str]] = {
    "views": (None, "views"),
    "view": (None, "dedup_view"),
    "exact": (None, "exact"),
    "near": (None, "near"),
    "remove_conflicting": (None, "remove_conflicting"),
    "cluster": (None, "cluster"),
    "seed": (None, "seed"),
    "threshold": ("minhash", "threshold"),
    "num_perm": ("minhash", "num_perm"),
    "ngram": ("minhash", "ngram"),
    "char_ngram": ("minhash", "char_ngram"),
    "shingle": ("minhash", "shingle"),
    "semantic": ("semantic", "enabled"),
    "semantic_threshold": ("semantic", "threshold"),
    "model": ("semantic", "model"),
    "backend": ("semantic", "backend"),
    "device": ("semantic", "device"),
    "k": ("semantic", "k"),
    "batch_size": ("semantic", "batch_size"),
    "max_seq_length": ("semantic", "max_seq_length"),
    "cache_dir": ("semantic", "cache_dir"),
    "against_false_flag_rate": ("semantic", "against_false_flag_rate"),
    "nfkc": ("normalize", "nfkc"),
    "lowercase": ("normalize", "lowercase"),
    "whitespace": ("normalize", "whitespace"),
    "punctuation": ("normalize", "punctuation"),
}
"""Plain keyword arguments of `scan`, each one field of the nested config (as the CLI options)."""


def scan_config(config: ScanConfig | None = None, **options: Any) -> ScanConfig:
    """A ScanConfig from plain keywords (`threshold=0.85`, `semantic=True`, `keep_by="longest"`,
    `views="full,prompt"`...), on top of `config` when given.

    Examples:
        >>> scan_config(threshold=0.85, keep_by="longest").minhash.threshold
        0.85
    """
    cfg = config or ScanConfig()
    sections: dict[str, dict[str, Any]] = {}
    top: dict[str, Any] = {}
    for key, value in options.items():
        if value is None:
            continue
        if key == "keep_by":
            top["keep"] = value if isinstance(value, KeepPolicy) else KeepPolicy.parse(value)
            continue
        if key not in OPTIONS:
            known = ", ".join(sorted([*OPTIONS, "keep_by"]))
            raise ConfigError(f"unknown scan option {key!r}; known: {known}")
        section, name = OPTIONS[key]
        if key == "views" and isinstance(value, str):
            value = tuple(v.strip() for v in value.split(",") if v.strip())
        elif key == "views":
            value = tuple(value)
        if section is None:
            top[name] = value
        else:
            sections.setdefault(section, {})[name] = value
    kinds: dict[str, type[Any]] = {
        "minhash": MinHashConfig,
        "semantic": SemanticConfig,
        "normalize": NormalizeConfig,
    }
    for section, fields in sections.items():
        assert section in kinds
        top[section] = dataclasses.replace(getattr(cfg, section), **fields)
    return dataclasses.replace(cfg, **top) if top else cfg


def as_dataset(data: Any, **load_kwargs: Any) -> Dataset:
    """A Dataset from a path, a list of dicts, a pandas DataFrame, a Hugging Face Dataset or a
    Dataset. `load_kwargs`: format, columns, id_column (and, for files, dataset_info...)."""
    if isinstance(data, Dataset):
        return data
    if isinstance(data, str | Path):
        from dedup_audit.readers import load_dataset

        return load_dataset(data, **load_kwargs)
    from dedup_audit.readers.memory import load_rows, rows_of

    rows = rows_of(data)
    if rows is None:
        raise ConfigError(
            f"cannot read a {type(data).__name__}: pass a path, a list of dicts, a pandas "
            "DataFrame or a Hugging Face Dataset"
        )
    allowed = {k: v for k, v in load_kwargs.items() if k in ("format", "columns", "id_column")}
    return load_rows(rows, **allowed)


@dataclass(frozen=True)
class Cleaned:
    """What `Audit.clean` keeps and removes. `kept` holds the original rows; each `removed`
    entry is {"id", "reason", "kept_id", "evidence": {...}, "record": the original row}.

    Examples:
        >>> rows = [{"instruction": "Hi", "output": "Hello"}, {"instruction": "Hi", "output": "Hello"}]
        >>> cleaned = da.scan(rows).clean()
        >>> cleaned.kept, [(r["id"], r["reason"], r["kept_id"]) for r in cleaned.removed]
        ([{'instruction': 'Hi', 'output': 'Hello'}], [('records:1', 'exact:full', 'records:0')])
    """

    kept: list[dict[str, Any]]
    removed: list[dict[str, Any]]

    def __repr__(self) -> str:
        return f"Cleaned(kept={len(self.kept)} records, removed={len(self.removed)} records)"


@dataclass
class Audit:
    """A finished scan, for notebooks and pipelines. `result` is the full ScanResult.

    Examples:
        >>> import dedup_audit as da
        >>> audit = da.scan("sample_data/alpaca_en_demo.json")
        >>> round(audit.duplicate_ratio, 4), audit.removed_by_reason()
        (0.014, {'exact:full': 14})
    """

    result: ScanResult

    def __repr__(self) -> str:
        n = len(self.result.decisions)
        return (
            f"Audit({n} records, {len(self.result.removed)} to remove, "
            f"duplicate_ratio={self.duplicate_ratio:.4f}, {len(self.result.clusters)} clusters)"
        )

    @property
    def config(self) -> ScanConfig:
        return self.result.config

    @property
    def duplicate_ratio(self) -> float:
        """Share of records `clean` removes (0.0 for an empty dataset).

        Examples:
            >>> da.scan([{"instruction": "Hi", "output": "Hello"}] * 4).duplicate_ratio
            0.75
        """
        return self.result.duplicate_ratio

    def removed_by_reason(self) -> dict[str, int]:
        """How many records `clean` removes, by reason (`exact:full`, `near:full`,
        `semantic:full`, `against:NAME`, `index:NAME`, `conflicting:prompt`).

        Examples:
            >>> da.scan("sample_data/alpaca_en_demo.json").removed_by_reason()
            {'exact:full': 14}
        """
        return self.result.removed_by_reason()

    def clusters(self, view: str | None = None, kind: str | None = None) -> list[dict[str, Any]]:
        """Clusters as plain dicts, largest first: {"id", "view", "kind", "size", "ids",
        "records" (the original rows), "pairs": [{"a", "b", "method", "score"}]}. `view`
        (full, prompt, response, first_turn) and `kind` (exact, near, semantic, conflicting,
        canned, different_answer, unconfirmed) filter them.

        Examples:
            >>> audit = da.scan("sample_data/alpaca_en_demo.json")
            >>> [c["size"] for c in audit.clusters(view="full", kind="exact")][:3]
            [3, 2, 2]
        """
        from dedup_audit.readers.lazy import fetch

        chosen = [
            c
            for c in self.result.clusters
            if (view is None or c.view == view) and (kind is None or c.kind == kind)
        ]
        chosen.sort(key=lambda c: (-c.size, c.id))
        recs = fetch(self.result.dataset.records, [m for c in chosen for m in c.members])
        return [
            {
                "id": c.id,
                "view": c.view,
                "kind": c.kind,
                "size": c.size,
                "ids": [recs[m].id for m in c.members],
                "records": [recs[m].row for m in c.members],
                "pairs": [
                    {
                        "a": recs[p.a].id,
                        "b": recs[p.b].id,
                        "method": p.method,
                        "score": p.score,
                    }
                    for p in c.pairs
                ],
            }
            for c in chosen
        ]

    def clean(
        self, keep_by: str | None = None, *, remove_conflicting: bool | None = None
    ) -> Cleaned:
        """The kept records and the removed ones, with why. `keep_by` picks the survivor of
        each cluster (first, longest, shortest, random, COLUMN:max|min) without rescanning.

        Examples:
            >>> result = da.scan("sample_data/alpaca_en_demo.json").clean(keep_by="longest")
            >>> len(result.kept), len(result.removed), result.removed[0]["reason"]
            (985, 14, 'exact:full')
        """
        from dedup_audit.reports.scan.report_json import removed_rows

        result = self.result
        if keep_by is not None or remove_conflicting is not None:
            cfg = scan_config(result.config, keep_by=keep_by, remove_conflicting=remove_conflicting)
            result = assemble(result.dataset, cfg, result.views, result.against)
        rows = removed_rows(result)
        removed = [
            {
                "id": r["id"],
                "reason": r["reason"],
                "kept_id": r["kept_id"],
                "evidence": {
                    k: r[k]
                    for k in (
                        "kind",
                        "view",
                        "method",
                        "similarity",
                        "estimated_similarity",
                        "cluster_id",
                        "via_id",
                    )
                },
                "record": r["row"],
            }
            for r in rows
        ]
        from dedup_audit.readers.lazy import fetch

        kept_at = result.kept_indices
        recs = fetch(result.dataset.records, kept_at)
        return Cleaned([recs[i].row for i in kept_at], removed)

    def rethreshold(self, *, near: float | None = None, semantic: float | None = None) -> Audit:
        """The audit at new thresholds, from the saved scores (no similarity is recomputed).
        Raising a threshold is exact; lowering one only sees the pairs the scan kept.

        Examples:
            >>> audit = da.scan("sample_data/alpaca_en_demo.json", threshold=0.7)
            >>> audit.rethreshold(near=0.9).removed_by_reason()
            {'exact:full': 14}
        """
        return Audit(self.result.rethreshold(near=near, semantic=semantic))

    def save(self, folder: str | Path, *, force: bool = False) -> Path:
        """Write the scan to `folder` (report.json, pairs.parquet, report.md, report.html), all
        or nothing; an existing report is replaced only with `force=True`. Returns the folder.

        Examples:
            >>> audit = da.scan("sample_data/alpaca_en_demo.json")
            >>> audit.save("out/scan", force=True)
            PosixPath('out/scan')
        """
        from dedup_audit.reports.scan.report_json import REPORT_FILES
        from dedup_audit.reports.scan.saved import save
        from dedup_audit.writers import OutputPlan

        out = Path(folder)
        plan = OutputPlan([Path(p) for p in self.result.dataset.paths], force)
        plan.folder(out, "folder", REPORT_FILES)
        with plan:
            plan.stage_folder(out, lambda tmp: save(self.result, tmp))
            plan.commit()
        return out


def scan(
    data: Any,
    config: ScanConfig | None = None,
    *,
    keep_by: str | None = None,
    against: Mapping[str, Any] | Sequence[str | Path] | None = None,
    format: str = "auto",
    columns: Mapping[str, str] | None = None,
    id_column: str | None = None,
    progress: bool = False,
    encoder: Encoder | None = None,
    engine: EngineConfig | None = None,
    **options: Any,
) -> Audit:
    """Find exact, near (MinHash) and, with `semantic=True`, paraphrase duplicates.

    `data`: a path (any format `dedup-audit scan` reads), a list of dicts, a pandas DataFrame
    or a Hugging Face Dataset. Options are plain keywords: `threshold` (MinHash Jaccard, 0.8),
    `semantic`, `semantic_threshold`, `views`, `view` (the dedup view), `keep_by`,
    `remove_conflicting`, `num_perm`, `model`, ... (`dedup_audit.api.OPTIONS`). `against`
    checks reference sets (eval/benchmark: paths, or {name: path or records}) for
    contamination. `config` is a full ScanConfig for those who build one.

    Examples:
        >>> import dedup_audit as da
        >>> audit = da.scan([{"instruction": "Say hi", "output": "hi"}] * 3, threshold=0.85)
        >>> audit.removed_by_reason()
        {'exact:full': 2}
    """
    cfg = scan_config(config, keep_by=keep_by, **options)
    dataset = as_dataset(data, format=format, columns=columns, id_column=id_column)
    references: dict[str, Dataset] = {}
    items = against.items() if isinstance(against, Mapping) else ((None, p) for p in against or ())
    for name, ref in items:
        if isinstance(ref, str | Path):
            from dedup_audit.readers.reference import load_reference

            key = name or Path(ref).name
            references[key] = load_reference(Path(ref), None)
        else:
            key = name or f"reference{len(references) + 1}"
            references[key] = as_dataset(ref)
    if references:
        cfg = dataclasses.replace(cfg, against=tuple(references))
    result = run_scan(
        dataset, cfg, encoder=encoder, references=references, progress=progress, engine=engine
    )
    return Audit(result)


def load(folder: str | Path, data: Any = None, **load_kwargs: Any) -> Audit:
    """A saved scan (`Audit.save` or `dedup-audit scan -o`), without recomputing anything.
    `data` is the scanned data when the scan did not read exactly one file (records in memory).

    Examples:
        >>> audit = da.scan("sample_data/alpaca_en_demo.json")
        >>> folder = audit.save("out/scan", force=True)
        >>> da.load(folder).removed_by_reason() == audit.removed_by_reason()
        True
    """
    from dedup_audit.reports.scan.saved import load as load_saved
    from dedup_audit.reports.scan.saved import read

    if data is None or isinstance(data, str | Path | Dataset):
        return Audit(load_saved(folder, data, **load_kwargs))
    saved = read(folder)  # records in memory: read them with the scan's id column
    load_kwargs.setdefault("id_column", saved.report.get("dataset", {}).get("id_column"))
    return Audit(load_saved(saved, as_dataset(data, **load_kwargs)))


@dataclass
class Memorization:
    """A memorization report: the staircase, the per-sample analysis, the differential
    diagnosis and the recommendations (`report` holds the whole report.json).

    Examples:
        >>> memo = da.memorization("sample_data/run", data="sample_data/run/train.json",
        ...                        losses="sample_data/run/losses.jsonl")
        >>> memo.recommendations[0]["setting"]
        'num_train_epochs: 2'
    """

    report: dict[str, Any]

    def __repr__(self) -> str:
        return f"Memorization({self.report.get('headline', '')!r})"

    @property
    def headline(self) -> str:
        return str(self.report.get("headline", ""))

    @property
    def staircase(self) -> dict[str, Any] | None:
        return self.report.get("staircase")

    @property
    def diagnosis(self) -> list[dict[str, Any]]:
        return list(self.report.get("diagnosis", []))

    @property
    def samples(self) -> dict[str, Any] | None:
        return self.report.get("samples")

    @property
    def recommendations(self) -> list[dict[str, Any]]:
        return list(self.report.get("recommendations", []))

    @property
    def missing(self) -> list[dict[str, Any]]:
        """Inputs the report lacked and what each would have decided."""
        return list(self.report.get("missing", []))

    def summary(self) -> str:
        """The terminal summary `dedup-audit report` prints."""
        from dedup_audit.reports.memorization.summary import summary_text

        return summary_text(self.report)

    def save(self, folder: str | Path, *, force: bool = False) -> Path:
        """Write report.json and report.html into `folder`. Returns the folder."""
        from dedup_audit.extras import require
        from dedup_audit.reports.memorization.report_json import write_report

        require("report", "the memorization report's plots")

        write_report(self.report, folder, force=force)
        return Path(folder)


def memorization(
    run: str | Path,
    *,
    data: str | Path | None = None,
    losses: str | Path | None = None,
    scan: str | Path | None = None,
    heldout: str | Path | None = None,
    training_args: str | Path | None = None,
    view: str = "full",
    progress: bool = False,
) -> Memorization:
    """Explain the loss staircase of a training run (output_dir or trainer_log.jsonl): what
    `dedup-audit report` computes, as an object. `data` is scanned for duplicate clusters (or
    `scan` names a saved scan); `losses` are per-sample losses (`dedup-audit losses`).

    Examples:
        >>> memo = da.memorization("sample_data/run", data="sample_data/run/train.json",
        ...                        losses="sample_data/run/losses.jsonl")
        >>> memo.staircase["verdict"], [d["verdict"] for d in memo.diagnosis][:2]
        ('staircase', ['supported', 'supported'])
    """
    from dedup_audit.reports.memorization.report_json import build_report

    return Memorization(
        build_report(
            run,
            data=data,
            losses=losses,
            scan=scan,
            heldout=heldout,
            training_args=training_args,
            view=view,
            progress=progress,
        )
    )
