"""find_near_fast must make the reference detector's decisions, only faster.

Real data: 300 gpteacher toolformer rows (long shared tool prompts: many LSH candidates, a few
natural near duplicates) and the oasst_zh subset (Chinese: char shingles). Near duplicates are
injected by editing a few words/characters of real rows, so borderline Jaccard values occur.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

from dedup_audit.config import MinHashConfig, NormalizeConfig
from dedup_audit.detect.minhash import NearResult, find_near
from dedup_audit.detect.minhash_fast import find_near_fast, resolve_backend
from dedup_audit.errors import ConfigError, MissingDependencyError
from dedup_audit.readers import load_dataset
from dedup_audit.views import build_views, jaccard, shingle_mode, shingles

DATA = Path(__file__).resolve().parent / "data"
CFG = MinHashConfig()


def full_texts(name: str) -> list[str]:
    """Normalised `full` view, built exactly as the pipeline builds it."""
    return build_views(load_dataset(DATA / name).records, "full", NormalizeConfig())[1]


def with_edits(texts: list[str], count: int, *, chars: bool, seed: int = 7) -> list[str]:
    """texts + `count` copies of real texts with 1-3 small edits (words, or CJK characters)."""
    rng = random.Random(seed)
    out = list(texts)
    for text in rng.sample(texts, count):
        units = list(text) if chars else text.split(" ")
        for _ in range(rng.randint(1, 3)):
            k = rng.randrange(len(units))
            units[k] = rng.choice("的是了在有" if chars else ["the", "value", "answer"])
        out.append(("" if chars else " ").join(units))
    return out


def edges(result: NearResult) -> set[tuple[int, int]]:
    return {(p.a, p.b) for p in result.edges(CFG.threshold)}


@pytest.fixture(scope="module")
def toolformer() -> list[str]:
    return with_edits(full_texts("minhash_gpteacher_300.json"), 40, chars=False)


@pytest.fixture(scope="module")
def reference(toolformer: list[str]) -> NearResult:
    return find_near(toolformer, "full", CFG)


def test_datasketch_backend_is_the_reference_pair_for_pair(
    toolformer: list[str], reference: NearResult
) -> None:
    fast = find_near_fast(toolformer, "full", CFG, backend="datasketch")
    assert reference.candidates > 500  # shared tool prompts: a real verification load
    assert len(edges(reference)) >= 40  # natural + injected near duplicates
    assert (fast.shingle, fast.bands, fast.rows) == (
        reference.shingle,
        reference.bands,
        reference.rows,
    )
    assert fast.candidates == reference.candidates
    assert fast.pairs == reference.pairs  # same order, exact scores and MinHash estimates


def test_rensa_backend_makes_the_same_verified_decisions(
    toolformer: list[str], reference: NearResult
) -> None:
    fast = find_near_fast(toolformer, "full", CFG, backend="rensa")
    mode = shingle_mode(toolformer, CFG)
    for p in fast.pairs:  # every candidate verified: the score is the exact Jaccard
        assert p.a < p.b
        assert p.score == jaccard(
            shingles(toolformer[p.a], mode, CFG), shingles(toolformer[p.b], mode, CFG)
        )
    # A different hash family proposes different candidates, but at these Jaccards both
    # backends catch every pair (LSH tuned for >= 0.98 recall at the threshold).
    assert edges(fast) == edges(reference)


def test_same_seed_same_output_and_sorted(toolformer: list[str]) -> None:
    for backend in ("datasketch", "rensa"):
        first = find_near_fast(toolformer, "full", CFG, backend=backend)
        again = find_near_fast(list(toolformer), "full", CFG, backend=backend)
        assert first.pairs == again.pairs
        keys = [(p.a, p.b) for p in first.pairs]
        assert keys == sorted(set(keys))


def test_cjk_text_uses_char_shingles_and_finds_edited_copies() -> None:
    base = full_texts("oasst_zh_subset.json")
    texts = with_edits(list(dict.fromkeys(base)), 15, chars=True)
    reference = find_near(texts, "full", CFG)
    for backend in ("datasketch", "rensa"):
        fast = find_near_fast(texts, "full", CFG, backend=backend)
        assert fast.shingle == reference.shingle == "char"
        assert edges(fast) == edges(reference)
    assert find_near_fast(texts, "full", CFG, backend="datasketch").pairs == reference.pairs
    # the edited copies (appended after the originals) are found as near duplicates
    copies = {b for _, b in edges(reference) if b >= len(set(base))}
    assert len(copies) >= 12


def test_exact_repeats_and_empty_texts_are_collapsed(toolformer: list[str]) -> None:
    texts = ["", toolformer[0], toolformer[0], toolformer[1], ""]
    for backend in ("datasketch", "rensa"):
        result = find_near_fast(texts, "full", CFG, backend=backend)
        assert result.pairs == find_near(texts, "full", CFG).pairs
    assert find_near_fast(["", "only one"], "full", CFG).pairs == []


def test_backend_choice_and_missing_rensa(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_backend("auto") == "datasketch"  # results never depend on what is installed
    with pytest.raises(ConfigError, match="auto, datasketch, rensa"):
        resolve_backend("faiss")
    monkeypatch.setitem(sys.modules, "rensa", None)  # import rensa -> ImportError
    with pytest.raises(MissingDependencyError, match="pip install rensa"):
        find_near_fast(["a b c d", "a b c e"], "full", CFG, backend="rensa")
    assert resolve_backend("auto") == "datasketch"


def test_dense_templated_bucket_is_sampled_not_enumerated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Templated prompts (one long tool description + a short question) fill an LSH bucket with
    hundreds of rows; it is linked star + chain instead of pair by pair, with fewer candidates
    and the same clusters as enumerating every pair of the same buckets."""
    import json
    from pathlib import Path

    import dedup_audit.detect.minhash_fast as fast
    from dedup_audit.clusters import components
    from dedup_audit.config import MinHashConfig, NormalizeConfig
    from dedup_audit.records import Pair
    from dedup_audit.views import normalize

    root = Path(__file__).resolve().parent.parent
    template = json.loads(
        (root / "tests" / "data" / "minhash_gpteacher_300.json").read_text(encoding="utf-8")
    )[0]["instruction"]
    questions = [
        r["instruction"]
        for r in json.loads(
            (root / "sample_data" / "alpaca_en_demo.json").read_text(encoding="utf-8")
        )
        if len(r["instruction"].split()) <= 8
    ][:400]
    texts = [normalize(f"{template}\n{q}", NormalizeConfig()) for q in questions]
    cfg = MinHashConfig()
    sampled = fast.find_near_fast(texts, "prompt", cfg)
    monkeypatch.setattr(fast, "DENSE_BUCKET", 10**9)
    enumerated = fast.find_near_fast(texts, "prompt", cfg)
    assert sampled.dense_buckets > 0 and enumerated.dense_buckets == 0
    assert sampled.candidates < enumerated.candidates

    def clusters(pairs: list[Pair]) -> set[frozenset[int]]:
        comps = components(len(texts), pairs)
        return {frozenset(m for p in ps for m in (p.a, p.b)) for ps in comps.values()}

    assert clusters(sampled.edges(cfg.threshold)) == clusters(enumerated.edges(cfg.threshold))
    assert max(len(c) for c in clusters(sampled.edges(cfg.threshold))) > 300
