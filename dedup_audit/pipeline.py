"""scan: load -> views -> detectors -> clusters -> decisions (`clean` then writes outputs:
dedup_audit.cleaning).

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

import numpy as np

from dedup_audit.clusters import DIFFERENT_ANSWER, UNCONFIRMED, build_clusters, split_semantic
from dedup_audit.config import EngineConfig, MinHashConfig, NormalizeConfig, ScanConfig
from dedup_audit.decide import AgainstHit, best_hits, decide
from dedup_audit.errors import ConfigError
from dedup_audit.records import PAIR_METHODS, Cluster, Dataset, Decision, Pair, PairSet
from dedup_audit.views import view_text

if TYPE_CHECKING:
    from dedup_audit.encoders import Encoder


@dataclass
class ViewScan:
    """Everything one view's detectors scored. Thresholds are applied later, in `edges`.

    Texts are not kept (a view of a million records is gigabytes): `text_hash` holds each
    record's 128-bit hash of its normalised text (zeros for an empty text), which is all the
    cluster kinds need, and `text(records, i)` rebuilds a text when a report shows it."""

    view: str
    text_hash: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.uint64))
    exact: PairSet = None  # type: ignore[assignment]  # a star per identical group
    near: PairSet = None  # type: ignore[assignment]  # every verified MinHash candidate >= floor
    semantic: PairSet = None  # type: ignore[assignment]  # every kNN neighbour with its cosine
    shingle: str = ""
    candidates: int = 0
    dense_buckets: int = 0

    def __post_init__(self) -> None:
        for name in ("exact", "near", "semantic"):
            value = getattr(self, name)
            if value is None:
                setattr(self, name, PairSet.empty(self.view))
            elif not isinstance(value, PairSet):
                setattr(self, name, PairSet.from_pairs(self.view, value))

    @property
    def empty_texts(self) -> int:
        return int(np.count_nonzero(~self.text_hash.any(axis=1)))

    def text(self, dataset: Dataset, index: int) -> str:
        """The raw text of record `index` in this view."""
        return view_text(dataset.records[index].sample, self.view)

    def keys(self) -> np.ndarray:
        """Per-record text keys, (n, 2): equal rows <=> equal normalised text."""
        return self.text_hash

    def edges(self, near_threshold: float, semantic_threshold: float) -> PairSet:
        """The pairs that count at these thresholds (exact pairs always count)."""
        return PairSet.concat(
            self.view,
            [
                self.exact,
                self.near.at_least(near_threshold),
                self.semantic.at_least(semantic_threshold),
            ],
        )


@dataclass
class ScanResult:
    """The outcome of a scan: clusters per view, one decision per record, and all evidence
    (every scored pair, so it re-thresholds without recompute). `Audit.result` holds one.

    Examples:
        >>> from dedup_audit.pipeline import scan
        >>> result = scan("sample_data/alpaca_en_demo.json")
        >>> len(result.removed), result.clusters_in("full", "exact")[0].kind
        (14, 'exact')
    """

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
        result = assemble(self.dataset, cfg, self.views, self.against)
        result.against_calibration = list(self.against_calibration)
        return result


def assemble(
    dataset: Dataset,
    cfg: ScanConfig,
    views: Mapping[str, ViewScan],
    against: Sequence[AgainstHit],
    labels_of: Callable[[Any, Any, int], Any] | None = None,
) -> ScanResult:
    n = len(dataset.records)
    scanned = [v for v in cfg.views if v in views]
    prompts = _keys(dataset, cfg, views, "prompt") if {"response"} & set(scanned) else None
    responses = (
        _keys(dataset, cfg, views, "response") if {"prompt", "first_turn"} & set(scanned) else None
    )
    clusters: list[Cluster] = []
    edges_of = {
        v: views[v].edges(cfg.minhash.threshold, cfg.semantic.threshold)
        for v in cfg.views
        if v in views
    }
    answers, numbers = _answers(dataset, views) if cfg.semantic.enabled else ([None] * n, [])
    linked = _linked_in(edges_of, views) if cfg.semantic.enabled else None
    embedding = PAIR_METHODS.index("embedding")
    for view in edges_of:
        every = edges_of[view]
        is_emb = every.method == embedding
        different: list[Pair] = []
        unconfirmed: list[Pair] = []
        edges = every
        if is_emb.any():  # only embedding links are checked against the answers
            kept, different, unconfirmed = split_semantic(
                view,
                every.take(is_emb).pairs(),
                answers=answers,
                numbers=numbers,
                linked=linked if view == cfg.dedup_view else None,
            )
            edges = PairSet.concat(view, [every.take(~is_emb), PairSet.from_pairs(view, kept)])
        clusters += build_clusters(
            n,
            view,
            edges,
            prompts=prompts,
            responses=responses,
            first_id=len(clusters),
            labels_of=labels_of,
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


def _keys(
    dataset: Dataset, cfg: ScanConfig, views: Mapping[str, ViewScan], view: str
) -> np.ndarray:
    """Per-record text keys of a view: from the scan, or hashed now when it was not scanned."""
    if view in views:
        return views[view].keys()
    from dedup_audit.engine.local import scan_lexical

    lex = scan_lexical(
        dataset.records, [view], cfg.normalize, cfg.minhash, exact=False, near=False
    )[view]
    assert lex.exact_hash is not None
    return ViewScan(view, lex.exact_hash).keys()


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
    edges_of: Mapping[str, PairSet], views: Mapping[str, ViewScan]
) -> Callable[[int, int], bool]:
    """linked(a, b): the prompt and the response views both hold an edge between a and b (a
    view that was not scanned, or is empty on both sides, does not object)."""
    sets = {
        v: (
            set(zip(edges_of[v].a.tolist(), edges_of[v].b.tolist(), strict=True)),
            np.asarray(views[v].text_hash.any(axis=1)).tolist(),  # non-empty normalised text
        )
        for v in ("prompt", "response")
        if v in edges_of
    }

    def linked(a: int, b: int) -> bool:
        for pairs, texts in sets.values():
            if (a, b) not in pairs and (texts[a] or texts[b]):
                return False
        return True

    return linked


def load(data: str | Path | Dataset, **load_kwargs: Any) -> Dataset:
    """A Dataset as given, or loaded from a path with the readers' options."""
    if isinstance(data, Dataset):
        return data
    from dedup_audit.readers import load_dataset

    return load_dataset(data, **load_kwargs)


