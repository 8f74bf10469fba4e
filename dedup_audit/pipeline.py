"""scan and clean: load -> views -> detectors -> clusters -> decisions (-> outputs in clean).

Results are returned, not stored on objects, and keep every scored pair, so a scan can be
re-thresholded (`ScanResult.rethreshold`) without recomputing a single similarity.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dedup_audit.clusters import DIFFERENT_ANSWER, UNCONFIRMED, build_clusters, split_semantic
from dedup_audit.config import ScanConfig
from dedup_audit.decide import AgainstHit, best_hits, decide
from dedup_audit.detect.exact import find_exact
from dedup_audit.detect.minhash_fast import find_near_fast
from dedup_audit.records import Cluster, Dataset, Decision, Pair
from dedup_audit.views import build_views, view_text

if TYPE_CHECKING:
    from dedup_audit.encoders import Encoder


@dataclass
class ViewScan:
    """Everything one view's detectors scored. Thresholds are applied later, in `edges`."""

    view: str
    raw: list[str]
    normalized: list[str]
    exact: list[Pair] = field(default_factory=list)
    near: list[Pair] = field(default_factory=list)  # every verified MinHash candidate
    semantic: list[Pair] = field(default_factory=list)  # every kNN neighbour with its cosine
    shingle: str = ""
    candidates: int = 0
    dense_buckets: int = 0

    def edges(self, near_threshold: float, semantic_threshold: float) -> list[Pair]:
        return (
            self.exact
            + [p for p in self.near if p.score >= near_threshold]
            + [p for p in self.semantic if p.score >= semantic_threshold]
        )


@dataclass
class ScanResult:
    """The outcome of a scan: clusters per view, one decision per record, and all evidence."""

    dataset: Dataset
    config: ScanConfig
    views: dict[str, ViewScan]
    clusters: list[Cluster]
    decisions: list[Decision]
    against: list[AgainstHit] = field(default_factory=list)
    # per reference: how the embedding contamination check set its cuts (detect.against)
    against_calibration: list[dict[str, Any]] = field(default_factory=list)

    @property
    def removed(self) -> list[Decision]:
        return [d for d in self.decisions if not d.keep]

    @property
    def kept_indices(self) -> list[int]:
        return [d.index for d in self.decisions if d.keep]

    @property
    def duplicate_ratio(self) -> float:
        """Share of records that `clean` would remove (0.0 for an empty dataset)."""
        return len(self.removed) / len(self.decisions) if self.decisions else 0.0

    def removed_by_reason(self) -> dict[str, int]:
        return dict(sorted(Counter(d.reason for d in self.removed).items()))

    def clusters_in(self, view: str, kind: str | None = None) -> list[Cluster]:
        return [c for c in self.clusters if c.view == view and (kind is None or c.kind == kind)]

    def rethreshold(
        self, *, near: float | None = None, semantic: float | None = None
    ) -> ScanResult:
        """Clusters and decisions at new thresholds from the saved scores, without recompute.

        Raising a threshold is exact. Lowering one below the scanned threshold only sees the pairs
        that were kept: LSH candidates of the scanned threshold scoring at most 0.1 below it (a
        lower bound on recall); rescan for a full answer.
        """
        cfg = self.config
        if near is not None:
            cfg = dataclasses.replace(cfg, minhash=dataclasses.replace(cfg.minhash, threshold=near))
        if semantic is not None:
            cfg = dataclasses.replace(
                cfg, semantic=dataclasses.replace(cfg.semantic, threshold=semantic)
            )
        result = _assemble(self.dataset, cfg, self.views, self.against)
        result.against_calibration = list(self.against_calibration)
        return result


