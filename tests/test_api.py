"""The notebook API (records in, records out), the light core (a MinHash-only scan imports no
torch), the extras (a missing one exits 2 with its pip line), and the README's Python blocks
and the API's docstring examples run as written."""

from __future__ import annotations

import doctest
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import dedup_audit as da
from dedup_audit.cli import cli
from dedup_audit.errors import ConfigError, MissingDependencyError

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_data" / "alpaca_en_demo.json"
DATA = ROOT / "tests" / "data"
HEAVY = ("torch", "sentence_transformers", "faiss", "onnx", "onnxruntime", "matplotlib")


@pytest.fixture
def in_checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh working folder where sample_data/ is the checkout's (as in the README)."""
    (tmp_path / "sample_data").symlink_to(ROOT / "sample_data")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_public_names_are_listed_and_documented_with_examples() -> None:
    public = [n for n in dir(da) if not n.startswith("_")]
    assert public == sorted(n for n in da.__all__ if not n.startswith("_"))
    assert {"scan", "load", "memorization", "clean", "Audit", "Cleaned"} <= set(public)
    for name in public:
        doc = getattr(da, name).__doc__ or ""
        assert "Examples:" in doc, f"dedup_audit.{name} has no Examples: section"
    # the function stays callable whatever was imported before (no subpackage shadows it)
    import dedup_audit.reports.memorization.report_json  # noqa: F401

    assert callable(da.memorization) and callable(da.scan) and callable(da.load)


def test_every_input_kind_gives_the_same_audit() -> None:
    import datasets
    import pandas as pd

    rows = json.loads(SAMPLE.read_text(encoding="utf-8"))
    by_path = da.scan(SAMPLE, threshold=0.85)
    want = [(d.index, d.keep, d.reason, d.kept_twin) for d in by_path.result.decisions]
    for data in (rows, pd.DataFrame(rows), datasets.Dataset.from_list(rows)):
        got = da.scan(data, threshold=0.85)
        assert [(d.index, d.keep, d.reason, d.kept_twin) for d in got.result.decisions] == want
        assert got.result.dataset.records[5].id == "records:5"
    assert by_path.config.minhash.threshold == 0.85
    with pytest.raises(ConfigError, match="unknown scan option 'treshold'"):
        da.scan(rows, treshold=0.9)
    with pytest.raises(ConfigError, match="cannot read a int"):
        da.scan(42)


def test_clean_hands_back_kept_and_removed_records_with_reasons() -> None:
    rows = json.loads(SAMPLE.read_text(encoding="utf-8"))
    audit = da.scan(rows)
    assert audit.removed_by_reason() == {"exact:full": 14}
    first = audit.clean()
    assert len(first.kept) + len(first.removed) == len(rows)
    r = first.removed[0]
    assert set(r) == {"id", "reason", "kept_id", "evidence", "record"}
    assert r["reason"] == "exact:full" and r["evidence"]["similarity"] == 1.0
    index = {f"records:{i}": row for i, row in enumerate(rows)}
    assert r["record"] == index[r["id"]] and index[r["kept_id"]] == r["record"]  # exact twins
    # near duplicates (GPTeacher Toolformer): keep_by picks other survivors, without a rescan
    tool = json.loads((DATA / "minhash_gpteacher_300.json").read_text(encoding="utf-8"))
    near = da.scan(tool, threshold=0.7, views="full")
    by_first, by_longest = near.clean(), near.clean(keep_by="longest")
    for result in (by_first, by_longest):
        assert len(result.kept) + len(result.removed) == len(tool)
        assert {x["reason"] for x in result.removed} >= {"near:full"}
    assert {x["id"] for x in by_first.removed} != {x["id"] for x in by_longest.removed}
    size = {f"records:{i}": len(json.dumps(row)) for i, row in enumerate(tool)}
    assert all(size[x["kept_id"]] >= size[x["id"]] for x in by_longest.removed)
    assert (
        near.removed_by_reason() == da.scan(tool, threshold=0.7, views="full").removed_by_reason()
    )