def _lexical_args(
    cfg: ScanConfig,
) -> tuple[tuple[str, ...], NormalizeConfig, MinHashConfig, dict[str, bool]]:
    """What both lexical engines (local, Ray) take from the scan configuration."""
    options = {
        "exact": cfg.exact,
        "near": cfg.near,
        "skip_first_turn_if_prompt": cfg.dedup_view != "first_turn",
    }
    return cfg.views, cfg.normalize, cfg.minhash, options


def scan(
    data: str | Path | Dataset,
    config: ScanConfig | None = None,
    *,
    encoder: Encoder | None = None,
    references: Mapping[str, Dataset] | None = None,
    progress: bool = False,
    engine: EngineConfig | None = None,
    index: str | Path | None = None,
    save_index: str | Path | None = None,
    force: bool = False,
    **load_kwargs: Any,
) -> ScanResult:
    """Find exact, near and (optionally) semantic duplicates in every configured view.

    `index` is a folder written by an earlier `save_index`: records of the dedup view that
    duplicate a record of that older corpus are removed with reason `index:<folder name>`.
    `save_index` writes this corpus's index (every scanned view) for later scans.

    `encoder` replaces the embedding model (tests pass a fake); `references` are reference
    datasets (eval or benchmark sets) checked for contamination, by name.
    """
    cfg = config or ScanConfig()
    if cfg.semantic.enabled and encoder is None:
        from dedup_audit.extras import require

        require("semantic", "--semantic (sentence embeddings)")
    dataset = load(data, **load_kwargs)
    if engine is not None and engine.kind == "ray":
        if index is not None or save_index is not None:
            raise ConfigError("--index and --save-index run on the local engine; drop --engine ray")
        from dedup_audit.engine.ray_engine import RaySession

        with RaySession(engine) as ray_session:
            views, normalize, minhash, options = _lexical_args(cfg)
            lexical = ray_session.scan_lexical(
                dataset, views, normalize, minhash, **options, progress=progress
            )
            return _finish_scan(
                dataset, cfg, lexical, None, encoder, references, progress, ray_session.labels
            )
    from dedup_audit.engine.local import scan_lexical

    loaded = None
    if index is not None:
        from dedup_audit.engine.index import load_index

        if not cfg.near:
            raise ConfigError("--index needs near-duplicate detection; drop --no-near")
        loaded = load_index(Path(index), cfg.normalize, cfg.minhash, [cfg.dedup_view])
    if save_index is not None and not cfg.near:
        raise ConfigError("--save-index needs near-duplicate detection; drop --no-near")
    views, normalize, minhash, options = _lexical_args(cfg)
    lexical = scan_lexical(
        dataset.records,
        views,
        normalize,
        minhash,
        **options,
        engine=engine,
        progress=progress,
        index=loaded,
        keep_tables=save_index is not None,
    )
    if save_index is not None:
        from dedup_audit.engine.index import save_index as write_index

        write_index(
            Path(save_index),
            {v: lex.table for v, lex in lexical.items() if lex.table is not None},
            {v: lex.shingle for v, lex in lexical.items()},
            [r.id for r in dataset.records],
            cfg.normalize,
            cfg.minhash,
            force=force,
        )
    return _finish_scan(dataset, cfg, lexical, loaded, encoder, references, progress)


