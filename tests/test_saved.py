"""The saved scan: `load(save(x))` equals `x` field by field, and re-thresholding a reloaded
scan at its own thresholds gives back every removal (contamination included) and every count."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from dedup_audit.cli import cli
from dedup_audit.config import MinHashConfig, ScanConfig
from dedup_audit.errors import InputError
from dedup_audit.pipeline import ScanResult, ViewScan, scan
from dedup_audit.records import PairSet
from dedup_audit.reports.scan.saved import load, read, save

DATA = Path(__file__).parent / "data"


def _pairset(ps: PairSet) -> tuple[object, ...]:
    return (
        ps.view,
        ps.a.tolist(),
        ps.b.tolist(),
        ps.score.tolist(),
        np.nan_to_num(ps.estimate, nan=-9.0).tolist(),
        ps.method.tolist(),
    )


def _view(vs: ViewScan) -> dict[str, object]:
    out: dict[str, object] = {}
    for f in dataclasses.fields(vs):
        value = getattr(vs, f.name)
        if isinstance(value, PairSet):
            value = _pairset(value)
        elif isinstance(value, np.ndarray):
            value = value.tolist()
        out[f.name] = value
    return out


def assert_same_result(got: ScanResult, want: ScanResult) -> None:
    """Every field of ScanResult, compared by value (arrays and pair sets column by column)."""
    names = {f.name for f in dataclasses.fields(ScanResult)}
    assert names == {
        "dataset",
        "config",
        "views",
        "clusters",
        "decisions",
        "against",
        "against_calibration",
    }, "a new ScanResult field must be saved, reloaded and compared here"
    assert got.config == want.config
    assert got.dataset.records == want.dataset.records
    assert (got.dataset.paths, got.dataset.format) == (want.dataset.paths, want.dataset.format)
    assert list(got.views) == list(want.views)
    for view in want.views:
        assert _view(got.views[view]) == _view(want.views[view]), view
    assert [(c.id, c.view, c.kind, c.members, c.pairs) for c in got.clusters] == [
        (c.id, c.view, c.kind, c.members, c.pairs) for c in want.clusters
    ]
    assert got.decisions == want.decisions
    assert got.against == want.against
    assert got.against_calibration == want.against_calibration


def _contaminated(tmp_path: Path) -> tuple[Path, Path]:
    """GSM8K train rows with four test questions planted in them (and one near copy of a train
    row, so MinHash has candidates), and the test set."""
    rows = json.loads((DATA / "gsm8k_train_300.json").read_text(encoding="utf-8"))
    test = [json.loads(line) for line in (DATA / "gsm8k_test_60.jsonl").open(encoding="utf-8")]
    for k, t in zip((10, 50, 120, 200), (test[3], test[17], test[30], test[44]), strict=True):
        rows[k] = {"instruction": t["question"], "input": "", "output": t["answer"]}
    words = rows[5]["output"].split(" ")
    words[3] = "roughly"
    rows[250] = dict(rows[5], output=" ".join(words))
    train, ref = tmp_path / "train.json", tmp_path / "test.jsonl"
    train.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    ref.write_text("".join(json.dumps(t) + "\n" for t in test), encoding="utf-8")
    return train, ref


def test_load_of_save_equals_the_scan_field_by_field(tmp_path: Path) -> None:
    data = DATA / "minhash_gpteacher_300.json"
    first = scan(data, ScanConfig(minhash=MinHashConfig(threshold=0.7)))
    assert any(len(vs.near) for vs in first.views.values()), "the subset has near pairs"
    assert any(vs.candidates for vs in first.views.values())
    save(first, tmp_path / "s")
    assert_same_result(load(tmp_path / "s"), first)  # the data path comes from the report
    assert_same_result(load(tmp_path / "s" / "report.json", data), first)


def test_contamination_and_candidates_survive_the_round_trip(tmp_path: Path) -> None:
    """GSM8K train vs test: the 4 planted test questions are removed as contamination; a
    reloaded scan re-thresholded at its own threshold keeps them, and the MinHash counts."""
    from dedup_audit.readers.reference import load_reference

    train, ref = _contaminated(tmp_path)
    cfg = ScanConfig(against=(str(ref),))
    first = scan(train, cfg, references={"test.jsonl": load_reference(ref, None)})
    against = {r: n for r, n in first.removed_by_reason().items() if r.startswith("against")}
    assert against == {"against:test.jsonl": 4}
    assert sum(vs.candidates for vs in first.views.values()) > 0
    save(first, tmp_path / "s")
    again = load(tmp_path / "s")
    assert_same_result(again, first)
    same = again.rethreshold(near=cfg.minhash.threshold)
    assert same.decisions == first.decisions
    assert [vs.candidates for vs in same.views.values()] == [
        vs.candidates for vs in first.views.values()
    ]


def test_rethreshold_command_keeps_every_count(tmp_path: Path) -> None:
    train, ref = _contaminated(tmp_path)
    runner = CliRunner()
    res = runner.invoke(
        cli,
        ["scan", str(train), "--against", str(ref), "-o", str(tmp_path / "s"), "-q"],
    )
    assert res.exit_code == 0, res.output
    res = runner.invoke(
        cli,
        [
            "rethreshold",
            str(tmp_path / "s" / "report.json"),
            "--threshold",
            "0.8",
            "-o",
            str(tmp_path / "r"),
            "-q",
        ],
    )
    assert res.exit_code == 0, res.output
    before = json.loads((tmp_path / "s" / "report.json").read_text())["summary"]
    after = json.loads((tmp_path / "r" / "report.json").read_text())["summary"]
    assert after == before
    assert before["removed_by_reason"]["against:test.jsonl"] == 4


def test_the_reader_refuses_what_is_not_a_saved_scan(tmp_path: Path) -> None:
    (tmp_path / "report.json").write_text('{"schema": "dedup-audit/memorization"}', "utf-8")
    with pytest.raises(InputError, match="not a dedup-audit scan report"):
        read(tmp_path)
    first = scan(DATA / "gsm8k_train_300.json")
    save(first, tmp_path / "s")
    (tmp_path / "s" / "pairs.parquet").unlink()
    with pytest.raises(InputError, match="keep the scan folder together"):
        load(tmp_path / "s")
