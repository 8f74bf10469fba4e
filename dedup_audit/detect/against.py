"""Contamination: training samples that overlap a reference (eval/benchmark) set, and how.

Four methods, from strict to paraphrase-robust, each reported separately so a hit says what kind
of overlap it is:

- exact: identical after normalisation (score 1.0);
- ngram: a shared long word n-gram (13 by default, as in the GPT-3 and Llama contamination
  studies); score = share of the reference text's n-grams found in the training text;
- minhash: MinHash-LSH candidates verified by exact Jaccard of the shingle sets >= threshold;
- embedding: two stages for rephrased benchmark items. Embedding candidates (each training
  text's nearest reference items, recall-oriented), then verification by what a benchmark item
  is: the program's shape for code items (`code_shape`), a score, a margin over the
  next-nearest item or the share of the item's distinctive terms beyond cuts calibrated on this
  data's own null distribution (see `Calibration`), or the item's numbers / answer in the
  training text; and, for items with a one-line answer, the whole training record against the
  item's question and answer embedded together (`_question_answer`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
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


CANDIDATE_FLOOR = 0.45
"""Stage 1 of the embedding check: a training text's nearest reference items down to this cosine
are candidates (recall-oriented: rephrasings of benchmark items score 0.45-0.95)."""

CANDIDATES = 10
"""Stage 1 keeps each training text's CANDIDATES nearest reference items: a rephrased program's
own original is among its 3 nearest in 99% of cases but the nearest in only 93%, so stage 2
ranks the candidates again with the code shape (`code_shape`)."""

DEFAULT_FALSE_FLAG_RATE = 0.001

SIZE_RATIO = 3
"""The margin and answer signals need a training text of at least 1/SIZE_RATIO of the item's
words: a rephrasing keeps an item's size, while a one-line request ("print the first 5 elements
of a list") near a 300-word HumanEval program is not a copy of it."""

SHAPE_GATE = 0.03
"""A code item (its answer defines a function) is verified only by a training text that carries
a program of a similar shape (code-shape Jaccard >= SHAPE_GATE; rephrased HumanEval programs:
0.06 and up in 99%, natural-language requests: 0): a request for code is not a copy of the code."""

KEPT_QUANTITIES = 0.5
"""Any other item that states 3 or more distinct numbers is verified only by a training text
that carries at least this share of them: a rephrasing keeps a word problem's quantities, while
GSM8K's template siblings ("270 miles in 3 hours" / "1200 miles in 3 hours") are other tasks
(the same rule as semantic deduplication's "same quantities", dedup_audit.answers)."""

MARGIN_SPACING = 2.0
"""The margin null is the 2nd-minus-3rd score; under the extreme-value model of a row's top
scores the k-th spacing scales as 1/k, so the 1st-minus-2nd margin of an unrelated row is
about twice the 2nd-minus-3rd: the null sample is scaled by this factor."""


SIBLINGS_SHOWN = 10
"""report.json lists this many sibling pairs (near-copies inside the reference), strongest
first: worth knowing about a benchmark, and why a copy may be matched to an item's sibling."""

SIBLING_ROUNDS = 10
"""Rounds of the sibling fixed point (`_sibling_cut`); the development sets settle in 2-4."""


class _PairScores:
    """Two reference items' score, computed once per pair (symmetric): the sibling test of the
    null asks it for every row's best item against each runner-up."""

    def __init__(self, score: Callable[[int, int], float]) -> None:
        self._score = score
        self._cache: dict[tuple[int, int], float] = {}

    def __call__(self, a: int, b: int) -> float:
        key = (min(a, b), max(a, b))
        if key not in self._cache:
            self._cache[key] = self._score(*key)
        return self._cache[key]

    def at_least(self, cut: float) -> list[tuple[float, int, int]]:
        """(score, a, b) of the pairs asked about that score `cut` or more, strongest first."""
        found = [(v, a, b) for (a, b), v in self._cache.items() if v >= cut]
        return sorted(found, key=lambda t: (-t[0], t[1], t[2]))