def test_clusters_save_load_and_rethreshold(in_checkout: Path) -> None:
    audit = da.scan("sample_data/alpaca_en_demo.json", threshold=0.7)
    exact = audit.clusters(view="full", kind="exact")
    assert exact and all(c["kind"] == "exact" and c["view"] == "full" for c in exact)
    assert all(len(c["ids"]) == c["size"] == len(c["records"]) for c in exact)
    assert all(p["method"] == "exact" for c in exact for p in c["pairs"])
    prompt = audit.clusters(view="prompt")
    assert {c["view"] for c in prompt} == {"prompt"}
    folder = audit.save("out/scan")
    with pytest.raises(Exception, match="--force"):
        audit.save("out/scan")
    same = da.load(folder)
    assert same.result.decisions == audit.result.decisions
    assert same.clusters() == audit.clusters()
    stricter = same.rethreshold(near=0.95)
    assert stricter.config.minhash.threshold == 0.95
    fresh = da.scan("sample_data/alpaca_en_demo.json", threshold=0.95)
    assert stricter.result.decisions == fresh.result.decisions
    rows = json.loads(SAMPLE.read_text(encoding="utf-8"))
    mem = da.scan(rows, threshold=0.7)
    mem.save("out/mem")
    with pytest.raises(Exception, match="pass its data again"):
        da.load("out/mem")
    assert da.load("out/mem", data=rows).result.decisions == mem.result.decisions


def test_memorization_gives_the_reports_sections(in_checkout: Path) -> None:
    memo = da.memorization(
        "sample_data/run", data="sample_data/run/train.json", losses="sample_data/run/losses.jsonl"
    )
    assert memo.staircase is not None and memo.staircase["verdict"] == "staircase"
    assert memo.samples is not None and memo.samples["available"]
    assert [d["id"] for d in memo.diagnosis][:2] == ["a", "b1"]
    assert memo.recommendations[0]["setting"] == "num_train_epochs: 2"
    assert memo.headline.startswith("Staircase at 5 of 7 epoch boundaries")
    assert "num_train_epochs: 2" in memo.summary()
    out = memo.save("out/memo")
    assert json.loads((out / "report.json").read_text())["headline"] == memo.headline


def test_a_minhash_scan_imports_no_heavy_library(tmp_path: Path) -> None:
    code = (
        "import sys, dedup_audit\n"
        f"audit = dedup_audit.scan({str(SAMPLE)!r})\n"
        "audit.clean(); audit.save(sys.argv[1])\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & set(sys.argv[2:]))\n"
        "print('HEAVY', heavy, audit.removed_by_reason())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "s"), *HEAVY],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "HEAVY [] {'exact:full': 14}" in out


@pytest.mark.parametrize(
    ("missing", "argv", "extra"),
    [
        ("faiss", ["scan", str(SAMPLE), "--semantic", "-o", "{tmp}/s"], "semantic"),
        ("sentence_transformers", ["clean", str(SAMPLE), "--semantic", "-o", "{tmp}/c.json"], "semantic"),
        ("torch", ["losses", "sample_data/run", "--data", "sample_data/run/train.json", "-o", "{tmp}/l.jsonl"], "train"),
        ("matplotlib", ["report", "sample_data/run", "-o", "{tmp}/m"], "report"),
    ],
)  # fmt: skip
def test_a_missing_extra_exits_2_with_its_pip_line(
    missing: str, argv: list[str], extra: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.setitem(sys.modules, missing, None)  # as if it were not installed
    args = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 2, res.output
    assert f"pip install 'dedup-audit[{extra}]'" in res.output
    assert missing in res.output
    assert not any(tmp_path.iterdir()), "nothing is written"
    line = re.escape(f"pip install 'dedup-audit[{extra}]'")
    if extra == "semantic":  # the API stops the same way
        with pytest.raises(MissingDependencyError, match=line):
            da.scan(SAMPLE, semantic=True)
    elif extra == "report":
        memo = da.memorization(ROOT / "sample_data" / "run")
        with pytest.raises(MissingDependencyError, match=line):
            memo.save(tmp_path / "m")


def python_blocks(readme: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```$", readme, flags=re.M | re.S)


def test_readme_python_blocks_run_as_written(in_checkout: Path) -> None:
    blocks = python_blocks((ROOT / "README.md").read_text(encoding="utf-8"))
    assert blocks and any("da.scan(" in b for b in blocks)
    for block in blocks:
        res = subprocess.run(
            [sys.executable, "-c", block],
            cwd=in_checkout,
            capture_output=True,
            text=True,
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )
        assert res.returncode == 0, f"README block failed:\n{block}\n{res.stderr[-3000:]}"


def test_api_docstring_examples_run(in_checkout: Path) -> None:
    import importlib

    for name in (
        "api",
        "extras",
        "config",
        "pipeline",
        "cleaning",
        "readers.load",
        "reports.scan.saved",
        "reports.scan.calibrate",
    ):
        module = importlib.import_module(f"dedup_audit.{name}")
        failed, tried = doctest.testmod(
            module, extraglobs={"da": da}, optionflags=doctest.ELLIPSIS, report=True
        )
        assert tried > 0 and failed == 0, f"{module.__name__}: {failed} of {tried} failed"
