"""Contamination: training samples that overlap a reference (eval/benchmark) set, and how.

Four methods, from strict to paraphrase-robust, each reported separately so a hit says what kind
of overlap it is:

- exact: identical after normalisation (score 1.0);
- ngram: a shared long word n-gram (13 by default, as in the GPT-3 and Llama contamination
  studies); score = share of the reference text's n-grams found in the training text;
- minhash: MinHash-LSH candidates verified by exact Jaccard of the shingle sets >= threshold;
- embedding: two stages for rephrased benchmark items. Embedding candidates (each training
  text's nearest reference items, recall-oriented), then verification by what a benchmark item
  is: a cosine or a margin over the next-nearest item beyond cuts calibrated on this data's own
  null distribution (see `Calibration`), or the item's numbers / answer in the training text.
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
    from dedup_audit.records import Dataset, Sample

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


def _minhash_hits(
    train: list[str], ref: list[str], cfg: MinHashConfig, progress: bool
) -> list[tuple[int, int, float]]:
    """Lexical stage: near matches by the lexical engine (the same shingles, sketches and
    recall-tuned banding as deduplication inside one corpus), every candidate verified by exact
    shingle Jaccard >= cfg.threshold, as (train row, reference row, Jaccard)."""
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


CANDIDATE_FLOOR = 0.5
"""Stage 1 of the embedding check: a training text's nearest reference items down to this cosine
are candidates (recall-oriented: rephrasings of benchmark items score 0.5-0.95)."""

DEFAULT_FALSE_FLAG_RATE = 0.001

SIZE_RATIO = 3
"""The margin and answer signals need a training text of at least 1/SIZE_RATIO of the item's
words: a rephrasing keeps an item's size, while a one-line request ("print the first 5 elements
of a list") near a 300-word HumanEval program is not a copy of it."""


def _words(text: str) -> int:
    return len(text.split())


@dataclass(frozen=True)
class Calibration:
    """How the embedding check's cuts were set from this data (written into report.json).

    Null distribution: for every training text, its 2nd-nearest reference item is unrelated (a
    text rephrases at most one item), so the 2nd-best cosines are a sample of "best score of an
    unrelated item", and 2nd-best minus 3rd-best a sample of "margin of an unrelated best". Each
    cut is that sample's (1 - rate) quantile, so a training text that copies nothing is flagged by
    one signal with probability about `rate`.
    """

    reference: str
    rate: float
    null_size: int
    cosine_cut: float
    margin_cut: float
    floor: float
    candidates: int
    flagged: int
    by_signal: dict[str, int]

    def to_dict(self) -> dict[str, object]:
        return {
            "reference": self.reference,
            "false_flag_rate": self.rate,
            "null_pairs": self.null_size,
            "cosine_cut": round(self.cosine_cut, 6),
            "margin_cut": round(self.margin_cut, 6),
            "candidate_floor": self.floor,
            "candidates": self.candidates,
            "flagged": self.flagged,
            "flagged_by_signal": dict(sorted(self.by_signal.items())),
        }


MIN_NUMBERS = 4
_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")
_CONTENT = re.compile(r"[A-Za-z]{4,}")


def _numbers(text: str) -> set[str]:
    """Numbers as written, without thousands separators and trailing decimal zeros."""
    out = set()
    for n in _NUMBER.findall(text):
        n = n.replace(",", "")
        out.add(n.rstrip("0").rstrip(".") if "." in n else n)
    return out


def answer_evidence(ref_task: str, ref_answer: str, train_text: str) -> bool:
    """Stage 2 signal from what a benchmark item is: the training text carries the item's
    numbers (at least MIN_NUMBERS distinct ones, 80% or more: rephrasings keep the quantities), or
    the item's answer (the correct choice's words, a code entry point)."""
    low = train_text.lower()
    nums = _numbers(ref_task)
    if len(nums) >= MIN_NUMBERS and len(nums & _numbers(train_text)) >= 0.8 * len(nums):
        return True
    entry = re.search(r"^def\s+([A-Za-z_]\w*)", ref_answer, re.MULTILINE)
    if entry and len(entry[1]) >= 6 and re.search(rf"\b{re.escape(entry[1])}\b", train_text):
        return True
    words = {w.lower() for w in _CONTENT.findall(ref_answer)}
    if 3 <= len(words) <= 30 and "def " not in ref_answer:
        found = sum(1 for w in words if w in low)
        return found >= 0.8 * len(words)
    return False


def _quantile(values: list[float], q: float) -> float:
    import numpy as np

    if not values:
        return 1.0
    return float(np.quantile(np.asarray(values, dtype=np.float64), q, method="higher"))


