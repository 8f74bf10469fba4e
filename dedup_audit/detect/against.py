"""Contamination: training samples that overlap a reference (eval/benchmark) set, and how.

Four methods, from strict to paraphrase-robust, each reported separately so a hit says what kind
of overlap it is:

- exact: identical after normalisation (score 1.0);
- ngram: a shared long word n-gram (13 by default, as in the GPT-3 and Llama contamination
  studies); score = share of the reference text's n-grams found in the training text;
- minhash: MinHash-LSH candidates verified by exact Jaccard of the shingle sets >= threshold;
- embedding: cosine of the sentence embeddings >= threshold (rephrased benchmark questions).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dedup_audit.config import MinHashConfig, NormalizeConfig, SemanticConfig
from dedup_audit.detect.exact import text_hash
from dedup_audit.progress import progress_bar
from dedup_audit.views import normalize as normalize_text
from dedup_audit.views import shingle_mode, view_text

if TYPE_CHECKING:
    from dedup_audit.encoders import Encoder
    from dedup_audit.records import Dataset

METHODS = ("exact", "ngram", "minhash", "embedding")
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class ContaminationHit:
    """Training record `train_index` overlaps reference record `reference_index` in `view`."""

    train_index: int
    reference_index: int
    method: str  # exact | ngram | minhash | embedding
    score: float
    view: str
    reference: str = ""  # name of the reference set


def _ngram_keys(text: str, n: int) -> set[bytes]:
    words = _WORD.findall(text)
    if len(words) < n:
        return set()
    return {
        hashlib.blake2b(" ".join(words[i : i + n]).encode("utf-8"), digest_size=8).digest()
        for i in range(len(words) - n + 1)
    }


def _exact(train: list[str], ref: list[str]) -> list[tuple[int, int, float]]:
    by_hash: dict[str, list[int]] = {}
    for j, t in enumerate(ref):
        if t:
            by_hash.setdefault(text_hash(t), []).append(j)
    return [(i, j, 1.0) for i, t in enumerate(train) if t for j in by_hash.get(text_hash(t), [])]


def _ngram(
    train: list[str], ref: list[str], n: int, progress: bool
) -> list[tuple[int, int, float]]:
    index: dict[bytes, list[int]] = {}
    ref_sizes: list[int] = []
    for j, t in enumerate(ref):
        keys = _ngram_keys(t, n)
        ref_sizes.append(len(keys))
        for k in keys:
            index.setdefault(k, []).append(j)
    out = []
    for i, t in enumerate(progress_bar(train, desc="against[ngram]", enabled=progress)):
        shared: dict[int, int] = {}
        for k in _ngram_keys(t, n):
            for j in index.get(k, ()):
                shared[j] = shared.get(j, 0) + 1
        out += [(i, j, c / ref_sizes[j]) for j, c in sorted(shared.items())]
    return out


def _minhash(
    train: list[str], ref: list[str], cfg: MinHashConfig, progress: bool
) -> list[tuple[int, int, float]]:
    """Near matches by the lexical engine: the same shingles, sketches and recall-tuned banding
    as deduplication inside one corpus, every candidate verified by exact Jaccard."""
    from dedup_audit.engine.cross import match, table_from_view
    from dedup_audit.engine.lexical import sketch_view

    mode = shingle_mode([*ref, *train], cfg)
    t, r = sketch_view(train, mode, cfg), sketch_view(ref, mode, cfg)
    tt = table_from_view(t.params, t.sketches, t.row_of)
    rt = table_from_view(r.params, r.sketches, r.row_of)
    m = match(tt, rt, cfg.threshold)
    has_shingles = tt.counts()[m.query] > 0
    out = [
        (i, j, float(score))
        for q, o, score in zip(
            m.query[has_shingles].tolist(),
            m.other[has_shingles].tolist(),
            m.score[has_shingles].tolist(),
            strict=True,
        )
        for i in tt.members(q)
        for j in rt.members(o)
    ]
    return sorted(out)


def _embedding(
    train_raw: list[str],
    ref_raw: list[str],
    cfg: SemanticConfig,
    encoder: Encoder | None,
    progress: bool,
) -> list[tuple[int, int, float]]:
    from dedup_audit.detect.faiss_index import knn_cross

    ti = [i for i, t in enumerate(train_raw) if t.strip()]
    ri = [j for j, t in enumerate(ref_raw) if t.strip()]
    if not ti or not ri:
        return []
    if encoder is None:
        from dedup_audit.encoders import get_encoder

        encoder = get_encoder(cfg)
    t_emb = encoder.encode([train_raw[i] for i in ti], batch_size=cfg.batch_size, progress=progress)
    r_emb = encoder.encode([ref_raw[j] for j in ri], batch_size=cfg.batch_size, progress=progress)
    return [
        (ti[a], ri[b], min(1.0, s)) for a, b, s in knn_cross(t_emb, r_emb, cfg.k, cfg.threshold)
    ]


def find_against(
    train: Dataset,
    reference: Dataset,
    *,
    name: str,
    views: Sequence[str] = ("prompt",),
    normalize: NormalizeConfig | None = None,
    minhash: MinHashConfig | None = None,
    semantic: SemanticConfig | None = None,
    ngram_overlap: int = 13,
    methods: Sequence[str] = METHODS,
    encoder: Encoder | None = None,
    progress: bool = False,
) -> list[ContaminationHit]:
    """Every (training record, reference record, method, view) overlap, sorted by
    (train index, reference index, view, method). The embedding method runs only when
    `semantic` is given; `ngram_overlap` <= 0 disables the n-gram method.

    The default view is `prompt`: benchmark questions leak into training prompts, while answers
    (e.g. GSM8K worked solutions) are rephrased more often than copied.
    """
    norm_cfg = normalize or NormalizeConfig()
    mh_cfg = minhash or MinHashConfig()
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        from dedup_audit.errors import ConfigError

        raise ConfigError(f"unknown contamination method(s) {unknown}; choose from {METHODS}")
    hits: list[ContaminationHit] = []
    for view in views:
        t_raw = [view_text(r.sample, view) for r in train.records]
        r_raw = [view_text(r.sample, view) for r in reference.records]
        t_norm = [normalize_text(t, norm_cfg) for t in t_raw]
        r_norm = [normalize_text(t, norm_cfg) for t in r_raw]
        found: dict[str, list[tuple[int, int, float]]] = {}
        if "exact" in methods:
            found["exact"] = _exact(t_norm, r_norm)
        if "ngram" in methods and ngram_overlap > 0:
            found["ngram"] = _ngram(t_norm, r_norm, ngram_overlap, progress)
        if "minhash" in methods:
            found["minhash"] = _minhash(t_norm, r_norm, mh_cfg, progress)
        if "embedding" in methods and semantic is not None:
            found["embedding"] = _embedding(t_raw, r_raw, semantic, encoder, progress)
        for method, triples in found.items():
            hits += [
                ContaminationHit(i, j, method, round(float(s), 6), view, name)
                for i, j, s in triples
            ]
    order = {m: k for k, m in enumerate(METHODS)}
    return sorted(hits, key=lambda h: (h.train_index, h.reference_index, h.view, order[h.method]))


def summarize(hits: Sequence[ContaminationHit]) -> dict[str, int]:
    """Number of distinct training records hit, per method."""
    per: dict[str, set[int]] = {}
    for h in hits:
        per.setdefault(h.method, set()).add(h.train_index)
    return {m: len(per[m]) for m in METHODS if m in per}