def _sibling_cut(scores: list[list[float]], pairs: list[list[float]], rate: float) -> float:
    """The score cut: the (1 - rate) quantile of every row's best runner-up that is not a
    sibling of its best item (at least CANDIDATE_FLOOR).

    `scores[r]` are row r's runners-up scores (best first excluded, descending) and `pairs[r]`
    those items' scores against row r's best item. Siblings are items that score the cut
    against each other, so the cut is a fixed point: round one has no siblings (the plain
    2nd-best null), each round's cut defines the next round's siblings, and since more siblings
    only lower the null, the cut only falls; at most SIBLING_ROUNDS rounds. A row needs two
    non-sibling runners-up to be a null sample (the margin null uses the second one)."""
    import numpy as np

    width = max((len(r) for r in scores), default=0)
    if width < 2:
        return max(CANDIDATE_FLOOR, _quantile([], 1.0 - rate))
    s = np.full((len(scores), width), -np.inf)
    p = np.full((len(scores), width), np.inf)
    for r, (row_scores, row_pairs) in enumerate(zip(scores, pairs, strict=True)):
        s[r, : len(row_scores)] = row_scores
        p[r, : len(row_pairs)] = row_pairs
    valid = np.isfinite(s)
    cut = float("inf")
    for _ in range(SIBLING_ROUNDS):
        free = valid & (p < cut)
        rows = free.sum(axis=1) >= 2
        first = free.argmax(axis=1)
        null = s[np.flatnonzero(rows), first[rows]].tolist()
        new_cut = max(CANDIDATE_FLOOR, _quantile(null, 1.0 - rate))  # a hit is >= floor
        if new_cut >= cut:
            break
        cut = new_cut
    return cut


def _words(text: str) -> int:
    return len(text.split())