def _embedding_hits(
    train_raw: list[str],
    ref_raw: list[str],
    ref_answers: list[str],
    train_full: list[str],
    cfg: SemanticConfig,
    encoder: Encoder | None,
    progress: bool,
    *,
    rate: float,
    name: str,
) -> tuple[list[tuple[int, int, float]], Calibration | None]:
    """Two-stage embedding check. Stage 1: each training text's k nearest reference items (k >=
    3) at cosine >= CANDIDATE_FLOOR. Stage 2: the nearest one is a hit when its cosine passes the
    calibrated cut, or its margin over the 2nd-nearest passes the calibrated margin cut (a
    rephrasing is far closer to its own original than to the next item), or the training text
    carries the item's numbers or answer (`answer_evidence`); the last two only for a training
    text of comparable size (SIZE_RATIO)."""
    from dedup_audit.detect.faiss_index import knn_cross

    ti = [i for i, t in enumerate(train_raw) if t.strip()]
    ri = [j for j, t in enumerate(ref_raw) if t.strip()]
    if not ti or not ri:
        return [], None
    if encoder is None:
        from dedup_audit.encoders import get_encoder

        encoder = get_encoder(cfg)
    t_emb = encoder.encode([train_raw[i] for i in ti], batch_size=cfg.batch_size, progress=progress)
    r_emb = encoder.encode([ref_raw[j] for j in ri], batch_size=cfg.batch_size, progress=progress)
    k = min(max(cfg.k, 3), len(ri))
    ranked: dict[int, list[tuple[float, int]]] = {}
    for a, b, score in knn_cross(t_emb, r_emb, k, -1.0):
        ranked.setdefault(a, []).append((min(1.0, score), b))
    tops: dict[int, tuple[float, int, float, float]] = {}
    null_top: list[float] = []
    null_margin: list[float] = []
    for a, lst in ranked.items():
        lst.sort(key=lambda x: (-x[0], x[1]))
        s1, b1 = lst[0]
        s2 = lst[1][0] if len(lst) > 1 else -1.0
        s3 = lst[2][0] if len(lst) > 2 else -1.0
        tops[a] = (s1, b1, s2, s3)
        if len(lst) > 2:
            null_top.append(s2)
            null_margin.append(s2 - s3)
    cut = max(CANDIDATE_FLOOR, _quantile(null_top, 1.0 - rate))
    margin_cut = _quantile(null_margin, 1.0 - rate)
    out: list[tuple[int, int, float]] = []
    by_signal: dict[str, int] = {}
    candidates = 0
    for a in sorted(tops):
        s1, b1, s2, _ = tops[a]
        if s1 < CANDIDATE_FLOOR:
            continue
        candidates += 1
        i, j = ti[a], ri[b1]
        sized = _words(train_raw[i]) * SIZE_RATIO >= _words(ref_raw[j])
        if s1 >= cut:
            signal = "cosine"
        elif sized and len(ri) > 2 and s1 - s2 >= margin_cut:
            signal = "margin"
        elif sized and answer_evidence(ref_raw[j], ref_answers[j], train_full[i]):
            signal = "answer"
        else:
            continue
        by_signal[signal] = by_signal.get(signal, 0) + 1
        out.append((i, j, s1))
    calib = Calibration(
        name, rate, len(null_top), cut, margin_cut, CANDIDATE_FLOOR, candidates, len(out), by_signal
    )
    return out, calib


def task_text(sample: Sample) -> tuple[str, str]:
    """(view, text) compared for contamination: the prompt, or for text-only records (empty
    prompt: pretraining text, {"text"} benchmark files) the document itself."""
    prompt = view_text(sample, "prompt")
    if prompt.strip():
        return "prompt", prompt
    return "response", view_text(sample, "response")


def find_against(
    train: Dataset,
    reference: Dataset,
    *,
    name: str,
    normalize: NormalizeConfig | None = None,
    minhash: MinHashConfig | None = None,
    semantic: SemanticConfig | None = None,
    ngram_overlap: int = 13,
    methods: Sequence[str] = METHODS,
    encoder: Encoder | None = None,
    progress: bool = False,
    false_flag_rate: float = DEFAULT_FALSE_FLAG_RATE,
    calibrations: list[Calibration] | None = None,
) -> list[ContaminationHit]:
    """Every (training record, reference record, method) overlap, sorted by (train index,
    reference index, view, method). The embedding method runs only when `semantic` is given;
    `ngram_overlap` <= 0 disables the n-gram method. The embedding check's calibration is
    appended to `calibrations` when a list is given.

    Compared text (`task_text`): the prompt, where benchmark questions leak (answers such as
    GSM8K worked solutions are rephrased more often than copied); for text-only records, the
    text itself. A hit's `view` says which of the training record's views matched.
    """
    norm_cfg = normalize or NormalizeConfig()
    mh_cfg = minhash or MinHashConfig()
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        from dedup_audit.errors import ConfigError

        raise ConfigError(f"unknown contamination method(s) {unknown}; choose from {METHODS}")
    t_views, t_raw = _unzip([task_text(r.sample) for r in train.records])
    _, r_raw = _unzip([task_text(r.sample) for r in reference.records])
    t_norm = [normalize_text(t, norm_cfg) for t in t_raw]
    r_norm = [normalize_text(t, norm_cfg) for t in r_raw]
    found: dict[str, list[tuple[int, int, float]]] = {}
    if "exact" in methods:
        found["exact"] = _exact(t_norm, r_norm)
    if "ngram" in methods and ngram_overlap > 0:
        found["ngram"] = _ngram(t_norm, r_norm, ngram_overlap, progress)
    if "minhash" in methods:
        found["minhash"] = _minhash_hits(t_norm, r_norm, mh_cfg, progress)
    if "embedding" in methods and semantic is not None:
        r_answers = [view_text(r.sample, "response") for r in reference.records]
        t_full = [view_text(r.sample, "full") for r in train.records]
        found["embedding"], calib = _embedding_hits(
            t_raw,
            r_raw,
            r_answers,
            t_full,
            semantic,
            encoder,
            progress,
            rate=false_flag_rate,
            name=name,
        )
        if calib is not None and calibrations is not None:
            calibrations.append(calib)
    hits: list[ContaminationHit] = []
    for method, triples in found.items():
        hits += [
            ContaminationHit(i, j, method, round(float(s), 6), t_views[i], name)
            for i, j, s in triples
        ]
    order = {m: k for k, m in enumerate(METHODS)}
    return sorted(hits, key=lambda h: (h.train_index, h.reference_index, h.view, order[h.method]))


def _unzip(pairs: list[tuple[str, str]]) -> tuple[list[str], list[str]]:
    return [p[0] for p in pairs], [p[1] for p in pairs]