def _assemble(
    dataset: Dataset,
    cfg: ScanConfig,
    views: Mapping[str, ViewScan],
    against: Sequence[AgainstHit],
) -> ScanResult:
    n = len(dataset.records)
    prompts = views["prompt"].normalized if "prompt" in views else _norm(dataset, cfg, "prompt")
    responses = (
        views["response"].normalized if "response" in views else _norm(dataset, cfg, "response")
    )
    clusters: list[Cluster] = []
    edges_of = {
        v: views[v].edges(cfg.minhash.threshold, cfg.semantic.threshold)
        for v in cfg.views
        if v in views
    }
    answers, numbers = _answers(dataset, views) if cfg.semantic.enabled else ([None] * n, [])
    linked = _linked_in(edges_of, views)
    for view in edges_of:
        edges, different, unconfirmed = split_semantic(
            view,
            edges_of[view],
            answers=answers,
            numbers=numbers,
            linked=linked if view == cfg.dedup_view and cfg.semantic.enabled else None,
        )
        clusters += build_clusters(
            n, view, edges, prompts=prompts, responses=responses, first_id=len(clusters)
        )
        for kind, links in ((DIFFERENT_ANSWER, different), (UNCONFIRMED, unconfirmed)):
            clusters += build_clusters(
                n,
                view,
                links,
                prompts=prompts,
                responses=responses,
                first_id=len(clusters),
                kind=kind,
            )
    hits = best_hits(against)
    decisions = decide(
        dataset.records,
        clusters,
        dedup_view=cfg.dedup_view,
        keep=cfg.keep,
        seed=cfg.seed,
        remove_conflicting=cfg.remove_conflicting,
        against=hits,
        mode=cfg.cluster,
    )
    return ScanResult(dataset, cfg, dict(views), clusters, decisions, list(against))


def _answers(
    dataset: Dataset, views: Mapping[str, ViewScan]
) -> tuple[list[str | None], list[tuple[str, ...]]]:
    """Each record's final answer, read from its response, and the quantities its task states
    (its prompt; the text itself for text-only records): see dedup_audit.answers."""
    from dedup_audit.answers import final_answer, task_numbers

    answers: list[str | None] = []
    numbers: list[tuple[str, ...]] = []
    for r in dataset.records:
        response = view_text(r.sample, "response")
        prompt = view_text(r.sample, "prompt")
        answers.append(final_answer(response))
        numbers.append(task_numbers(prompt if prompt.strip() else response))
    return answers, numbers


def _linked_in(
    edges_of: Mapping[str, Sequence[Pair]], views: Mapping[str, ViewScan]
) -> Callable[[int, int], bool]:
    """linked(a, b): the prompt and the response views both hold an edge between a and b (a
    view that was not scanned, or is empty on both sides, does not object)."""
    sets = {
        v: ({(p.a, p.b) for p in edges_of[v]}, views[v].normalized)
        for v in ("prompt", "response")
        if v in edges_of
    }

    def linked(a: int, b: int) -> bool:
        for pairs, texts in sets.values():
            if (a, b) not in pairs and (texts[a] or texts[b]):
                return False
        return True

    return linked


def _norm(dataset: Dataset, cfg: ScanConfig, view: str) -> list[str]:
    return build_views(dataset.records, view, cfg.normalize)[1]


def load(data: str | Path | Dataset, **load_kwargs: Any) -> Dataset:
    """A Dataset as given, or loaded from a path with the readers' options."""
    if isinstance(data, Dataset):
        return data
    from dedup_audit.readers import load_dataset

    return load_dataset(data, **load_kwargs)