def _finish_scan(
    dataset: Dataset,
    cfg: ScanConfig,
    lexical: Mapping[str, Any],
    loaded: Any,
    encoder: Encoder | None,
    references: Mapping[str, Dataset] | None,
    progress: bool,
    labels_of: Callable[[Any, Any, int], Any] | None = None,
) -> ScanResult:
    """Everything after the lexical engine (either engine): semantic pairs, contamination
    hits, clusters and decisions."""
    views: dict[str, ViewScan] = {}
    for view, lex in lexical.items():
        assert lex.exact_hash is not None
        vs = ViewScan(view, lex.exact_hash, shingle=lex.shingle if cfg.near else "")
        vs.exact, vs.near = lex.exact_pairs, lex.near_pairs
        vs.candidates, vs.dense_buckets = lex.candidates, lex.dense_buckets
        views[view] = vs
    if cfg.semantic.enabled:
        if encoder is None:  # one encoder (one model load, one cache) for every view
            from dedup_audit.encoders import get_encoder

            encoder = get_encoder(cfg.semantic)
        _semantic(dataset, cfg, views, encoder, progress)
    against: list[AgainstHit] = []
    calibrations: list[Any] = []
    if loaded is not None:
        against += _index_hits(lexical[cfg.dedup_view], loaded, dataset)
    for name, ref in (references or {}).items():
        against += _against(dataset, ref, name, cfg, encoder, progress, calibrations)
    result = assemble(dataset, cfg, views, against, labels_of)
    result.against_calibration = [c.to_dict() for c in calibrations]
    return result


def search_views(cfg: ScanConfig) -> tuple[str, ...]:
    """The views searched for paraphrases over every record (kNN): `--semantic-views`, or by
    default only the views whose semantic clusters remove records (the dedup view; the prompt
    views too with --remove-conflicting, which removes their conflicting clusters)."""
    chosen = cfg.semantic.search_views or (
        cfg.dedup_view,
        *(("prompt", "first_turn") if cfg.remove_conflicting else ()),
    )
    return tuple(v for v in cfg.views if v in chosen)


def _semantic(
    dataset: Dataset,
    cfg: ScanConfig,
    views: dict[str, ViewScan],
    encoder: Encoder,
    progress: bool,
) -> None:
    """Semantic pairs of every view: a kNN search over every record in `search_views`; in the
    other scanned views, only the dedup view's links they must confirm.

    Why: a decision needs the prompt and response views only for a dedup-view link whose final
    answers are unknown (`clusters.split_semantic`); embedding every record's prompt and
    response for that doubled the embedding time of `clean --semantic` (benchmarks/README.md,
    "Semantic: speed at equal decisions"). Those views then hold the confirmed links' cosines
    (every dedup-view link down to the scored floor, so `rethreshold` can still lower the
    threshold), not their own neighbours.
    """
    from dedup_audit.answers import answers_agree
    from dedup_audit.detect.embed import BORDERLINE_MARGIN, embedding_text, find_semantic

    searched = search_views(cfg)
    for view in searched:
        texts = [embedding_text(r.sample, view) for r in dataset.records]
        found = find_semantic(texts, view, cfg.semantic, encoder=encoder, progress=progress)
        views[view].semantic = PairSet.from_pairs(view, found)
    confirm = [v for v in ("prompt", "response") if v in views and v not in searched]
    if not confirm or cfg.dedup_view not in searched:
        return
    answers, numbers = _answers(dataset, views)
    links = views[cfg.dedup_view].semantic
    need = [
        (a, b)
        for a, b in zip(links.a.tolist(), links.b.tolist(), strict=True)
        if answers_agree(answers[a], answers[b]) is None and numbers[a] == numbers[b]
    ]
    members = sorted({m for pair in need for m in pair})
    for view in confirm:
        text_of = {m: embedding_text(dataset.records[m].sample, view) for m in members}
        rows = [m for m in members if text_of[m].strip()]
        at = {m: k for k, m in enumerate(rows)}
        pairs: list[Pair] = []
        if rows:
            emb = encoder.encode(
                [text_of[m] for m in rows], batch_size=cfg.semantic.batch_size, progress=progress
            )
            floor = cfg.semantic.threshold - BORDERLINE_MARGIN
            for a, b in need:
                if a in at and b in at:
                    cos = round(min(1.0, float(emb[at[a]] @ emb[at[b]])), 6)
                    if cos >= floor:
                        pairs.append(Pair(a, b, cos, "embedding", view))
        views[view].semantic = PairSet.from_pairs(view, pairs)


def _index_hits(lex: Any, loaded: Any, dataset: Dataset) -> list[AgainstHit]:
    """Records of the dedup view that repeat a record of the indexed corpus (best match each)."""
    m, query, other = lex.index_matches, lex.index_table, loaded.tables[lex.view]
    if m is None or not len(m.query):
        return []
    hits: list[AgainstHit] = []
    order = np.lexsort((m.other, -m.score, m.query))  # best (highest score) first per row
    seen: set[int] = set()
    for k in order.tolist():
        q = int(m.query[k])
        if q in seen:
            continue
        seen.add(q)
        old = other.members(int(m.other[k]))[0]
        for rec in query.members(q):
            hits.append(
                AgainstHit(
                    index=rec,
                    reference=loaded.name,
                    ref_id=loaded.ids[old],
                    method="exact" if m.exact[k] else "minhash",
                    score=float(m.score[k]),
                    view=lex.view,
                    kind="indexed",
                    estimate=None if m.exact[k] else float(m.estimate[k]),
                )
            )
    return sorted(hits, key=lambda h: h.index)


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
