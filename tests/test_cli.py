"""The CLI as a user meets it: exact messages, exit codes, files written, --help kept honest."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from dedup_audit.cli import LazyGroup, cli

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture()
def runner() -> CliRunner:
    return CliRunner()


def test_scan_writes_reports_and_prints_summary(
    runner: CliRunner, sample_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "scan"
    res = runner.invoke(cli, ["scan", str(sample_dir / "alpaca_en_demo.json"), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "Rows clean removes: 14 of 999 (1.4%)" in res.output
    assert "  exact:full               14" in res.output
    assert "Largest full-view clusters (3 of 13 clusters shown):" in res.output
    assert "    row 399    alpaca_en_demo.json:398 " in res.output  # 1-based row beside the id
    assert "N is not a line number" in res.output
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["schema"] == "dedup-audit/scan" and report["version"] == 1
    assert report["summary"]["removed_by_reason"] == {"exact:full": 14}
    assert report["config"]["minhash"]["threshold"] == 0.8
    assert (out / "report.md").read_text(encoding="utf-8").startswith("# dedup-audit scan report")
    # a second run refuses to overwrite without --force
    again = runner.invoke(cli, ["scan", str(sample_dir / "alpaca_en_demo.json"), "-o", str(out)])
    assert again.exit_code == 2
    assert (
        again.output
        == f"Error: -o/--output {out}: report.json already exists there; pass --force to overwrite\n"
    )


def test_scan_fail_over_gate(runner: CliRunner, sample_dir: Path, tmp_path: Path) -> None:
    args = ["scan", str(sample_dir / "alpaca_en_demo.json"), "-o", str(tmp_path), "-q"]
    assert runner.invoke(cli, [*args, "--fail-over", "0.05"]).exit_code == 0
    res = runner.invoke(cli, [*args, "--force", "--fail-over", "0.01"])
    assert res.exit_code == 1
    assert "Duplicate ratio 0.0140 exceeds --fail-over 0.01" in res.output


def test_clean_cli_with_dataset_info(runner: CliRunner, sample_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "alpaca.clean.json"
    res = runner.invoke(
        cli,
        [
            "clean",
            "--dataset-info",
            str(sample_dir / "dataset_info.json"),
            "--dataset",
            "alpaca_en_demo",
            "-o",
            str(out),
            "-q",
        ],
    )
    assert res.exit_code == 0, res.output
    assert res.output == (
        f"Kept 985 of 999 rows -> {out}; removed 14 -> {tmp_path / 'alpaca.clean.json.removed.jsonl'}\n"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["scan"], "Error: give a DATA file, or --dataset-info PATH --dataset NAME\n"),
        (["scan", "nope.json"], "Error: nope.json: no such file or folder\n"),
        (
            ["scan", "x.json", "--threshold", "1.5"],
            "Error: --threshold must be in (0, 1], got 1.5\n",
        ),
        (
            ["clean", "x.json", "--keep-by", "score"],
            "Error: --keep-by must be one of first, longest, shortest, random or COLUMN:max|min, got 'score'\n",
        ),
        (
            ["scan", "x.json", "--column", "prompt"],
            "Error: --column expects ROLE=KEY (e.g. prompt=question), got 'prompt'\n",
        ),
    ],
)
def test_bad_options_give_one_line_errors(
    runner: CliRunner,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.json").write_text('[{"instruction": "a", "output": "b"}]', encoding="utf-8")
    res = runner.invoke(cli, args)
    assert res.exit_code == 2
    assert res.output == message


def test_malformed_json_names_file_line_and_column(runner: CliRunner, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(
        '[\n  {"instruction": "a", "output": "b"},\n  {"instruction": "c" "output": "d"}\n]\n',
        encoding="utf-8",
    )
    res = runner.invoke(cli, ["clean", str(bad), "-o", str(tmp_path / "out.json")])
    assert res.exit_code == 2
    assert res.output.startswith(f"Error: {bad}")
    assert "line 3" in res.output and res.output.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.json"]


def test_every_command_has_help_with_an_example_and_is_in_the_readme(runner: CliRunner) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    top = runner.invoke(cli, ["--help"])
    assert top.exit_code == 0
    for name in LazyGroup.lazy:
        assert name in top.output
        assert f"dedup-audit {name}" in readme, f"README does not show `dedup-audit {name}`"
        res = runner.invoke(cli, [name, "--help"])
        assert res.exit_code == 0, (name, res.output)
        assert re.search(r"Examples?:", res.output), f"{name} --help has no example"
        assert f"dedup-audit {name}" in res.output


def test_readme_options_exist_in_help(runner: CliRunner) -> None:
    """Every --option the README mentions for scan/clean is a real option of one of them."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    helps = "".join(runner.invoke(cli, [c, "--help"]).output for c in LazyGroup.lazy)
    mentioned = set(re.findall(r"(--[a-z][a-z-]+)", readme))
    missing = sorted(opt for opt in mentioned if opt not in helps and opt not in {"--index-url"})
    assert not missing, f"README mentions options no command has: {missing}"