@dataclass(frozen=True)
class Calibration:
    """How the embedding check's cuts were set from this data (written into report.json).

    Score of a (training text, item) pair: the cosine, plus for code items the Jaccards of the
    code shape and of the literal skeleton (`code_shape`).
    Null distribution: a text rephrases at most one item, so every training text's 2nd-best item
    is unrelated to it, unless the reference holds near-copies of its best item (HumanEval's two
    `correct_bracketing` tasks, `filter_by_prefix` / `filter_by_substring`): items that score
    the cut against each other are siblings, one item for the null (`sibling_pairs` of them,
    found by fixed point: `_sibling_cut`), and the 2nd-best is the best non-sibling.
    The 2nd-best scores are a sample of "best score of an unrelated item", twice the
    2nd-minus-3rd spacing one of "margin of an unrelated best" (MARGIN_SPACING), the
    2nd-best item's term share (`_TermOverlap`) one of "terms an unrelated item shares", and the
    share of 2nd-best items whose answer the text carries is the answer signal's own false-flag
    rate. Each cut is its sample's (1 - rate) quantile, and the answer signal is used only when
    its null rate is at most `rate`, so a training text that copies nothing is flagged by each
    signal with probability about `rate` (at most 4 x rate by any).
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
    answer_null_rate: float = 0.0
    code_items: int = 0
    words_cut: float = 1.0
    sibling_pairs: int = 0
    siblings: tuple[tuple[str, str, float], ...] = ()  # the strongest SIBLINGS_SHOWN, as ids
    question_answer_cut: float = 1.0
    question_answer_items: int = 0

    @property
    def answer_signal(self) -> bool:
        return self.answer_null_rate <= self.rate

    def to_dict(self) -> dict[str, object]:
        return {
            "reference": self.reference,
            "false_flag_rate": self.rate,
            "null_pairs": self.null_size,
            "score": (
                "cosine + code-shape and literal-skeleton Jaccards (code items)"
                if self.code_items
                else "cosine"
            ),
            "cosine_cut": round(self.cosine_cut, 6),
            "margin_cut": round(self.margin_cut, 6),
            "words_cut": round(self.words_cut, 6),
            "question_answer_cut": round(self.question_answer_cut, 6),
            "question_answer_items": self.question_answer_items,
            "answer_null_rate": round(self.answer_null_rate, 6),
            "answer_signal": self.answer_signal,
            "code_items": self.code_items,
            "sibling_pairs": self.sibling_pairs,
            "siblings": [[a, b, round(score, 6)] for a, b, score in self.siblings],
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
    """The `q` quantile (an observed value); 1.0 without values (then only a copy scores that)."""
    import numpy as np

    if not values:
        return 1.0
    return float(np.quantile(np.asarray(values, dtype=np.float64), q, method="higher"))


_TERM = re.compile(r"[a-z]+|\d+(?:\.\d+)?")
_STOP = frozenset(
    [
        "the",
        "and",
        "for",
        "are",
        "was",
        "were",
        "with",
        "that",
        "this",
        "from",
        "which",
        "what",
        "who",
        "whom",
        "how",
        "why",
        "when",
        "where",
        "does",
        "did",
        "not",
        "can",
        "its",
        "their",
        "they",
        "them",
        "his",
        "her",
        "she",
        "you",
        "your",
        "our",
        "has",
        "have",
        "had",
        "been",
        "being",
        "into",
        "than",
        "then",
        "there",
        "these",
        "those",
        "such",
        "each",
        "any",
        "all",
        "some",
        "most",
        "more",
        "other",
    ]
)


def _terms(text: str) -> set[str]:
    """Content terms: lowercased words of 3+ letters cut to 6 (a crude stem: "sociologists" and
    "sociology" share "sociol"), and numbers, without function words."""
    return {
        t[:6]
        for t in _TERM.findall(text.lower())
        if t not in _STOP and (len(t) >= 3 or t[0].isdigit())
    }


class _TermOverlap:
    """The words signal: the share of an item's distinctive terms (weighted by their inverse
    document frequency over the reference, so names and numbers count and words every item
    uses do not) that a training text carries. A rephrasing keeps an item's names, numbers and
    rare words while rewording the rest."""

    def __init__(self, tasks: Sequence[str], answers: Sequence[str]) -> None:
        import math

        self.items = [_terms(f"{t} {a}") for t, a in zip(tasks, answers, strict=True)]
        df: dict[str, int] = {}
        for terms in self.items:
            for t in terms:
                df[t] = df.get(t, 0) + 1
        n = len(self.items)
        self.idf = {t: math.log(n / c) for t, c in df.items()}

    def share(self, item: int, text_terms: set[str]) -> float:
        terms = self.items[item]
        total = sum(self.idf[t] for t in terms)
        if total <= 0:
            return 0.0
        return sum(self.idf[t] for t in terms if t in text_terms) / total


@dataclass(frozen=True)
class _Candidate:
    score: float  # cosine (+ code-shape Jaccard for a code item)
    cosine: float
    item: int  # position in the reference's non-empty items
    fits: bool  # the item's kind allows the match: program shape, quantities (see the gates)


ANSWER_WORDS = 30
"""The question + answer signal covers items whose answer is one line of at most this many
words with 3 or more distinct content words (a multiple-choice answer's text, as
`answer_evidence`'s choice words): a rephrasing carries such an answer along with the question,
while "all of the above" says nothing without the choices. Worked solutions (GSM8K: lines of steps, then
`#### n`) and programs are not: with them two different problems' records look alike (11 more
GSM8K train rows flagged on the held-out set with every answer, 1 more with answers of at most
30 words)."""


@dataclass(frozen=True)
class _QuestionAnswer:
    """The question + answer signal's verdict per training row: its nearest item by the
    embedding of the item's question and answer together, and that signal's calibrated cut."""

    best: dict[int, tuple[int, float]]  # training row (position in ti) -> (item, cosine)
    cut: float
    items: int


def _question_answer(
    t_whole: list[str],
    qa_texts: dict[int, str],
    cfg: SemanticConfig,
    encoder: Encoder,
    progress: bool,
    rate: float,
) -> _QuestionAnswer:
    """A rephrasing may carry an item's question and its answer together ("Smart's work
    implied that: criminal activities by women often mirrored conventional gender roles"), as
    a training record carries both in its prompt and response. Such a text is far from the bare
    question (cosine 0.37-0.42 for two of them) and close to question + answer (0.87-0.92).
    Each whole training record (`embedding_text` of the full view) is compared with each item's
    question + answer; the nearest item is a hit past this signal's own cut, the (1 - rate)
    quantile of every row's best non-sibling runner-up (`_sibling_cut`), like the score's."""
    from dedup_audit.detect.faiss_index import knn_cross

    items = sorted(qa_texts)
    if not items or not t_whole:
        return _QuestionAnswer({}, 1.0, 0)
    t_emb = encoder.encode(t_whole, batch_size=cfg.batch_size, progress=progress)
    q_emb = encoder.encode(
        [qa_texts[b] for b in items], batch_size=cfg.batch_size, progress=progress
    )
    ranked: dict[int, list[tuple[float, int]]] = {}
    for a, q, cos in knn_cross(t_emb, q_emb, min(CANDIDATES, len(items)), -1.0):
        ranked.setdefault(a, []).append((-min(1.0, cos), q))
    order = sorted(ranked)
    for a in order:
        ranked[a].sort()
    item_score = _PairScores(lambda q1, q2: min(1.0, float(q_emb[q1] @ q_emb[q2])))

    cut = _sibling_cut(
        [[-c for c, _ in ranked[a][1:]] for a in order],
        [[item_score(ranked[a][0][1], q) for _, q in ranked[a][1:]] for a in order],
        rate,
    )
    best = {a: (items[ranked[a][0][1]], -ranked[a][0][0]) for a in order}
    return _QuestionAnswer(best, cut, len(items))


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
    ref_ids: list[str] | None = None,
    train_whole: list[str] | None = None,
) -> tuple[list[tuple[int, int, float]], Calibration | None]:
    """Two-stage embedding check. Stage 1: each training text's CANDIDATES nearest reference
    items (recall-oriented). Stage 2: the candidates are ranked by their score (cosine, plus the
    code-shape and literal-skeleton Jaccards for code items, which only texts of a similar
    program shape may match; an item that states 3+ numbers only texts that keep half of them,
    KEPT_QUANTITIES); the best is a hit when its cosine reaches CANDIDATE_FLOOR and its score
    passes the calibrated cut, or its margin over the best non-sibling runner-up passes the
    calibrated margin cut (a rephrasing is far
    closer to its own original than to the next item), or the training text carries enough of
    the item's distinctive terms (names, numbers, rare words: `_TermOverlap`) or the item's
    numbers or answer (`answer_evidence`, while that signal's null rate is at most `rate`); all
    but the first only for a training text of comparable size (SIZE_RATIO). A row none of these
    flag may still be a hit of the question + answer signal (`_question_answer`, against the
    whole records `train_whole`). See `Calibration`."""
    from dedup_audit.detect.code_shape import code_shape, literal_skeleton, shape_similarity
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
    r_shape = [code_shape(ref_answers[j]) for j in ri]
    r_skel = [
        literal_skeleton(ref_answers[j]) if r_shape[j] else frozenset() for j in range(len(ri))
    ]
    code_items = sum(1 for s in r_shape if s)
    t_code: dict[int, tuple[frozenset[bytes], frozenset[bytes]]] = {}
    r_nums = [_numbers(ref_raw[j]) for j in ri]
    t_nums: dict[int, set[str]] = {}
    k = min(max(cfg.k, CANDIDATES), len(ri))
    ranked: dict[int, list[_Candidate]] = {}
    for a, b, cos in knn_cross(t_emb, r_emb, k, -1.0):
        cos = min(1.0, cos)
        score, fits = cos, True
        if r_shape[b]:
            if a not in t_code:
                text = train_raw[ti[a]]
                t_code[a] = (code_shape(text), literal_skeleton(text))
            sim = shape_similarity(t_code[a][0], r_shape[b])
            score = cos + sim + shape_similarity(t_code[a][1], r_skel[b])
            fits = sim >= SHAPE_GATE
        elif len(r_nums[b]) >= 3:
            if a not in t_nums:
                t_nums[a] = _numbers(train_raw[ti[a]])
            fits = len(r_nums[b] & t_nums[a]) >= KEPT_QUANTITIES * len(r_nums[b])
        ranked.setdefault(a, []).append(_Candidate(score, cos, b, fits))
    overlap = _TermOverlap([ref_raw[j] for j in ri], [ref_answers[j] for j in ri])
    t_terms: dict[int, set[str]] = {}

    def terms_of(a: int) -> set[str]:
        if a not in t_terms:
            t_terms[a] = _terms(train_raw[ti[a]])
        return t_terms[a]

    whole = train_whole if train_whole is not None else train_raw
    qa = _question_answer(
        [whole[i] for i in ti],
        {
            b: f"{ref_raw[j]}\n{ref_answers[j]}"
            for b, j in enumerate(ri)
            if not r_shape[b]
            and _words(ref_answers[j]) <= ANSWER_WORDS
            and len(set(_CONTENT.findall(ref_answers[j].lower()))) >= 3
            and "\n" not in ref_answers[j].strip()
            and ref_answers[j] != ref_raw[j]
        },
        cfg,
        encoder,
        progress,
        rate,
    )

    def pair_score(b1: int, b2: int) -> float:
        """Two reference items' score, as a training text's against an item."""
        score = min(1.0, float(r_emb[b1] @ r_emb[b2]))
        if r_shape[b1] and r_shape[b2]:
            score += shape_similarity(r_shape[b1], r_shape[b2])
            score += shape_similarity(r_skel[b1], r_skel[b2])
        return score

    item_score = _PairScores(pair_score)

    for lst in ranked.values():
        lst.sort(key=lambda c: (-c.score, c.item))
    order = sorted(ranked)
    cut = _sibling_cut(
        [[c.score for c in ranked[a][1:]] for a in order],
        [[item_score(ranked[a][0].item, c.item) for c in ranked[a][1:]] for a in order],
        rate,
    )

    # At the floor the cut is not set by the null (every candidate passes it), and "scores the
    # floor" is no sign of a near-copy: siblings exist only above it.
    sibling_cut = cut if cut > CANDIDATE_FLOOR else float("inf")

    def runners_up(lst: list[_Candidate]) -> list[_Candidate]:
        """The candidates after the best that are not its siblings (items that score the cut
        or more against it): a text that copies an item is as close to the item's near-copies
        in the reference, which are one item for the null and the margin."""
        return [c for c in lst[1:] if item_score(lst[0].item, c.item) < sibling_cut]

    null_top: list[float] = []
    null_margin: list[float] = []
    null_words: list[float] = []
    answer_null = 0
    for a in order:
        rest = runners_up(ranked[a])
        if len(rest) > 1:
            second = rest[0]
            null_top.append(second.score)
            if second.fits:
                null_margin.append(MARGIN_SPACING * (second.score - rest[1].score))
                null_words.append(overlap.share(second.item, terms_of(a)))
                j2, i = ri[second.item], ti[a]
                answer_null += answer_evidence(ref_raw[j2], ref_answers[j2], train_full[i])
    sibling_list = item_score.at_least(sibling_cut)
    ids = ref_ids if ref_ids is not None else [str(j) for j in range(len(ref_raw))]
    shown = tuple((ids[ri[a]], ids[ri[b]], score) for score, a, b in sibling_list[:SIBLINGS_SHOWN])
    margin_cut = _quantile(null_margin, 1.0 - rate)
    words_cut = _quantile(null_words, 1.0 - rate)
    answer_rate = answer_null / len(null_top) if null_top else 1.0
    out: list[tuple[int, int, float]] = []
    by_signal: dict[str, int] = {}
    candidates = 0

    def qa_hit(a: int) -> bool:
        """The question + answer signal for row `a`, under the same gates (floor, the item's
        kind, comparable size)."""
        if a not in qa.best:
            return False
        b, cos = qa.best[a]
        j, i = ri[b], ti[a]
        if cos < max(CANDIDATE_FLOOR, qa.cut):
            return False
        if len(r_nums[b]) >= 3:
            kept = len(r_nums[b] & _numbers(whole[i]))
            if kept < KEPT_QUANTITIES * len(r_nums[b]):
                return False
        return _words(whole[i]) * SIZE_RATIO >= _words(ref_raw[j]) + _words(ref_answers[j])

    def signal_of(a: int, best: _Candidate) -> str | None:
        """Which of the best candidate's signals flags row `a` (None: none of them)."""
        i, j = ti[a], ri[best.item]
        rest = runners_up(ranked[a])
        runner_up = rest[0].score if rest else -1.0
        sized = _words(train_raw[i]) * SIZE_RATIO >= _words(ref_raw[j])
        if best.score >= cut:
            return "cosine"
        if sized and best.score - runner_up >= margin_cut:
            return "margin"
        if sized and overlap.share(best.item, terms_of(a)) >= words_cut:
            return "words"
        if (
            sized
            and answer_rate <= rate
            and answer_evidence(ref_raw[j], ref_answers[j], train_full[i])
        ):
            return "answer"
        return None

    for a in order:
        best = ranked[a][0]
        signal = None
        if best.cosine >= CANDIDATE_FLOOR and best.fits:
            candidates += 1
            signal = signal_of(a, best)
        if signal is not None:
            out.append((ti[a], ri[best.item], best.cosine))
        elif qa_hit(a):
            signal = "question+answer"
            out.append((ti[a], ri[qa.best[a][0]], qa.best[a][1]))
        else:
            continue
        by_signal[signal] = by_signal.get(signal, 0) + 1
    calib = Calibration(
        name,
        rate,
        len(null_top),
        cut,
        margin_cut,
        CANDIDATE_FLOOR,
        candidates,
        len(out),
        by_signal,
        answer_rate,
        code_items,
        words_cut,
        len(sibling_list),
        shown,
        qa.cut,
        qa.items,
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
        from dedup_audit.detect.embed import embedding_text

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
            ref_ids=[r.id for r in reference.records],
            train_whole=[embedding_text(r.sample, "full") for r in train.records],
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