def scan(
    data: str | Path | Dataset,
    config: ScanConfig | None = None,
    *,
    encoder: Encoder | None = None,
    references: Mapping[str, Dataset] | None = None,
    progress: bool = False,
    **load_kwargs: Any,
) -> ScanResult:
    """Find exact, near and (optionally) semantic duplicates in every configured view.

    `encoder` replaces the embedding model (tests pass a fake); `references` are reference
    datasets (eval or benchmark sets) checked for contamination, by name.
    """
    cfg = config or ScanConfig()
    dataset = load(data, **load_kwargs)
    views: dict[str, ViewScan] = {}
    for view in cfg.views:
        raw, normalized = build_views(dataset.records, view, cfg.normalize)
        if _same_as_prompt(dataset, cfg, view, normalized):
            continue  # single-turn data: the first turn is the prompt; don't report it twice
        vs = ViewScan(view, raw, normalized)
        if cfg.exact:
            vs.exact = find_exact(normalized, view)
        if cfg.near:
            near = find_near_fast(
                normalized, view, cfg.minhash, progress=progress, backend=cfg.minhash.backend
            )
            vs.near, vs.shingle, vs.candidates = near.pairs, near.shingle, near.candidates
            vs.dense_buckets = near.dense_buckets
        if cfg.semantic.enabled:
            from dedup_audit.detect.embed import embedding_text, find_semantic

            if encoder is None:  # one encoder (one model load, one cache) for every view
                from dedup_audit.encoders import get_encoder

                encoder = get_encoder(cfg.semantic)
            texts = [embedding_text(r.sample, view) for r in dataset.records]
            vs.semantic = find_semantic(
                texts, view, cfg.semantic, encoder=encoder, progress=progress
            )
        views[view] = vs
    against: list[AgainstHit] = []
    calibrations: list[Any] = []
    for name, ref in (references or {}).items():
        against += _against(dataset, ref, name, cfg, encoder, progress, calibrations)
    result = _assemble(dataset, cfg, views, against)
    result.against_calibration = [c.to_dict() for c in calibrations]
    return result


def _same_as_prompt(dataset: Dataset, cfg: ScanConfig, view: str, normalized: list[str]) -> bool:
    return (
        view == "first_turn"
        and view != cfg.dedup_view
        and "prompt" in cfg.views
        and normalized == build_views(dataset.records, "prompt", cfg.normalize)[1]
    )


def _against(
    dataset: Dataset,
    reference: Dataset,
    name: str,
    cfg: ScanConfig,
    encoder: Encoder | None,
    progress: bool,
    calibrations: list[Any],
) -> list[AgainstHit]:
    from dedup_audit.detect.against import find_against, task_text

    hits = find_against(
        dataset,
        reference,
        name=name,
        normalize=cfg.normalize,
        minhash=cfg.minhash,
        semantic=cfg.semantic if cfg.semantic.enabled else None,
        encoder=encoder,
        progress=progress,
        false_flag_rate=cfg.semantic.against_false_flag_rate,
        calibrations=calibrations,
    )
    return [
        AgainstHit(
            index=h.train_index,
            reference=name,
            ref_id=reference.records[h.reference_index].id,
            method=h.method,
            score=h.score,
            view=h.view,
            ref_text=task_text(reference.records[h.reference_index].sample)[1],
        )
        for h in hits
    ]


@dataclass
class CleanResult:
    """A clean run: the scan behind it and the files written."""

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
    """data.clean.json -> data.clean.removed.jsonl, beside the cleaned output."""
    name = output.name if output.is_dir() or not output.suffix else output.stem
    return output.with_name(f"{name}.removed.jsonl")


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
    **load_kwargs: Any,
) -> CleanResult:
    """Scan, then write the kept records in the input's own format plus removed.jsonl.

    Output paths are checked before any work, every file is written atomically, and the input is
    never touched. kept + removed == input is checked before anything is written.
    """
    from dedup_audit.scan_report import removed_rows, write_scan_report
    from dedup_audit.writers import check_output_path, write_dataset, write_jsonl

    dataset = load(data, **load_kwargs)
    out = Path(output)
    removed_out = Path(removed_path) if removed_path else default_removed_path(out)
    inputs = [Path(p) for p in dataset.paths]
    for path in (out, removed_out):
        check_output_path(path, inputs, force)
    if out.resolve() == removed_out.resolve():
        from dedup_audit.errors import OutputError

        raise OutputError(f"{out}: the cleaned output and --removed must be different files")
    result = scan(dataset, config, encoder=encoder, references=references, progress=progress)
    kept, removed = result.kept_indices, result.removed
    if sorted(kept + [d.index for d in removed]) != list(range(len(dataset.records))):
        raise RuntimeError("internal error: kept + removed != input; nothing was written")
    write_dataset(dataset, kept, out, force=force)
    write_jsonl(removed_out, removed_rows(result))
    rdir = Path(report_dir) if report_dir else None
    if rdir is not None:
        write_scan_report(result, rdir)
    return CleanResult(result, out, removed_out, rdir)
