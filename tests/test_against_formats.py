"""Contamination checks on every format: native benchmark files load without a mapping, the
README's `--against-column` examples work as written, text-only data compares the text itself,
evidence names the best hit, bad input exits 2, and the two-stage embedding check finds GPT-4
rephrasings of MMLU and HumanEval items (LLM-Decontaminator) among unrelated GSM8K rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from dedup_audit.cli import cli
from dedup_audit.config import ScanConfig
from dedup_audit.detect.against import answer_evidence, find_against, task_text
from dedup_audit.pipeline import scan
from dedup_audit.readers import load_dataset
from dedup_audit.readers.reference import load_reference
from dedup_audit.reports.scan.report_json import build_report, terminal_summary
from tests.semantic_support import DATA, real_cfg

BENCH = DATA / "bench"


def _questions(n: int) -> list[str]:
    lines = (DATA / "gsm8k_test_60.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["question"] for line in lines[:n]]


def _train_with(tmp_path: Path, extra: list[dict[str, str]], n: int = 60) -> Path:
    rows = json.loads((DATA / "gsm8k_train_300.json").read_text(encoding="utf-8"))[:n]
    path = tmp_path / "train.json"
    path.write_text(json.dumps(rows + extra), encoding="utf-8")
    return path


def test_native_benchmarks_load_without_a_mapping() -> None:
    he = load_reference(BENCH / "humaneval_native_4.jsonl", None)
    assert he.format == "benchmark:humaneval" and len(he.records) == 4
    view, prompt = task_text(he.records[0].sample)
    assert view == "prompt" and prompt.rstrip().endswith('"""')
    assert "def has_close_elements" in he.records[0].sample.turns[-1].text
    letter = load_reference(BENCH / "mmlu_sociology_12.csv", None)
    integer = load_reference(BENCH / "mmlu_sociology_12_int.jsonl", None)
    assert letter.format == integer.format == "benchmark:mmlu"
    assert len(letter.records) == len(integer.records) == 12  # no header row eaten
    for a, b in zip(letter.records, integer.records, strict=True):
        assert a.sample.turns == b.sample.turns
    assert letter.records[0].sample.turns[1].text.startswith("the media manipulate")  # answer C
    text = load_reference(BENCH / "humaneval_text_4.jsonl", None)
    assert text.format == "text" and task_text(text.records[0].sample)[0] == "response"
    gsm = load_reference(DATA / "gsm8k_test_60.jsonl", None)
    assert task_text(gsm.records[0].sample)[1] == _questions(1)[0]


def test_mbpp_layout_loads(tmp_path: Path) -> None:
    path = tmp_path / "mbpp.jsonl"
    row = {
        "task_id": 2,
        "text": "Write a function to find the shared elements from the given two lists.",
        "code": "def similar_elements(test_tup1, test_tup2):\n  return tuple(set(test_tup1) & set(test_tup2))",
        "test_list": ["assert set(similar_elements((3, 4), (5, 4))) == set((4,))"],
    }
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")
    ds = load_reference(path, None)
    assert ds.format == "benchmark:mbpp"
    assert task_text(ds.records[0].sample) == ("prompt", row["text"])


@pytest.mark.parametrize(
    "extra_args",
    [
        [],
        ["--against-column", "prompt=question"],
        ["--against-column", "prompt=question", "--against-column", "response=answer"],
    ],
)
def test_readme_against_examples_find_verbatim_questions(
    tmp_path: Path, extra_args: list[str]
) -> None:
    """README: `dedup-audit clean train.json --against test.jsonl --against-column
    prompt=question -o train.clean.json` once turned the check off (0 hits)."""
    qs = _questions(5)
    train = _train_with(tmp_path, [{"instruction": q, "input": "", "output": "x"} for q in qs])
    test = tmp_path / "test.jsonl"
    test.write_text((DATA / "gsm8k_test_60.jsonl").read_text(encoding="utf-8"), encoding="utf-8")
    out = tmp_path / "train.clean.json"
    res = CliRunner().invoke(
        cli, ["clean", str(train), "--against", str(test), *extra_args, "-o", str(out), "-q"]
    )
    assert res.exit_code == 0, res.output
    removed = [
        json.loads(line)
        for line in (tmp_path / "train.clean.json.removed.jsonl").read_text().splitlines()
    ]
    against = [r for r in removed if r["reason"] == "against:test.jsonl"]
    assert sorted(r["index"] for r in against) == [60, 61, 62, 63, 64]
    assert [r["kept_id"] for r in against] == [f"test.jsonl:{i}" for i in range(5)]


