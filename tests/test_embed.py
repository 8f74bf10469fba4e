"""Semantic detector: exact behaviour with a fake encoder, and paraphrase clusters with the real
model on self_cognition.json that MinHash (word 3-grams, 0.8) does not find."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dedup_audit.config import MinHashConfig, NormalizeConfig, SemanticConfig
from dedup_audit.detect.embed import find_semantic
from dedup_audit.detect.faiss_index import choose_kind, knn_cross, knn_self
from dedup_audit.views import normalize
from tests.reference import find_near
from tests.semantic_support import DATA, FakeEncoder, real_cfg


def test_pairs_are_ordered_deduplicated_and_skip_empty_texts() -> None:
    texts = ["the cat sat", "", "the cat sat", "dogs bark loudly", "   ", "the cat sat down"]
    cfg = SemanticConfig(enabled=True, threshold=0.8, k=5)
    pairs = find_semantic(texts, "full", cfg, encoder=FakeEncoder(), floor=0.8)
    assert [(p.a, p.b) for p in pairs] == [(0, 2), (0, 5), (2, 5)]
    assert all(p.method == "embedding" and p.view == "full" for p in pairs)
    assert pairs[0].score == 1.0
    assert pairs[1].score == pytest.approx(3 / np.sqrt(12), abs=1e-6)  # 3 shared of 3 and 4 words
    assert all(1 not in (p.a, p.b) and 4 not in (p.a, p.b) for p in pairs)


def test_default_floor_keeps_borderline_neighbours() -> None:
    texts = ["a b c d", "a b c e", "x y z"]
    cfg = SemanticConfig(enabled=True, threshold=0.78, k=2)
    pairs = find_semantic(texts, "prompt", cfg, encoder=FakeEncoder())
    assert [(p.a, p.b, p.score) for p in pairs] == [
        (0, 1, 0.75)
    ]  # 0.75 >= 0.78 - 0.1 (the floor report.json states)


def test_k_limits_neighbours_and_is_deterministic() -> None:
    texts = [f"same words here {i}" for i in range(6)]
    cfg = SemanticConfig(enabled=True, threshold=0.5, k=1)
    a = find_semantic(texts, "full", cfg, encoder=FakeEncoder())
    b = find_semantic(texts, "full", cfg, encoder=FakeEncoder())
    assert a == b and 0 < len(a) <= 6


def test_flat_and_hnsw_agree_on_small_real_sets() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(size=(300, 32)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    q = base[:20] + 0.01 * rng.normal(size=(20, 32)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    flat = knn_cross(q, base, 3, -1.0, kind="flat")
    hnsw = knn_cross(q, base, 3, -1.0, kind="hnsw")
    assert {(a, b) for a, b, _ in flat} == {(a, b) for a, b, _ in hnsw}
    assert all(b == a for a, b, s in flat if s > 0.99)
    assert choose_kind(10) == "flat" and choose_kind(10**6) == "hnsw"
    assert knn_self(base[:1], 3, 0.0) == []


@pytest.mark.slow
def test_self_cognition_paraphrases_found_by_embeddings_not_minhash(model_cache: Path) -> None:
    rows = json.loads((DATA / "self_cognition.json").read_text(encoding="utf-8"))
    texts = [f"{r['instruction']}\n{r['output']}" for r in rows]
    cfg = real_cfg(model_cache, threshold=0.9)
    semantic = {(p.a, p.b) for p in find_semantic(texts, "full", cfg) if p.score >= 0.9}
    norm = [normalize(t, NormalizeConfig()) for t in texts]
    near = find_near(norm, "full", MinHashConfig(threshold=0.8, ngram=3, shingle="word"))
    minhash = {(p.a, p.b) for p in near.edges(0.8)}
    only_semantic = semantic - minhash
    members = {i for pair in only_semantic for i in pair}
    assert len(only_semantic) >= 20 and len(members) >= 15
    assert len(minhash) < len(semantic) / 5
    # "你是谁？" (who are you) and "你的身份信息能告诉我吗？" (can you tell me your identity)
    assert (4, 30) in only_semantic
    # English: "Who are you?" / "What is your name" share a canned answer
    assert (25, 26) in semantic
