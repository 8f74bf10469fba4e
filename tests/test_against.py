"""Contamination of a GSM8K training subset by GSM8K test questions, per method: verbatim
copies (exact), copies wrapped in extra text (long n-gram), light edits (MinHash) and a
rephrasing (embedding). The reference set loads through the readers with its own fields."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dedup_audit.config import MinHashConfig, NormalizeConfig, SemanticConfig
from dedup_audit.detect.against import Calibration, ContaminationHit, find_against
from dedup_audit.readers import load_dataset
from dedup_audit.records import Dataset, Record, Sample, Turn
from tests.reference import summarize
from tests.semantic_support import DATA, FakeEncoder, real_cfg


def _alpaca(rows: list[dict[str, str]], name: str) -> Dataset:
    records = [
        Record(
            i,
            f"{name}:{i}",
            r,
            Sample((Turn("user", r["instruction"]), Turn("assistant", r["output"]))),
        )
        for i, r in enumerate(rows)
    ]
    return Dataset(records, "alpaca", "json", (name,), name=name)


def _contaminated_train() -> tuple[Dataset, Dataset, dict[str, int]]:
    """300 real train rows plus injected test questions; returns (train, test, injected index)."""
    test = load_dataset(
        DATA / "gsm8k_test_60.jsonl", columns={"prompt": "question", "response": "answer"}
    )
    q = [r.sample.turns[0].text for r in test.records]
    rows = json.loads((DATA / "gsm8k_train_300.json").read_text(encoding="utf-8"))
    injected = {
        "exact": q[0],
        "ngram": "Answer the following question and show your work. "
        + q[4]
        + " Think about how many chickens there are first, then divide the feed.",
        "minhash": q[5].replace("buy 16 glasses", "buy 18 glasses"),
        "embedding": "A house flipper pays $80,000 for a home and spends $50,000 fixing it up, "
        "which raises its value by 150%. What was his profit?",  # test q[2], rephrased
    }
    index = {}
    for method, text in injected.items():
        index[method] = len(rows)
        rows.append({"instruction": text, "input": "", "output": "(solution)"})
    return _alpaca(rows, "train"), test, index


def test_each_method_finds_its_kind_of_overlap() -> None:
    train, test, at = _contaminated_train()
    hits = find_against(
        train,
        test,
        name="gsm8k",
        normalize=NormalizeConfig(),
        minhash=MinHashConfig(),
        semantic=None,
        ngram_overlap=13,
    )
    found = {(h.train_index, h.reference_index, h.method) for h in hits}
    assert (at["exact"], 0, "exact") in found
    assert (at["ngram"], 4, "ngram") in found and (at["ngram"], 4, "exact") not in found
    assert (at["minhash"], 5, "minhash") in found and (at["minhash"], 5, "exact") not in found
    assert not any(h.train_index == at["embedding"] for h in hits)  # n-gram methods miss rephrasing
    # the 300 real training rows do not contain these 60 test questions
    assert {h.train_index for h in hits} <= set(at.values())
    assert hits == sorted(hits, key=lambda h: (h.train_index, h.reference_index, h.view))
    assert all(isinstance(h, ContaminationHit) and h.reference == "gsm8k" for h in hits)
    ngram_hit = next(h for h in hits if h.method == "ngram" and h.train_index == at["ngram"])
    assert ngram_hit.score == 1.0  # every 13-gram of the test question is in the wrapped copy


def test_fake_encoder_embedding_method_and_method_filter() -> None:
    train, test, at = _contaminated_train()
    cfg = SemanticConfig(enabled=True, threshold=0.95, k=3)
    hits = find_against(
        train, test, name="gsm8k", semantic=cfg, encoder=FakeEncoder(), methods=("embedding",)
    )
    assert {h.method for h in hits} == {"embedding"}
    assert (at["exact"], 0) in {(h.train_index, h.reference_index) for h in hits}
    assert summarize(hits)["embedding"] >= 1


@pytest.mark.slow
def test_real_model_catches_the_rephrased_question(model_cache: Path) -> None:
    train, test, at = _contaminated_train()
    calibrations: list[Calibration] = []
    hits = find_against(
        train, test, name="gsm8k", semantic=real_cfg(model_cache), calibrations=calibrations
    )
    per_method = summarize(hits)
    emb = {(h.train_index, h.reference_index) for h in hits if h.method == "embedding"}
    assert (at["embedding"], 2) in emb
    assert (at["exact"], 0) in emb and (at["minhash"], 5) in emb
    assert set(per_method) == {"exact", "ngram", "minhash", "embedding"}
    (cal,) = calibrations
    assert cal.null_size == 304 and cal.flagged == len(emb)
    assert sum(cal.by_signal.values()) == cal.flagged
    assert cal.question_answer_items == 0  # worked solutions are not one-line answers
    # Same-domain distractors (GSM8K train vs GSM8K test) on a small set are the hard case: the
    # cuts come from only 304 null pairs, and 7 of the 300 real train questions are flagged
    # (measured; cosine 0.55-0.75, similar problems, not copies). Guard against it growing.
    assert len({i for i, _ in emb} - set(at.values())) <= 10


# GSM8K train (train_alpaca.json) and test (test.jsonl, line 603): a template sibling, not a
# rephrasing: same story and question, other quantities.
TRAIN_SIBLING = (
    "A train travels 270 miles in 3 hours. At the same rate, how many additional hours would it "
    "take to travel an additional 180 miles?"
)
TEST_ITEM = {
    "question": "A plane travels 1200 miles in 3 hours. At the same rate, how many additional "
    "hours would it take to travel an additional 2000 miles?",
    "answer": "The rate is 1200/3=<<1200/3=400>>400 mph.\nThen it would take "
    "2000/400=<<2000/400=5>>5 hours more.\n#### 5",
}


def test_template_sibling_with_other_quantities_is_not_a_rephrasing() -> None:
    """An item that states 3+ numbers is matched only by a text that keeps half of them: the
    rewrite that keeps the plane's numbers is flagged, the train sibling with its own numbers is
    not, though its words are nearly the same."""
    lines = (DATA / "gsm8k_test_60.jsonl").read_text(encoding="utf-8").splitlines()
    test_rows = [json.loads(x) for x in lines] + [TEST_ITEM]
    test = _alpaca(
        [{"instruction": r["question"], "input": "", "output": r["answer"]} for r in test_rows],
        "test",
    )
    rows = json.loads((DATA / "gsm8k_train_300.json").read_text(encoding="utf-8"))[:120]
    rewrite = (
        "At the same rate, a plane that covers 1200 miles in 3 hours needs how many additional "
        "hours to travel an additional 2000 miles?"
    )
    rows += [
        {"instruction": TRAIN_SIBLING, "input": "", "output": "#### 2"},
        {"instruction": rewrite, "input": "", "output": "#### 5"},
    ]
    train = _alpaca(rows, "train")
    hits = find_against(
        train,
        test,
        name="test",
        semantic=SemanticConfig(enabled=True),
        encoder=FakeEncoder(),
        methods=("embedding",),
    )
    flagged = {(h.train_index, h.reference_index) for h in hits}
    assert (len(rows) - 1, len(test_rows) - 1) in flagged  # the rewrite, to its own item
    assert all(i != len(rows) - 2 for i, _ in flagged)  # never the sibling


def _sibling_case() -> tuple[Dataset, Dataset]:
    """A reference whose items 0 and 1 are near-copies of each other (as HumanEval's two
    `correct_bracketing` tasks are), a training copy of item 0, a rephrasing of item 2 that
    keeps 6 of its 8 words, a copy of item 4 mixed with item 5, and unrelated rows that share
    a word with some item."""
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta"]
    ref_texts = [
        " ".join([*words, "theta"]),
        " ".join([*words, "iota"]),  # item 0's sibling: 7 of 8 words shared
        "kappa lambda mu nu xi omicron pi rho",
        "red orange yellow green blue indigo violet white",
        "oak elm ash birch beech cedar fir pine",
        "salmon trout carp pike perch bass cod eel",
        "lion tiger puma lynx jaguar cheetah leopard ocelot",
        "iron copper zinc tin lead nickel cobalt silver",
    ]
    train_texts = [
        ref_texts[0],
        "kappa lambda mu nu xi omicron sigma tau",
        # 7 of item 4's words and 5 of item 5's: a copy of 4 whose 2nd-best (0.57) is above
        # the floor, so the null, not the floor, sets the cut
        " ".join(ref_texts[4].split()[:7] + ref_texts[5].split()[:5]),
    ]
    fillers = [
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
    ]
    for n, item in enumerate(ref_texts[3:] * 3):
        train_texts.append(" ".join([item.split()[n % 8], *fillers[n % 4 : n % 4 + 7]]))
    reference = _alpaca([{"instruction": t, "output": "n/a"} for t in ref_texts], "ref")
    return _alpaca([{"instruction": t, "output": "n/a"} for t in train_texts], "train"), reference


def test_near_copy_items_in_the_reference_are_one_item_for_the_null() -> None:
    """The copy of item 0 scores 0.875 against item 0's sibling; as a null sample that would
    push the cut above the rephrasing of item 2 (0.75) and the copy of item 4 (0.71). Items
    that score the cut against each other are siblings, so the null skips them: the cut falls
    to the next null sample (0.57) and both are found."""
    train, reference = _sibling_case()
    calibrations: list[Calibration] = []
    hits = find_against(
        train,
        reference,
        name="ref",
        semantic=SemanticConfig(enabled=True),
        encoder=FakeEncoder(),
        methods=("embedding",),
        calibrations=calibrations,
    )
    (cal,) = calibrations
    assert cal.sibling_pairs == 1 and cal.to_dict()["sibling_pairs"] == 1
    assert cal.to_dict()["siblings"] == [["ref:0", "ref:1", 0.875]]  # ids, strongest first
    # 0.57: item 5's score for the mixed row; without siblings 0.875, item 1's for the copy
    assert 0.5 < cal.cosine_cut < 0.6
    assert {(h.train_index, h.reference_index) for h in hits} == {(0, 0), (1, 2), (2, 4)}
