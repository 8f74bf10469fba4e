"""The code shape that verifies rephrased benchmark programs (dedup_audit.detect.code_shape), on
real GPT-4 rephrasings of HumanEval programs (LLM-Decontaminator) whose embedding is nearer to
another HumanEval program than to their own original."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dedup_audit.config import ScanConfig
from dedup_audit.detect.against import SHAPE_GATE
from dedup_audit.detect.code_shape import (
    code_shape,
    literal_skeleton,
    shape_similarity,
    shape_tokens,
    skeleton_tokens,
)
from dedup_audit.pipeline import scan
from dedup_audit.readers import load_dataset
from dedup_audit.readers.reference import load_reference
from dedup_audit.reports.scan.report_json import build_report, terminal_summary
from tests.semantic_support import DATA, real_cfg

BENCH = DATA / "bench"
ORIGINALS = BENCH / "humaneval_confusable_16.jsonl"
REPHRASED = BENCH / "humaneval_confusable_rephrased_16.jsonl"


def _texts(path: Path) -> list[str]:
    return [json.loads(x)["text"] for x in path.read_text(encoding="utf-8").splitlines()]


def test_shape_abstracts_names_and_drops_prose() -> None:
    a = 'def add(x, y):\n    """Add two numbers."""\n    return x + y  # sum\n'
    b = "def plus(first, second):\n    return first + second\n"
    assert shape_tokens(a) == shape_tokens(b)
    assert shape_tokens("def f(s):\n    return s.upper()")[-4:] == [".", "upper", "(", ")"]
    assert shape_similarity(code_shape(a), code_shape(b)) == 1.0
    # no function definition, no shape: a request for code is not code
    assert code_shape("Write a short code to print the first 5 elements of a given list.") == set()


def test_rephrased_programs_share_their_originals_shape() -> None:
    originals = [code_shape(t) for t in _texts(ORIGINALS)]
    rephrased = {i: code_shape(t) for i, t in enumerate(_texts(REPHRASED)) if t}
    assert len(rephrased) == 9
    own_best = 0
    for i, shape in rephrased.items():
        sims = [shape_similarity(shape, o) for o in originals]
        assert sims[i] >= SHAPE_GATE
        own_best += sims[i] == max(sims)
    assert own_best >= 8  # measured: 8 of 9, the 9th ties with another program
    rows = json.loads((DATA / "gsm8k_train_300.json").read_text(encoding="utf-8"))
    assert not any(code_shape(r["instruction"] + "\n" + r["output"]) for r in rows)


# HumanEval/42 and its GPT-4 rephrasing (LLM-Decontaminator), docstrings verbatim: the names,
# the values and the loop all changed; the examples' types, counts and brackets did not.
INCR_LIST = '''def incr_list(l: list):
    """Return list with elements incremented by 1.
    >>> incr_list([1, 2, 3])
    [2, 3, 4]
    >>> incr_list([5, 3, 5, 2, 3, 3, 9, 0, 123])
    [6, 4, 6, 3, 4, 4, 10, 1, 124]
    """
    return [(e + 1) for e in l]
'''
AUGMENT_VALUES = '''def augment_values(elems: list):
    """Returns a list where each element has been increased by one.
    >>> augment_values([4, 7, 9])
    [5, 8, 10]
    >>> augment_values([56, 32, 89, 22, 45, 67, 12, 0, 999])
    [57, 33, 90, 23, 46, 68, 13, 1, 1000]
    """
    i = 0
    while i < len(elems):
        elems[i] += 1
        i += 1
        pass  # meaningless command to bypass n-gram check
    return elems
'''


def test_literal_skeleton_keeps_a_programs_examples() -> None:
    assert skeleton_tokens("f(['a', 3.14, 5]) => True  # x2") == [
        "(", "[", "S", ",", "F", ",", "N", "]", ")", "=>", "True",
    ]  # fmt: skip
    # the two docstrings' examples have the same skeleton, so the programs share most 5-grams
    examples = [
        skeleton_tokens(t.split(">>>", 1)[1].split('"""')[0]) for t in (INCR_LIST, AUGMENT_VALUES)
    ]
    assert examples[0] == examples[1]
    # measured 0.44: the bodies differ (a comprehension, a while loop)
    assert shape_similarity(literal_skeleton(INCR_LIST), literal_skeleton(AUGMENT_VALUES)) > 0.4
    # prose has brackets and numbers too, but no program: no skeleton
    assert literal_skeleton("Sort [3, 1, 2] and print (1, 2, 3).") == frozenset()


def test_rephrased_programs_keep_their_originals_literal_skeleton() -> None:
    """Every one of the 9 confusable rephrasings (embedding nearer another program) has the
    highest skeleton Jaccard with its own original among the 16 programs (measured: 0.22-1.0
    against at most 0.32 for another program)."""
    originals = [literal_skeleton(t) for t in _texts(ORIGINALS)]
    rephrased = {i: literal_skeleton(t) for i, t in enumerate(_texts(REPHRASED)) if t}
    for i, skeleton in rephrased.items():
        sims = [shape_similarity(skeleton, o) for o in originals]
        others = sims[:i] + sims[i + 1 :]
        assert sims[i] > max(others), (i, sims[i], max(others))


@pytest.mark.slow
def test_confusable_rephrasings_are_matched_to_their_own_program(
    tmp_path: Path, model_cache: Path
) -> None:
    """9 rephrasings whose embedding's nearest HumanEval program is another one, among 200
    GSM8K train rows, against the 16 programs: every hit names the rephrasing's own original
    (the code shape re-ranks the candidates), and no GSM8K row is flagged (no shape)."""
    rows = json.loads((DATA / "gsm8k_train_300.json").read_text(encoding="utf-8"))[:200]
    truth: dict[int, int] = {}
    for j, text in enumerate(_texts(REPHRASED)):
        if text:
            truth[len(rows)] = j
            rows.append({"instruction": text, "input": "", "output": "Sure."})
    train = tmp_path / "train.json"
    train.write_text(json.dumps(rows), encoding="utf-8")
    cfg = ScanConfig(
        views=("full",),
        exact=False,
        near=False,
        semantic=real_cfg(model_cache),
        against=(str(ORIGINALS),),
    )
    refs = {ORIGINALS.name: load_reference(ORIGINALS, None)}
    result = scan(load_dataset(train), cfg, references=refs)
    hits = {(h.index, int(h.ref_id.rsplit(":", 1)[1])) for h in result.against}
    assert hits, "no rephrasing found"
    assert all(truth.get(i) == j for i, j in hits), sorted(hits)
    (cal,) = result.against_calibration
    assert cal["code_items"] == 16 and cal["score"].startswith("cosine + code-shape")
    # fib4 / fibfib (rows 7 and 11: the same recurrence, 4 terms or 3) score the cut against
    # each other: siblings, one item for the null (measured: 4 pairs, cut 0.930)
    pairs = {(a.rsplit(":", 1)[1], b.rsplit(":", 1)[1]) for a, b, _ in cal["siblings"]}
    assert ("7", "11") in pairs and cal["sibling_pairs"] == len(cal["siblings"])
    # the terminal states the rate and every cut (scan prints this summary)
    text = terminal_summary(build_report(result), result)
    assert "false-flag rate of 0.001 per clean row and signal" in text
    assert f"{cal['cosine_cut']:.3f}" in text and f"{cal['words_cut']:.3f}" in text
    assert f"{cal['sibling_pairs']} pairs of reference items are near-copies" in text
