"""Issue 12 item 2: the README's shell commands run as written, as a newcomer runs them.

In a fresh folder that holds the checkout (linked) and the .venv `make setup` built, with a PATH
that does not hold .venv/bin: the Quickstart block runs line by line in one bash (so
`source .venv/bin/activate` is what puts `dedup-audit` on PATH), then every other README
command whose inputs exist in the checkout (sample_data/...; lines about your own data.json or
saves/run cannot run here and are listed as skipped).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OUTPUT_OPTIONS = {
    "-o",
    "--output",
    "--removed",
    "--report-dir",
    "--cache-dir",
    "--save-index",
    "--work-dir",
}
LINKED = (
    "Makefile",
    "pyproject.toml",
    "setup.py",
    "constraints-cpu.txt",
    ".venv",
    "dedup_audit",
    "sample_data",
    "tests",  # the labelled pairs `calibrate --labels` reads (tests/data)
)


def bash_blocks(readme: str) -> list[tuple[str, list[str]]]:
    """(section heading, command lines without comments) of every ```bash block."""
    blocks = []
    heading = ""
    for part in re.split(r"(^#+ [^\n]*$|^```bash\n.*?^```$)", readme, flags=re.M | re.S):
        if part.startswith("#"):
            heading = part.lstrip("# ").strip()
        elif part.startswith("```bash"):
            lines = [re.sub(r"\s+#.*$", "", ln).strip() for ln in part.splitlines()[1:-1]]
            blocks.append((heading, [ln for ln in lines if ln]))
    return blocks


def inputs_exist(line: str, cwd: Path) -> bool:
    """Every path the command reads (not the ones it writes) exists."""
    tokens = shlex.split(line)
    skip_next = False
    for tok in tokens[2:]:
        if skip_next:
            skip_next = False
            continue
        if tok in OUTPUT_OPTIONS:
            skip_next = True
            continue
        looks_like_path = "/" in tok or re.search(r"\.(json|jsonl|yaml|parquet|csv)$", tok)
        if looks_like_path and not tok.startswith("-") and not (cwd / tok).exists():
            return False
    return True


@pytest.mark.slow
def test_readme_commands_run_as_written(tmp_path: Path) -> None:
    assert (ROOT / ".venv" / "bin" / "dedup-audit").exists(), "run `make setup` first"
    work = tmp_path / "checkout"
    work.mkdir()
    for name in LINKED:
        if (ROOT / name).exists():
            (work / name).symlink_to(ROOT / name)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "OUT")}
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin"
    env["DEDUP_AUDIT_CACHE"] = str(tmp_path / "cache")
    env["HOME"] = str(tmp_path / "home")

    def bash(script: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-e", "-c", script], cwd=work, env=env, capture_output=True, text=True
        )

    assert bash("command -v dedup-audit").returncode != 0, "dedup-audit already on PATH"
    blocks = bash_blocks((ROOT / "README.md").read_text(encoding="utf-8"))
    quick = next(lines for heading, lines in blocks if heading == "Quickstart")
    assert quick[0] == "make demo" and quick[1] == "source .venv/bin/activate"
    res = bash("\n".join(quick))
    assert res.returncode == 0, f"{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    ran = [*quick]
    skipped: list[str] = []
    for heading, lines in blocks:
        if heading in ("Quickstart", "Development"):
            continue
        for line in lines:
            if line.startswith("make "):
                continue  # make test / make lint: the suite itself
            if not (line.startswith("dedup-audit ") and inputs_exist(line, work)):
                skipped.append(line)
                continue
            res = bash(f"source .venv/bin/activate\n{line}")
            assert res.returncode == 0, f"{line}\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
            ran.append(line)
    # what the Quickstart promises is there
    for path in (
        "out/scan/report.html",
        "out/scan/report.md",
        "out/clean/alpaca_en_demo.json",
        "out/clean/alpaca_en_demo.json.removed.jsonl",
        "out/clean/report.html",
        "out/memorization/report.html",
        "out/identity/report.html",
    ):
        assert (work / path).is_file(), path
    # every example that can run on the bundled data did, not just the Quickstart
    assert "dedup-audit scan sample_data/alpaca_en_demo.json -o out/alpaca" in ran
    assert "dedup-audit scan sample_data/self_cognition.json --semantic -o out/semantic" in ran
    assert "dedup-audit calibrate --report out/scan/report.json" in ran
    assert any("--labels tests/data/minhash_gpteacher_300.labels.jsonl" in s for s in ran)
    assert "dedup-audit scan sample_data/identity.json --index out/index -o out/new" in ran
    assert all(
        "data.json" in s or "train.json" in s or "saves/" in s or "llamafactory" in s
        for s in skipped
    ), skipped
