"""Answer-aware semantic decisions on real GSM8K rows: natural "inverse" problems (same story,
another unknown, another answer) are reported as `different_answer` and never removed, planted
copies at three edit levels are removed, and a removal is always directly similar to its kept
twin. Logic tests use the bag-of-words FakeEncoder; one test runs the packaged model."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from dedup_audit.answers import final_answer, task_numbers
from dedup_audit.clusters import DIFFERENT_ANSWER, UNCONFIRMED, split_semantic
from dedup_audit.config import ScanConfig, SemanticConfig
from dedup_audit.detect.embed import embedding_text
from dedup_audit.pipeline import scan
from dedup_audit.readers import load_dataset
from dedup_audit.records import Pair
from tests.semantic_support import DATA, FakeEncoder, real_cfg

VIEWS_ALL = ("full", "prompt", "response")

INVERSE = DATA / "gsm8k_inverse.json"
LABELS = json.loads((DATA / "gsm8k_inverse.labels.json").read_text(encoding="utf-8"))


def test_final_answers_of_real_responses() -> None:
    rows = json.loads(INVERSE.read_text(encoding="utf-8"))
    a, b = LABELS["inverse_pairs"][0]  # Pam: 1200 apples -> 10 bags; 10 bags -> 1200 apples
    assert final_answer(rows[a]["output"]) == "10"
    assert final_answer(rows[b]["output"]) == "1200"
    gsm8k_test = (DATA / "gsm8k_test_60.jsonl").read_text(encoding="utf-8").splitlines()
    assert final_answer(json.loads(gsm8k_test[0])["answer"]) == "18"  # "#### 18"
    assert final_answer("Answer: C") == "choice:C"
    assert final_answer("The answer is (B).") == "choice:B"
    assert final_answer("It costs $1,200.00 in total.") == "1200"
    assert final_answer("def add(a, b):\n    return a + b\n") == "def:add"
    assert final_answer("I am an AI assistant.") is None
    assert task_numbers("Pay $1,200 for 3 items, 3 times.") == ("1200", "3", "3")


def test_split_keeps_lexical_evidence_and_separates_answers() -> None:
    pairs = [
        Pair(0, 1, 0.97, "embedding", "full"),  # answers differ
        Pair(0, 2, 0.95, "embedding", "full"),  # same answer, same quantities
        Pair(1, 3, 0.93, "embedding", "full"),  # no answers, views not both linked
        Pair(2, 4, 0.92, "embedding", "full"),  # same answer, other quantities
        Pair(0, 1, 0.85, "minhash", "full"),  # lexical: passes through
    ]
    answers = ["10", "1200", "10", None, "10"]
    numbers = [("3", "40"), ("10", "3", "40"), ("3", "40"), (), ("4", "40")]
    keep, diff, unconf = split_semantic(
        "full", pairs, answers=answers, numbers=numbers, linked=lambda a, b: False
    )
    assert [(p.a, p.b, p.method) for p in keep] == [(0, 2, "embedding"), (0, 1, "minhash")]
    assert [(p.a, p.b) for p in diff] == [(0, 1)]
    assert [(p.a, p.b) for p in unconf] == [(1, 3), (2, 4)]
    # the response view is never split: there, differing prompts make a cluster "canned"
    assert (
        split_semantic("response", pairs, answers=answers, numbers=numbers, linked=None)[0] == pairs
    )


def _fake_scan(threshold: float, cluster: str = "auto") -> tuple[object, list[dict[str, str]]]:
    rows = json.loads(INVERSE.read_text(encoding="utf-8"))
    cfg = ScanConfig(
        exact=False,
        near=False,
        semantic=SemanticConfig(enabled=True, threshold=threshold, k=10),
        cluster=cluster,
    )
    return scan(load_dataset(INVERSE), cfg, encoder=FakeEncoder()), rows


def test_inverse_problems_are_reported_never_removed() -> None:
    result, _ = _fake_scan(0.8)
    removed = {d.index for d in result.removed}  # type: ignore[attr-defined]
    inverse = {m for pair in LABELS["inverse_pairs"] for m in pair}
    siblings = {m for pair in LABELS["sibling_pairs"] for m in pair}
    assert not removed & (inverse | siblings)
    kinds = {c.kind for c in result.clusters if c.view == "full"}  # type: ignore[attr-defined]
    assert DIFFERENT_ANSWER in kinds
    diff_members = {
        m
        for c in result.clusters  # type: ignore[attr-defined]
        if c.view == "full" and c.kind == DIFFERENT_ANSWER
        for m in c.members
    }
    assert len(diff_members & inverse) >= 8  # most inverse pairs are linked at 0.8 and explained
    a, b = LABELS["sibling_pairs"][0]  # equal answers (2), other quantities: not one task
    assert not {a, b} & removed


def test_planted_copies_removed_next_to_their_twin() -> None:
    result, _ = _fake_scan(0.8)
    by_index = {d.index: d for d in result.decisions}  # type: ignore[attr-defined]
    for src, copy, level in LABELS["planted"]:
        if level == "heavy":
            continue  # bag-of-words cannot see through synonyms; the real-model test covers it
        d = by_index[copy]
        assert not d.keep and d.kept_twin == src and d.via is None, (copy, level)
        assert by_index[src].keep


def test_chain_through_an_inverse_problem_never_removes_both_copies() -> None:
    """The copy of Pam's "how many apples" problem is linked to it and (through it) to the
    "how many bags" problem. Components over all links once removed both members of a planted
    pair; now the answer check cuts the inverse link and star keeps every removal direct."""
    for cluster in ("auto", "components", "star"):
        result, _ = _fake_scan(0.8, cluster)
        by_index = {d.index: d for d in result.decisions}  # type: ignore[attr-defined]
        src, copy, _ = LABELS["planted"][0]
        assert by_index[src].keep and not by_index[copy].keep
        assert by_index[copy].kept_twin == src
        bags, apples = LABELS["inverse_pairs"][0]
        assert apples == src and by_index[bags].keep


def test_full_view_embeds_without_role_markers() -> None:
    class Recording(FakeEncoder):
        def __init__(self) -> None:
            super().__init__()
            self.seen: list[str] = []

        def encode(
            self, texts: Sequence[str], *, batch_size: int, progress: bool
        ) -> npt.NDArray[np.float32]:
            self.seen.extend(texts)
            return super().encode(texts, batch_size=batch_size, progress=progress)

    enc = Recording()
    ds = load_dataset(INVERSE)
    cfg = ScanConfig(
        views=("full",), exact=False, near=False, semantic=SemanticConfig(enabled=True)
    )
    scan(ds, cfg, encoder=enc)
    assert enc.seen and not any("<user>" in t or "<assistant>" in t for t in enc.seen)
    rec = ds.records[0].sample
    assert embedding_text(rec, "full") == rec.turns[0].text + "\n" + rec.turns[1].text


@pytest.mark.slow
def test_real_model_zero_false_removals_and_planted_copies_found(model_cache: Path) -> None:
    cfg = ScanConfig(semantic=real_cfg(model_cache))
    result = scan(load_dataset(INVERSE), cfg)
    removed = {d.index for d in result.removed}
    planted = {copy for _, copy, _ in LABELS["planted"]}
    assert removed == planted  # every planted copy, nothing else
    for d in result.removed:
        assert d.kept_twin is not None and d.via is None
        assert [d.kept_twin, d.index] in [[s, c] for s, c, _ in LABELS["planted"]]
    kinds = {c.kind for c in result.clusters if c.view == "full"}
    assert DIFFERENT_ANSWER in kinds
    unconfirmed = {m for c in result.clusters if c.kind == UNCONFIRMED for m in c.members}
    assert not unconfirmed & removed - planted  # reported, never the reason for a removal
    assert {d.kind for d in result.removed} <= {"semantic", "exact", "near"}


def test_rethreshold_down_to_the_reported_semantic_floor(tmp_path: Path) -> None:
    """report.json says embedding pairs are kept down to threshold - 0.1; lowering a saved 0.9
    scan to 0.8 gives the same decisions as scanning at 0.8 (the floor was once 0.05)."""
    from dedup_audit.reports.scan.saved import load, save

    at_09, _ = _fake_scan(0.9)
    report = save(at_09, tmp_path)  # type: ignore[arg-type]
    assert report["scored_pairs_floor"]["embedding"] == 0.8
    saved = load(tmp_path / "report.json", INVERSE)
    lowered = saved.rethreshold(semantic=0.8)
    fresh, _ = _fake_scan(0.8)
    assert [d.keep for d in lowered.decisions] == [d.keep for d in fresh.decisions]  # type: ignore[attr-defined]
    assert sum(not d.keep for d in lowered.decisions) > sum(not d.keep for d in saved.decisions)


def test_report_counts_different_answer_links_apart_from_redundancy() -> None:
    from dedup_audit.reports.scan.report_json import build_report

    result, _ = _fake_scan(0.8)
    full = build_report(result)["summary"]["views"]["full"]  # type: ignore[arg-type]
    clusters = [c for c in result.clusters if c.view == "full"]  # type: ignore[attr-defined]
    assert full["clusters_by_kind"][DIFFERENT_ANSWER] >= 1
    assert full["redundant_records"] == sum(c.size - 1 for c in clusters if c.kind == "semantic")


@pytest.mark.slow
def test_int8_graph_is_built_only_when_the_int8_backend_runs(model_cache: Path) -> None:
    from dedup_audit.encoders import get_encoder

    rows = json.loads(INVERSE.read_text(encoding="utf-8"))[:4]
    texts = [r["instruction"] for r in rows]
    fp32 = get_encoder(real_cfg(model_cache, backend="onnx")).encode(
        texts, batch_size=8, progress=False
    )
    graphs = sorted(p.name for p in (model_cache / "models").rglob("*.onnx"))
    assert "model.onnx" in graphs and "model.int8.onnx" not in graphs
    int8 = get_encoder(real_cfg(model_cache, backend="onnx-int8")).encode(
        texts, batch_size=8, progress=False
    )
    assert any(p.name == "model.int8.onnx" for p in (model_cache / "models").rglob("*.onnx"))
    assert float(np.min(np.sum(fp32 * int8, axis=1))) > 0.9


def _removals(result: object) -> set[tuple[int, int | None]]:
    return {(d.index, d.kept_twin) for d in result.removed}  # type: ignore[attr-defined]


@pytest.mark.parametrize("data", ["self_cognition.json", "gsm8k_inverse.json"])
def test_only_the_dedup_view_is_searched_and_decisions_do_not_change(data: str) -> None:
    """Speed lever: the prompt and response views are embedded only for the dedup view's links
    they must confirm (answers unknown), not searched over every record; the removals are the
    same as searching every view (self_cognition: templated identity answers, no answer to
    read, so links need the confirmation; GSM8K: answers known)."""
    path = DATA / data
    searched_all = FakeEncoder()
    every = ScanConfig(semantic=SemanticConfig(enabled=True, search_views=VIEWS_ALL))
    full = scan(load_dataset(path), every, encoder=searched_all)
    default_enc = FakeEncoder()
    default = scan(
        load_dataset(path), ScanConfig(semantic=SemanticConfig(enabled=True)), encoder=default_enc
    )
    assert _removals(default) == _removals(full)
    assert default_enc.texts_seen < searched_all.texts_seen
    n = len(default.dataset.records)
    assert searched_all.texts_seen >= 3 * n - 3  # full, prompt, response of every record
    links = default.views["full"].semantic
    full_links = set(zip(links.a.tolist(), links.b.tolist(), strict=True))
    for view in ("prompt", "response"):
        got = default.views[view].semantic
        assert set(zip(got.a.tolist(), got.b.tolist(), strict=True)) <= full_links
    if data == "self_cognition.json":
        assert len(default.views["response"].semantic) > 0  # links were checked there
    else:
        assert default_enc.texts_seen <= n + 2  # answers known: only the full view embedded