def test_native_humaneval_with_prompt_mapping(tmp_path: Path) -> None:
    he = [json.loads(x) for x in (BENCH / "humaneval_native_4.jsonl").read_text().splitlines()]
    train = _train_with(tmp_path, [{"instruction": he[2]["prompt"], "input": "", "output": "x"}])
    for args in ([], ["--against-column", "prompt=prompt"]):
        res = CliRunner().invoke(
            cli,
            [
                "scan",
                str(train),
                "--against",
                str(BENCH / "humaneval_native_4.jsonl"),
                *args,
                "-o",
                str(tmp_path / f"scan{len(args)}"),
                "--force",
            ],
        )
        assert res.exit_code == 0, res.output
        report = json.loads((tmp_path / f"scan{len(args)}" / "report.json").read_text())
        hits = {(h["index"], h["reference_id"], h["method"]) for h in report["contamination"]}
        assert (60, "humaneval_native_4.jsonl:2", "exact") in hits, (args, hits)


def test_text_only_data_compares_the_text(tmp_path: Path) -> None:
    lines = (BENCH / "humaneval_text_4.jsonl").read_text(encoding="utf-8").splitlines()
    train = tmp_path / "train.jsonl"
    train.write_text("\n".join([lines[1], lines[3]]) + "\n", encoding="utf-8")
    hits = find_against(
        load_dataset(train), load_reference(BENCH / "humaneval_text_4.jsonl", None), name="he"
    )
    exact = {(h.train_index, h.reference_index) for h in hits if h.method == "exact"}
    assert exact == {(0, 1), (1, 3)}
    assert {h.view for h in hits} == {"response"}


def test_removed_row_names_the_best_hit(tmp_path: Path) -> None:
    """A training row near-matching reference row 0 and exactly matching row 1: `kept_id` and
    `similarity` both come from row 1 (they once came from different hits)."""
    q = _questions(3)[2]
    near = q.replace("$80,000", "$81,000")
    ref = tmp_path / "ref.jsonl"
    ref.write_text(
        json.dumps({"question": near, "answer": "a"})
        + "\n"
        + json.dumps({"question": q, "answer": "b"})
        + "\n",
        encoding="utf-8",
    )
    train = _train_with(tmp_path, [{"instruction": q, "input": "", "output": "x"}], n=5)
    out = tmp_path / "clean.json"
    res = CliRunner().invoke(
        cli, ["clean", str(train), "--against", str(ref), "-o", str(out), "-q"]
    )
    assert res.exit_code == 0, res.output
    row = json.loads((tmp_path / "clean.json.removed.jsonl").read_text().splitlines()[0])
    assert row["kept_id"] == "ref.jsonl:1" and row["similarity"] == 1.0 and row["method"] == "exact"
    report = scan(
        load_dataset(train), ScanConfig(), references={"ref.jsonl": load_reference(ref, None)}
    )
    first = report.against[0]  # hits are sorted by reference row: the weaker one comes first
    assert first.ref_id == "ref.jsonl:0" and first.score < 1.0


def test_bad_references_exit_2_with_the_fix(tmp_path: Path) -> None:
    train = _train_with(tmp_path, [], n=5)
    notext = tmp_path / "ids.jsonl"
    notext.write_text('{"id": 1, "score": 3}\n', encoding="utf-8")
    runner = CliRunner()
    res = runner.invoke(
        cli, ["scan", str(train), "--against", str(notext), "-o", str(tmp_path / "o")]
    )
    assert res.exit_code == 2
    assert "ids.jsonl" in res.output and "'id', 'score'" in res.output
    assert "--against-column prompt=KEY" in res.output and "Traceback" not in res.output
    res = runner.invoke(
        cli, ["scan", str(train), "--against", str(train), "-o", str(tmp_path / "o")]
    )
    assert res.exit_code == 2 and "is the training file itself" in res.output
    fake = tmp_path / "not_a_model"
    fake.mkdir()
    (fake / "config.json").write_text("{}", encoding="utf-8")
    res = runner.invoke(
        cli, ["scan", str(train), "--semantic", "--model", str(fake), "-o", str(tmp_path / "o")]
    )
    assert res.exit_code == 2 and "not a sentence-transformers model folder" in res.output
    assert "Traceback" not in res.output


def test_answer_evidence_reads_numbers_and_answers() -> None:
    q = _questions(13)[12]  # Carlos's lemon tree: $90, 7 lemons, $1.5 each, $3 a year
    reph = (
        "A lemon tree costs $90.00 to plant and yields 7 lemons a year sold at $1.50; care is $3."
    )
    assert answer_evidence(q, "#### 13", reph)
    assert not answer_evidence(q, "#### 13", "A pear tree costs $9 to plant and yields 70 pears.")
    mmlu = load_reference(BENCH / "mmlu_sociology_12.csv", None).records[0].sample
    answer = mmlu.turns[1].text  # "the media manipulate 'the masses' as vulnerable, passive ..."
    assert answer_evidence(
        mmlu.turns[0].text, answer, "Media manipulate the masses, vulnerable passive consumers"
    )
    assert not answer_evidence(mmlu.turns[0].text, answer, "Audiences interpret media messages.")


