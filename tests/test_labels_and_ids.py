"""Issue 12 items 4 and 5: ids that mean what they look like, labels that do not mislead.

Real data throughout: LLaMA-Factory's alpaca_en_demo/identity/self_cognition and FastChat's
dummy_conversation (sample_data), GPTeacher and GSM8K subsets (tests/data)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from dedup_audit.cli import cli
from dedup_audit.readers import load_dataset

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_data"
DATA = ROOT / "tests" / "data"


def _scan(tmp_path: Path, *args: str) -> tuple[str, dict, str]:  # type: ignore[type-arg]
    out = tmp_path / "scan"
    res = CliRunner().invoke(cli, ["scan", *args, "-o", str(out)])
    assert res.exit_code == 0, res.output
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    return res.output, report, (out / "report.md").read_text(encoding="utf-8")


# --- item 4: ids ------------------------------------------------------------------------------


def test_a_unique_id_column_is_the_id(tmp_path: Path) -> None:
    rows = json.loads((SAMPLE / "dummy_conversation.json").read_text(encoding="utf-8"))
    ds = load_dataset(SAMPLE / "dummy_conversation.json")
    assert ds.id_column == "id"
    assert [r.id for r in ds.records] == [str(r["id"]) for r in rows]
    _, report, md = _scan(tmp_path, str(SAMPLE / "dummy_conversation.json"), "-q")
    assert report["dataset"]["id_column"] == "id"
    assert report["dataset"]["ids"] == "ids are the values of the 'id' column"
    member = report["clusters"][0]["members"][0]
    assert member["id"] == str(rows[member["index"]]["id"])
    assert "ids are the values of the 'id' column" in md


def test_a_repeated_id_column_falls_back_to_positions(tmp_path: Path) -> None:
    rows = json.loads((SAMPLE / "dummy_conversation.json").read_text(encoding="utf-8"))[:40]
    rows[7]["id"] = rows[3]["id"]  # not unique: not an id
    path = tmp_path / "conv.json"
    path.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    ds = load_dataset(path)
    assert ds.id_column is None and ds.records[7].id == "conv.json:7"
    # an explicit --id-column still insists on uniqueness
    from dedup_audit.errors import InputError

    with pytest.raises(InputError, match="not unique"):
        load_dataset(path, id_column="id")


def test_reports_say_what_ids_are_and_show_1_based_rows(tmp_path: Path) -> None:
    """alpaca_en_demo.json:398 is the 399th record, which starts on another line entirely."""
    text = (SAMPLE / "alpaca_en_demo.json").read_text(encoding="utf-8")
    rows = json.loads(text)
    output, report, md = _scan(tmp_path, str(SAMPLE / "alpaca_en_demo.json"))
    assert report["dataset"]["id_column"] is None
    assert "not a line number" in report["dataset"]["ids"]
    assert "not a line number" in md and "`row` counts from 1" in md
    yellow = next(c for c in report["clusters"] if c["view"] == "prompt" and c["size"] == 3)
    ids = [m["id"] for m in yellow["members"]]
    assert ids == ["alpaca_en_demo.json:398", "alpaca_en_demo.json:508", "alpaca_en_demo.json:847"]
    assert rows[398]["instruction"] == "Describe the color yellow in 3 words."
    assert "row 399    alpaca_en_demo.json:398" in output
    assert "| 399 | alpaca_en_demo.json:398 | Describe the color yellow in 3 words. |" in md
    line_398 = text.splitlines()[397]
    assert "yellow" not in line_398  # line 398 of the file holds something else


# --- item 5: labels ---------------------------------------------------------------------------


def test_conflicting_and_canned_clusters_are_not_counted_as_duplicates(tmp_path: Path) -> None:
    output, report, md = _scan(tmp_path, str(DATA / "minhash_gpteacher_300.json"))
    prompt = report["summary"]["views"]["prompt"]
    assert prompt["clusters_by_kind"] == {"conflicting": 19}
    assert prompt["redundant_records"] > 0  # report.json's raw count of rows in clusters - 1
    assert prompt["duplicate_rows"] == 0  # ... and the count that means what clean removes
    assert "  prompt     conflicting 19  (0 duplicate rows)" in output
    assert "conflicting: same prompt, different answers: reported, not removed" in output
    assert "| prompt | word | 0 | 361 | 0 | conflicting: 19 | 0 |" in md
    full = report["summary"]["views"]["full"]
    assert (
        f"({full['records_in_clusters_by_kind']['near'] - full['clusters_by_kind']['near']} duplicate rows)"
        in output
    )
    # canned only when the answers are the same; near-identical answers say so
    assert "  response   canned 3, canned~near 1  (0 duplicate rows)" in output
    assert "canned~near: near-identical answers to different prompts" in output


def test_contamination_is_not_called_duplicates(tmp_path: Path) -> None:
    """GSM8K train with two test questions planted: the headline counts them as what clean
    removes, by reason, and the full view shows no duplicates."""
    test_rows = [
        json.loads(line)
        for line in (DATA / "gsm8k_test_60.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    train = json.loads((DATA / "gsm8k_train_300.json").read_text(encoding="utf-8"))
    train += [
        {"instruction": test_rows[i]["question"], "input": "", "output": test_rows[i]["answer"]}
        for i in (3, 17)
    ]
    src = tmp_path / "train.json"
    src.write_text(json.dumps(train, indent=2), encoding="utf-8")
    output, _, md = _scan(
        tmp_path, str(src), "--against", str(DATA / "gsm8k_test_60.jsonl"), "--views", "full"
    )
    assert "Duplicates" not in output
    assert "Rows clean removes: 2 of 302 (0.7%)\n  against:gsm8k_test_60.jsonl 2\n" in output
    assert "  full       no clusters  (0 duplicate rows)" in output
    assert "rows `clean` removes (duplicates in the full view, contamination): 2" in md


def test_cut_lists_say_how_much_is_shown(tmp_path: Path) -> None:
    output, report, md = _scan(tmp_path, str(DATA / "minhash_gpteacher_300.json"))
    n_prompt = report["summary"]["views"]["prompt"]["clusters_by_kind"]["conflicting"]
    assert f"Largest prompt-view clusters (3 of {n_prompt} clusters shown):" in output
    assert "(3 of 41 members shown)" in output
    assert f"prompt view: 10 of {n_prompt} clusters shown." in md
    assert "| … | | 8 of 41 members shown |" in md
    assert "full view: all 7 clusters." in md


@pytest.mark.slow
def test_warnings_survive_quiet_and_are_recorded(tmp_path: Path, model_cache: Path) -> None:
    """`clean --semantic -q` on identity.json: the English-only model on CJK text is printed on
    stderr and kept in report.json and report.md; so is a clean removing most rows
    (dummy_conversation.json's templated chats at --threshold 0.5)."""
    out = tmp_path / "c.json"
    res = CliRunner().invoke(
        cli,
        [
            "clean",
            str(SAMPLE / "identity.json"),
            "--semantic",
            "--cache-dir",
            str(model_cache),
            "-o",
            str(out),
            "--report-dir",
            str(tmp_path / "r"),
            "-q",
        ],
    )
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "r" / "report.json").read_text(encoding="utf-8"))
    assert report["summary"]["rows"] == 91
    warnings = report["warnings"]
    assert any("English-only" in w for w in warnings)
    most = CliRunner().invoke(
        cli,
        [
            "clean",
            str(SAMPLE / "dummy_conversation.json"),
            "--threshold",
            "0.5",
            "-q",
            "-o",
            str(tmp_path / "d.json"),
            "--report-dir",
            str(tmp_path / "d"),
        ],
    )
    assert most.exit_code == 0, most.output
    dreport = json.loads((tmp_path / "d" / "report.json").read_text(encoding="utf-8"))
    removed = dreport["summary"]["removed"]
    assert removed > 250
    over = f"clean would remove {removed} of 500 rows (over half)"
    assert any(over in w for w in dreport["warnings"]) and over in most.stderr
    for w in warnings:
        assert f"Warning: {w}\n" in res.stderr
    md = (tmp_path / "r" / "report.md").read_text(encoding="utf-8")
    assert "## Warnings" in md and all(w in md for w in warnings)
    html = (tmp_path / "r" / "report.html").read_text(encoding="utf-8")
    assert html.count('class="warn"') == len(warnings)
    # a semantic response-view cluster links different answers: not "canned"
    sem = [c for c in report["clusters"] if c["view"] == "response" and c["kind"] == "canned"]
    linked_by_embeddings = [c for c in sem if any(p[2] == "embedding" for p in c["pairs"])]
    assert linked_by_embeddings
    scan = CliRunner().invoke(
        cli,
        [
            "scan",
            str(SAMPLE / "identity.json"),
            "--semantic",
            "--cache-dir",
            str(model_cache),
            "-o",
            str(tmp_path / "s"),
        ],
    )
    assert "similar answers" in scan.stdout
    assert "similar answers: answers alike in meaning, not the same" in scan.stdout