def test_top_level_help_does_not_import_torch() -> None:
    code = (
        "import sys\nfrom dedup_audit.cli import main\nsys.argv=['dedup-audit','--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
        "assert 'datasets' not in sys.modules, 'datasets imported'\nprint('OK')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().endswith("OK")


def test_python_m_entry_point(sample_dir: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "dedup_audit", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "dedup-audit, version 0.1.0"


def test_rethreshold_cli_equals_a_fresh_scan(
    runner: CliRunner, sample_dir: Path, tmp_path: Path
) -> None:
    data = str(sample_dir / "identity.json")
    assert (
        runner.invoke(
            cli, ["scan", data, "--threshold", "0.6", "-o", str(tmp_path / "low"), "-q"]
        ).exit_code
        == 0
    )
    assert (
        runner.invoke(
            cli, ["scan", data, "--threshold", "0.85", "-o", str(tmp_path / "fresh"), "-q"]
        ).exit_code
        == 0
    )
    res = runner.invoke(
        cli,
        [
            "rethreshold",
            str(tmp_path / "low" / "report.json"),
            "--threshold",
            "0.85",
            "-o",
            str(tmp_path / "re"),
            "-q",
        ],
    )
    assert res.exit_code == 0, res.output
    assert res.output.startswith("Rethresholded: ")
    fresh = json.loads((tmp_path / "fresh" / "report.json").read_text(encoding="utf-8"))
    redone = json.loads((tmp_path / "re" / "report.json").read_text(encoding="utf-8"))
    assert redone["clusters"] == fresh["clusters"]
    assert redone["summary"]["removed_by_reason"] == fresh["summary"]["removed_by_reason"]
    assert redone["config"]["minhash"]["threshold"] == 0.85


def test_against_reports_both_sides_and_clean_removes(
    runner: CliRunner, data_dir: Path, tmp_path: Path
) -> None:
    test_rows = [
        json.loads(line)
        for line in (data_dir / "gsm8k_test_60.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    train = json.loads((data_dir / "gsm8k_train_300.json").read_text(encoding="utf-8"))
    leaked = [
        {"instruction": test_rows[i]["question"], "input": "", "output": test_rows[i]["answer"]}
        for i in (3, 17)
    ]
    src = tmp_path / "train.json"
    src.write_text(json.dumps(train + leaked, indent=2), encoding="utf-8")
    ref = str(data_dir / "gsm8k_test_60.jsonl")
    res = runner.invoke(cli, ["scan", str(src), "--against", ref, "-o", str(tmp_path / "s")])
    assert res.exit_code == 0, res.output
    assert "Contamination vs gsm8k_test_60.jsonl: 2 training rows" in res.output
    assert "gsm8k_test_60.jsonl:3" in res.output and "gsm8k_test_60.jsonl:17" in res.output
    report = json.loads((tmp_path / "s" / "report.json").read_text(encoding="utf-8"))
    hits = {h["id"]: h for h in report["contamination"]}
    assert set(hits) == {"train.json:300", "train.json:301"}
    assert hits["train.json:300"]["reference_text"].startswith(test_rows[3]["question"][:40])

    out = tmp_path / "clean.json"
    res = runner.invoke(cli, ["clean", str(src), "--against", ref, "-o", str(out), "-q"])
    assert res.exit_code == 0, res.output
    removed = [
        json.loads(line)
        for line in (tmp_path / "clean.json.removed.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    assert {r["id"] for r in removed} == {"train.json:300", "train.json:301"}
    assert {r["reason"] for r in removed} == {"against:gsm8k_test_60.jsonl"}
    assert {r["kept_id"] for r in removed} == {"gsm8k_test_60.jsonl:3", "gsm8k_test_60.jsonl:17"}
    assert len(json.loads(out.read_text(encoding="utf-8"))) == len(train)


def test_semantic_scan_and_clean_from_the_cli(
    runner: CliRunner, sample_dir: Path, tmp_path: Path, model_cache: Path
) -> None:
    """The packaged model, offline, through the CLI options; removals name their evidence."""
    data = str(sample_dir / "self_cognition.json")
    common = ["--semantic", "--cache-dir", str(model_cache), "--views", "full", "-q"]
    plain = runner.invoke(cli, ["clean", data, "-o", str(tmp_path / "plain.json"), "-q"])
    res = runner.invoke(cli, ["clean", data, "-o", str(tmp_path / "sem.json"), *common])
    assert plain.exit_code == 0 and res.exit_code == 0, res.output
    removed = [
        json.loads(line)
        for line in (tmp_path / "sem.json.removed.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    plain_removed = (tmp_path / "plain.json.removed.jsonl").read_text(encoding="utf-8").splitlines()
    semantic = [r for r in removed if r["reason"] == "semantic:full"]
    assert len(removed) > len(plain_removed) and semantic
    for r in semantic:
        assert r["method"] == "embedding" and r["similarity"] >= 0.9 and r["kept_id"]
    kept = json.loads((tmp_path / "sem.json").read_text(encoding="utf-8"))
    assert len(kept) + len(removed) == 80


def test_readme_python_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's first Python block gives the numbers its comments state (every block also
    runs as written in tests/test_api.py)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```python\n(.*?)```", readme, re.S)
    assert block is not None
    (tmp_path / "sample_data").symlink_to(ROOT / "sample_data")
    monkeypatch.chdir(tmp_path)
    scope: dict[str, Any] = {}
    exec(compile(block[1], "README.md", "exec"), scope)
    audit, result, same = scope["audit"], scope["result"], scope["same"]
    assert audit.removed_by_reason() == {"exact:full": 14}
    assert round(audit.duplicate_ratio, 6) == 0.014014
    assert len(result.kept) == 985 and {r["reason"] for r in result.removed} == {"exact:full"}
    assert same.result.decisions == audit.result.decisions
    assert (tmp_path / "out" / "scan" / "report.json").is_file()
    assert scope["memo"].headline.startswith("Staircase")


def test_semantic_scan_warns_when_the_english_model_meets_cjk_text(
    runner: CliRunner, sample_dir: Path, tmp_path: Path, model_cache: Path
) -> None:
    args = ["scan", "--semantic", "--cache-dir", str(model_cache), "--views", "full"]
    zh = runner.invoke(
        cli, [*args, str(sample_dir / "self_cognition.json"), "-o", str(tmp_path / "zh")]
    )
    assert zh.exit_code == 0, zh.output
    assert "Warning: the full view(s) are mostly CJK text" in zh.output
    rows = json.loads((sample_dir / "alpaca_en_demo.json").read_text(encoding="utf-8"))[:60]
    english = tmp_path / "english.json"
    english.write_text(json.dumps(rows), encoding="utf-8")
    en = runner.invoke(cli, [*args, str(english), "-o", str(tmp_path / "en")])
    assert en.exit_code == 0, en.output
    assert "English-only" not in en.output


def test_every_command_shares_the_cli_layer() -> None:
    """One error handler on every command; the repeated options come from one decorator each
    (same flags, same types), so a command cannot drift from the others."""
    ctx = click.Context(cli)
    writing = {"scan", "clean", "rethreshold", "losses", "report"}
    for name in LazyGroup.lazy:
        cmd = cli.get_command(ctx, name)
        assert cmd is not None and cmd.callback is not None
        assert getattr(cmd.callback, "handles_errors", False), f"{name} lacks handle_errors"
        flags = {opt: p for p in cmd.params for opt in p.opts}
        if name in writing:
            for opt in ("-o", "--output", "--force", "-q", "--quiet"):
                assert opt in flags, f"{name} lacks {opt}"
            assert flags["--force"].is_flag and flags["-q"] is flags["--quiet"]
    for name in ("scan", "clean", "losses"):
        cmd = cli.get_command(ctx, name)
        assert cmd is not None
        assert {"--dataset-info", "--dataset"} <= {o for p in cmd.params for o in p.opts}
    for name in ("losses", "report"):
        cmd = cli.get_command(ctx, name)
        assert cmd is not None
        assert "--heldout" in {o for p in cmd.params for o in p.opts}