@pytest.mark.slow
def test_rephrased_benchmark_items_found_at_default_settings(
    tmp_path: Path, model_cache: Path
) -> None:
    """12 MMLU sociology + 4 HumanEval GPT-4 rephrasings among 200 GSM8K train rows, against the
    native originals, at the default false-flag rate. The calibration goes into report.json."""
    rows = json.loads((DATA / "gsm8k_train_300.json").read_text(encoding="utf-8"))[:200]
    truth: dict[int, str] = {}
    for file, ref in (
        ("mmlu_sociology_rephrased_12.jsonl", "mmlu_sociology_12.csv"),
        ("humaneval_rephrased_4.jsonl", "humaneval_text_4.jsonl"),
    ):
        for j, line in enumerate((BENCH / file).read_text(encoding="utf-8").splitlines()):
            text = json.loads(line)["text"]
            if text.strip():
                truth[len(rows)] = f"{ref}:{j}"
                rows.append({"instruction": text, "input": "", "output": "Sure."})
    train = tmp_path / "train.json"
    train.write_text(json.dumps(rows), encoding="utf-8")
    refs = {
        n: load_reference(BENCH / n, None)
        for n in ("mmlu_sociology_12.csv", "humaneval_text_4.jsonl")
    }
    cfg = ScanConfig(views=("full",), exact=False, near=False, semantic=real_cfg(model_cache))
    result = scan(load_dataset(train), cfg, references=refs)
    flagged = {(h.index, h.ref_id) for h in result.against}
    found = {i for i, ref in truth.items() if (i, ref) in flagged}
    assert len(found) >= 0.9 * len(truth), sorted(set(truth) - found)
    false_flags = {i for i, _ in flagged if i not in truth}
    assert len(false_flags) <= 1, false_flags
    cal = result.against_calibration
    assert [c["reference"] for c in cal] == list(refs)
    for c in cal:  # the score adds the code-shape and skeleton Jaccards (<= 1 each) for code
        top = 3.0 if c["code_items"] else 1.0
        assert c["false_flag_rate"] == 0.001 and 0.45 <= c["cosine_cut"] <= top
        assert sum(c["flagged_by_signal"].values()) == c["flagged"]
    mmlu, he = cal
    assert mmlu["code_items"] == 0 and he["code_items"] == 4
    assert mmlu["score"] == "cosine" and he["score"].startswith("cosine + code-shape")


@pytest.mark.slow
def test_a_question_carried_with_its_answer_is_found(tmp_path: Path, model_cache: Path) -> None:
    """Two GPT-4 rephrasings that carry an MMLU question with its answer ("Smart's work implied
    that: Response: criminal activities by women often mirrored conventional gender roles.")
    among 200 GSM8K train rows, against 14 MMLU sociology items. Their cosine to the bare
    question is below the candidate floor (0.42 and 0.37 measured on the development set), so
    only the question + answer signal (the item's question and correct answer embedded
    together, compared with the whole training record) finds them; no GSM8K row is flagged."""
    rows = json.loads((DATA / "gsm8k_train_300.json").read_text(encoding="utf-8"))[:200]
    lines = (BENCH / "mmlu_sociology_qa_rephrased_2.jsonl").read_text("utf-8").splitlines()
    for line in lines:
        rows.append({"instruction": json.loads(line)["text"], "input": "", "output": "Sure."})
    train = tmp_path / "train.json"
    train.write_text(json.dumps(rows), encoding="utf-8")
    ref = BENCH / "mmlu_sociology_14.csv"
    cfg = ScanConfig(
        views=("full",),
        exact=False,
        near=False,
        semantic=real_cfg(model_cache),
        against=(str(ref),),
    )
    result = scan(load_dataset(train), cfg, references={ref.name: load_reference(ref, None)})
    hits = {(h.index, h.ref_id) for h in result.against if h.method == "embedding"}
    assert hits == {(200, f"{ref.name}:12"), (201, f"{ref.name}:13")}
    (cal,) = result.against_calibration
    assert cal["flagged_by_signal"] == {"question+answer": 2}
    # 10 of the 14 answers have 3+ content words ("all of the above" says nothing alone)
    assert cal["question_answer_items"] == 10 and 0.45 <= cal["question_answer_cut"] < 1.0
    text = terminal_summary(build_report(result), result)
    assert f"question + answer >= {cal['question_answer_cut']:.3f}" in text
