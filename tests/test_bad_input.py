"""Issue 2 item 8: every bad input gives one precise error naming file, row/line and fix, leaves
no output behind and never touches the input. Bad files are real rows, corrupted."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from dedup_audit.errors import DedupAuditError, FormatError, InputError, OutputError
from dedup_audit.readers import load_dataset
from dedup_audit.writers import write_dataset

IO = Path(__file__).resolve().parent / "data" / "io"
LF = IO / "llamafactory"


def real_rows(name: str = "identity.json") -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads((LF / name).read_text(encoding="utf-8"))
    return rows


def dump(path: Path, rows: Any) -> Path:
    path.write_text(json.dumps(rows, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path


def expect(exc: type[DedupAuditError], path: Path, *parts: str, **kw: Any) -> str:
    """Load must raise exactly `exc`, name the file, stay on one line, and leave it unchanged."""
    before = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
    siblings = sorted(p.name for p in path.parent.iterdir())
    with pytest.raises(DedupAuditError) as err:
        load_dataset(path, **kw)
    assert type(err.value) is exc, repr(err.value)
    msg = str(err.value)
    assert str(path) in msg and "\n" not in msg, msg
    for part in parts:
        assert part in msg, (part, msg)
    if before is not None:
        assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in path.parent.iterdir()) == siblings  # nothing written
    return msg


def test_malformed_json_names_line_and_column(tmp_path: Path) -> None:
    text = (LF / "identity.json").read_text(encoding="utf-8")
    broken = text.replace('"output": "Hello! I am', '"output" "Hello! I am', 1)
    line = (
        broken[: broken.index('"output" "Hello')].count("\n") + 1
    )  # the parser stops at the space after "output" (column 14)
    path = tmp_path / "identity.json"
    path.write_text(broken, encoding="utf-8")
    expect(InputError, path, f"malformed JSON at line {line}, column 14", "Expecting ':' delimiter")


def test_truncated_json(tmp_path: Path) -> None:
    data = (LF / "alpaca_en_demo.json").read_bytes()
    path = tmp_path / "cut.json"
    path.write_bytes(data[: len(data) // 2])
    expect(InputError, path, "malformed JSON at line")


def test_malformed_jsonl_names_line(tmp_path: Path) -> None:
    lines = (LF / "c4_demo.jsonl").read_text(encoding="utf-8").splitlines()
    lines[3] = lines[3][:-1]  # drop the closing brace
    path = tmp_path / "c4.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    expect(InputError, path, "malformed JSON at line 4, column")


def test_jsonl_line_that_is_not_an_object(tmp_path: Path) -> None:
    lines = (LF / "c4_demo.jsonl").read_text(encoding="utf-8").splitlines()
    lines.insert(2, json.dumps([1, 2]))
    path = tmp_path / "c4.jsonl"
    path.write_text("\n".join(lines), encoding="utf-8")
    expect(InputError, path, "line 3 is a list, expected a JSON object")


def test_non_utf8_bytes_name_offset_and_fix(tmp_path: Path) -> None:
    data = (LF / "identity.json").read_bytes()
    offset = data.index(b"assistant")
    path = tmp_path / "latin.json"
    path.write_bytes(data[:offset] + "é".encode("latin-1") + data[offset:])
    line = data[:offset].count(b"\n") + 1
    expect(
        InputError,
        path,
        f"not valid UTF-8 at byte {offset} (line {line})",
        "re-encode the file as UTF-8",
    )


def test_empty_file_and_empty_list(tmp_path: Path) -> None:
    for name, content in (
        ("empty.json", ""),
        ("blank.jsonl", "\n\n"),
        ("list.json", "[]\n"),
        ("head.csv", "instruction,output\n"),
    ):
        path = tmp_path / name
        path.write_text(content, encoding="utf-8")
        expect(InputError, path, "nothing to audit")


def test_unknown_format(tmp_path: Path) -> None:
    rows = [{"q": r["instruction"], "a": r["output"]} for r in real_rows()]
    expect(
        FormatError,
        dump(tmp_path / "qa.json", rows),
        "keys found: ['a', 'q']",
        "--format",
        "--column prompt=KEY",
    )


def test_ambiguous_format(tmp_path: Path) -> None:
    rows = [{**r, "messages": [{"role": "user", "content": r["instruction"]}]} for r in real_rows()]
    expect(
        FormatError,
        dump(tmp_path / "amb.json", rows),
        "ambiguous",
        "'instruction'",
        "'messages'",
        "--format",
    )


def test_missing_column_lists_keys_and_flag() -> None:
    expect(
        InputError,
        IO / "gsm8k_test.jsonl",
        "column 'question_text' (role prompt) not found",
        "keys found: ['answer', 'question']",
        "--column prompt=KEY",
        columns={"prompt": "question_text", "response": "answer"},
    )


def test_missing_field_in_one_row(tmp_path: Path) -> None:
    rows = real_rows()
    del rows[4]["output"]
    del rows[2]["input"]  # an optional field may be absent
    expect(
        InputError,
        dump(tmp_path / "m.json", rows),
        "row 4: missing field 'output'",
        "keys found: ['input', 'instruction']",
    )


def test_non_string_field(tmp_path: Path) -> None:
    rows = real_rows()
    rows[7]["output"] = [rows[7]["output"]]
    expect(
        InputError,
        dump(tmp_path / "l.json", rows),
        "row 7: field 'output' is a list, expected a string",
    )
    rows = real_rows()
    rows[3]["instruction"] = 42
    expect(
        InputError,
        dump(tmp_path / "n.json", rows),
        "row 3: field 'instruction' is a number, expected a string",
    )


def test_null_required_field(tmp_path: Path) -> None:
    rows = real_rows()
    rows[5]["output"] = None
    rows[1]["input"] = None  # null optional field is fine
    expect(InputError, dump(tmp_path / "null.json", rows), "row 5: field 'output' is null")


def test_all_text_empty_row(tmp_path: Path) -> None:
    rows = real_rows()
    rows[6] = {"instruction": "", "input": "", "output": " "}
    rows[2]["input"] = ""  # an empty input alone is normal alpaca
    expect(InputError, dump(tmp_path / "e.json", rows), "row 6: every text field is empty")


def test_bad_sharegpt_rows(tmp_path: Path) -> None:
    rows: list[dict[str, Any]] = json.loads(
        (IO / "dummy_conversation.json").read_text(encoding="utf-8")
    )
    bad = [dict(r) for r in rows]
    bad[2] = {**bad[2], "conversations": []}
    expect(
        InputError, dump(tmp_path / "a.json", bad), "row 2: field 'conversations' has no messages"
    )
    bad = json.loads(json.dumps(rows))
    bad[5]["conversations"][0]["value"] = {"text": "hi"}
    expect(
        InputError,
        dump(tmp_path / "b.json", bad),
        "row 5: conversations[0]",
        "is an object, expected a string",
    )
    bad = json.loads(json.dumps(rows))
    bad[0]["conversations"][2] = {"speaker": "human", "value": "x"}
    expect(
        InputError,
        dump(tmp_path / "c.json", bad),
        "row 0: conversations[2] has no 'from' key",
        "role_tag",
    )


def test_bad_csv_row(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    rows = real_rows()
    path.write_text(
        "instruction,input,output\n"
        + "\n".join(f'"{r["instruction"]}","","{r["output"]}"' for r in rows[:3])
        + "\nhello,,world,extra\n",
        encoding="utf-8",
    )
    expect(InputError, path, "row 3 (line 5) has 4 fields, the header has 3")


def test_top_level_not_a_list(tmp_path: Path) -> None:
    path = dump(tmp_path / "obj.json", {"data": real_rows()})
    expect(InputError, path, "expected a JSON list of objects")
    path = dump(tmp_path / "strs.json", [r["instruction"] for r in real_rows()])
    expect(InputError, path, "row 0 is a str", "expected an object")


def test_unsupported_and_missing_paths(tmp_path: Path) -> None:
    path = tmp_path / "data.yaml"
    path.write_text("a: 1\n")
    expect(InputError, path, "unsupported file type .yaml")
    expect(InputError, tmp_path / "nope.json", "no such file")


def test_bad_binary_files(tmp_path: Path) -> None:
    for name in ("x.parquet", "x.arrow"):
        path = tmp_path / name
        path.write_bytes((LF / "identity.json").read_bytes())
        expect(InputError, path, "not a")


def test_output_errors_leave_input_untouched(tmp_path: Path) -> None:
    src = tmp_path / "identity.json"
    src.write_bytes((LF / "identity.json").read_bytes())
    before = src.read_bytes()
    ds = load_dataset(src)
    with pytest.raises(OutputError, match="the output is the input file"):
        write_dataset(ds, [0, 1], src)
    out = tmp_path / "out.json"
    out.write_text("keep me")
    with pytest.raises(OutputError, match=r"out\.json exists; pass --force to overwrite"):
        write_dataset(ds, [0, 1], out)
    assert out.read_text() == "keep me" and src.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["identity.json", "out.json"]


# --- Issue 12 item 1: every output option of every command -------------------------------------
# Each bad output is refused before any work with one line on stderr that names the option, the
# path and the fix, exit code 2, nothing written anywhere and the input unchanged.

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "sample_data" / "run"


@pytest.fixture(scope="module")
def saved_scan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from click.testing import CliRunner

    from dedup_audit.cli import cli

    out = tmp_path_factory.mktemp("saved") / "scan"
    res = CliRunner().invoke(cli, ["scan", str(LF / "identity.json"), "-o", str(out), "-q"])
    assert res.exit_code == 0, res.output
    return out / "report.json"


def unwritable_folder(tmp_path: Path) -> Path:
    """A folder no file can be created in: mode 0555, or (as root, who ignores modes) /sys."""
    ro = tmp_path / "readonly"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        (ro / "probe").write_text("x")
    except OSError:
        return ro
    (ro / "probe").unlink()
    ro.chmod(0o755)
    assert Path("/sys").is_dir(), "needs a non-root user or Linux /sys for a read-only folder"
    return Path("/sys")


def _tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else ""
        for p in sorted(root.rglob("*"))
    }


def _run_refused(args: list[str], tmp_path: Path, *parts: str) -> str:
    from click.testing import CliRunner

    from dedup_audit.cli import cli

    before = _tree(tmp_path)
    inputs = {p: p.read_bytes() for p in (LF / "identity.json", RUN / "train.json")}
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 2, res.output
    err = res.stderr
    assert err.startswith("Error: ") and err.count("\n") == 1, err  # one line, no traceback
    assert "Traceback" not in res.output
    for part in parts:
        assert part in err, (part, err)
    assert _tree(tmp_path) == before  # nothing written, nothing half-written
    assert all(p.read_bytes() == b for p, b in inputs.items())
    return err


def _cases(tmp: Path, saved: Path) -> list[tuple[str, list[str], list[str]]]:
    """(name, argv, parts the message must hold) for every output option of every command."""
    data = str(LF / "identity.json")
    afile = tmp / "afile.txt"
    afile.write_text("a plain file\n", encoding="utf-8")
    ro = unwritable_folder(tmp)
    exists = tmp / "exists.json"
    exists.write_text("[]\n", encoding="utf-8")
    scandir = tmp / "scandir"
    scandir.mkdir()
    (scandir / "report.json").write_text("{}\n", encoding="utf-8")
    run = [str(RUN), "--data", str(RUN / "train.json")]
    under = str(afile / "sub")
    return [
        ("scan -o under a file", ["scan", data, "-o", under], ["-o/--output", "is a file"]),
        ("scan -o is a file", ["scan", data, "-o", str(afile)], ["-o/--output", "give a folder"]),
        (
            "scan -o read-only",
            ["scan", data, "-o", str(ro / "out")],
            ["-o/--output", "cannot write"],
        ),
        ("scan -o has a report", ["scan", data, "-o", str(scandir)], ["report.json", "--force"]),
        ("clean -o under a file", ["clean", data, "-o", f"{under}/c.json"], ["is a file"]),
        ("clean -o is a folder", ["clean", data, "-o", str(scandir)], ["give a file path"]),
        ("clean -o read-only", ["clean", data, "-o", str(ro / "c.json")], ["cannot write"]),
        ("clean -o exists", ["clean", data, "-o", str(exists)], ["exists", "--force"]),
        ("clean -o is the input", ["clean", data, "-o", data, "--force"], ["is the input"]),
        ("clean -o bad suffix", ["clean", data, "-o", str(tmp / "c.xyz")], ["output file type"]),
        (
            "clean --removed under a file",
            ["clean", data, "-o", str(tmp / "c.json"), "--removed", f"{under}/r.jsonl"],
            ["--removed", "is a file"],
        ),
        (
            "clean --removed read-only",
            ["clean", data, "-o", str(tmp / "c.json"), "--removed", str(ro / "r.jsonl")],
            ["--removed", "cannot write"],
        ),
        (
            "clean --removed same as -o",
            ["clean", data, "-o", str(tmp / "c.json"), "--removed", str(tmp / "c.json")],
            ["--removed", "also -o/--output"],
        ),
        (
            "clean --report-dir under a file",
            ["clean", data, "-o", str(tmp / "c.json"), "--report-dir", under],
            ["--report-dir", "is a file"],
        ),
        (
            "clean --report-dir is a file",
            ["clean", data, "-o", str(tmp / "c.json"), "--report-dir", str(afile)],
            ["--report-dir", "give a folder"],
        ),
        (
            "clean --report-dir read-only",
            ["clean", data, "-o", str(tmp / "c.json"), "--report-dir", str(ro / "rep")],
            ["--report-dir", "cannot write"],
        ),
        (
            "rethreshold -o under a file",
            ["rethreshold", str(saved), "--threshold", "0.9", "-o", under],
            ["-o/--output", "is a file"],
        ),
        (
            "rethreshold -o read-only",
            ["rethreshold", str(saved), "--threshold", "0.9", "-o", str(ro / "r")],
            ["cannot write"],
        ),
        (
            "rethreshold -o the scan's folder",
            ["rethreshold", str(saved), "--threshold", "0.9", "-o", str(saved.parent)],
            ["must differ from the saved scan's folder"],
        ),
        ("losses -o under a file", ["losses", *run, "-o", f"{under}/l.jsonl"], ["is a file"]),
        ("losses -o is a folder", ["losses", *run, "-o", str(scandir)], ["give a file path"]),
        ("losses -o read-only", ["losses", *run, "-o", str(ro / "l.jsonl")], ["cannot write"]),
        ("losses -o exists", ["losses", *run, "-o", str(exists)], ["exists", "--force"]),
        (
            "losses -o is the data",
            ["losses", *run, "-o", str(RUN / "train.json"), "--force"],
            ["is the input"],
        ),
        ("report -o under a file", ["report", str(RUN), "-o", under], ["is a file"]),
        ("report -o is a file", ["report", str(RUN), "-o", str(afile)], ["give a folder"]),
        ("report -o read-only", ["report", str(RUN), "-o", str(ro / "m")], ["cannot write"]),
        ("report -o has a report", ["report", str(RUN), "-o", str(scandir)], ["--force"]),
        (
            "calibrate --report missing",
            ["calibrate", "--report", str(tmp / "none" / "report.json")],
            ["report.json"],
        ),
        ("calibrate --report not a scan", ["calibrate", "--report", str(exists)], ["exists.json"]),
    ]


CASE_NAMES = [
    "scan -o under a file",
    "scan -o is a file",
    "scan -o read-only",
    "scan -o has a report",
    "clean -o under a file",
    "clean -o is a folder",
    "clean -o read-only",
    "clean -o exists",
    "clean -o is the input",
    "clean -o bad suffix",
    "clean --removed under a file",
    "clean --removed read-only",
    "clean --removed same as -o",
    "clean --report-dir under a file",
    "clean --report-dir is a file",
    "clean --report-dir read-only",
    "rethreshold -o under a file",
    "rethreshold -o read-only",
    "rethreshold -o the scan's folder",
    "losses -o under a file",
    "losses -o is a folder",
    "losses -o read-only",
    "losses -o exists",
    "losses -o is the data",
    "report -o under a file",
    "report -o is a file",
    "report -o read-only",
    "report -o has a report",
    "calibrate --report missing",
    "calibrate --report not a scan",
]


@pytest.mark.parametrize("name", CASE_NAMES)
def test_every_bad_output_is_refused_before_any_work(
    name: str, tmp_path: Path, saved_scan: Path
) -> None:
    cases = {n: (argv, parts) for n, argv, parts in _cases(tmp_path, saved_scan)}
    assert sorted(cases) == sorted(CASE_NAMES)
    argv, parts = cases[name]
    try:
        _run_refused(argv, tmp_path, *parts)
    finally:
        (tmp_path / "readonly").chmod(0o755)


def test_a_write_that_fails_late_leaves_no_output_at_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk fills up while the report is written, after the cleaned file and the record of
    removals were written: none of the three may be left behind (they are committed together)."""
    import errno

    import dedup_audit.writers as writers

    real = writers.atomic_write_text

    def disk_full_on_html(path: str | Path, text: str) -> None:
        if Path(path).name == "report.html":
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, text)

    monkeypatch.setattr(writers, "atomic_write_text", disk_full_on_html)
    out = tmp_path / "new" / "clean.json"
    args = ["clean", str(LF / "identity.json"), "-o", str(out), "--report-dir", str(tmp_path / "r")]
    err = _run_refused(args, tmp_path, "No space left on device", "report.html")
    assert err.startswith(f"Error: {tmp_path / 'r'}: cannot write report.html")
    assert list(tmp_path.iterdir()) == []  # not even the folders made for the outputs


def test_missing_folders_are_created_and_no_temp_file_lingers(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from dedup_audit.cli import cli

    out = tmp_path / "a" / "clean.json"
    removed = tmp_path / "b" / "c" / "removed.jsonl"
    res = CliRunner().invoke(
        cli,
        ["clean", str(LF / "identity.json"), "-o", str(out), "--removed", str(removed), "-q"],
    )
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in removed.read_text(encoding="utf-8").splitlines()]
    assert len(json.loads(out.read_text(encoding="utf-8"))) + len(rows) == len(real_rows())
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == [
        "a",
        "a/clean.json",
        "b",
        "b/c",
        "b/c/removed.jsonl",
    ]


# --- Issue 12 item 6: messages that help -------------------------------------------------------


def test_truncated_json_says_it_looks_truncated(tmp_path: Path) -> None:
    data = (LF / "alpaca_en_demo.json").read_text(encoding="utf-8")
    inside_string = data[: data.index('"output": "') + len('"output": "Sur')]
    path = tmp_path / "cut.json"
    path.write_text(inside_string, encoding="utf-8")
    line = inside_string.count("\n") + 1
    expect(InputError, path, f"malformed JSON at line {line}", "looks truncated", "get the whole")
    between_rows = data[: data.index("},", 2000) + 2]
    path.write_text(between_rows, encoding="utf-8")
    expect(InputError, path, "the file ends too early", "looks truncated")


def test_json_syntax_errors_name_the_likely_cause(tmp_path: Path) -> None:
    text = (LF / "identity.json").read_text(encoding="utf-8")
    cases = {
        "comma.json": (text.replace("}\n]", "},\n]", 1), "a trailing comma before ] or }"),
        "quote.json": (text.replace('"input": ""', "'input': \"\"", 1), "single-quoted keys"),
    }
    for name, (broken, cause) in cases.items():
        assert broken != text
        expect(InputError, dump_text(tmp_path / name, broken), cause)


def dump_text(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_forced_format_that_does_not_fit_names_the_one_that_does(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from dedup_audit.cli import cli

    msg = expect(FormatError, LF / "alpaca_en_demo.json", "look like alpaca", format="sharegpt")
    assert "--column" not in msg  # the old hint (--column prompt=input ...) then failed too
    expect(
        FormatError,
        IO / "dummy_conversation.json",
        "--format alpaca needs an 'instruction' column",
        "look like sharegpt data: drop --format (auto-detect) or pass --format sharegpt",
        format="alpaca",
    )
    # and the fix it names works
    res = CliRunner().invoke(
        cli,
        ["scan", str(LF / "alpaca_en_demo.json"), "--format", "alpaca", "-q", "-o", str(tmp_path)],
    )
    assert res.exit_code == 0, res.output


def test_json_and_parquet_outputs_get_their_own_removal_records(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from dedup_audit.cli import cli

    src = LF / "identity.json"
    for suffix in ("json", "parquet"):
        out = tmp_path / f"identity.clean.{suffix}"
        res = CliRunner().invoke(cli, ["clean", str(src), "-o", str(out), "-q"])
        assert res.exit_code == 0, res.output
        assert f"-> {out}.removed.jsonl" in res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "identity.clean.json",
        "identity.clean.json.removed.jsonl",
        "identity.clean.parquet",
        "identity.clean.parquet.removed.jsonl",
    ]


def test_calibrate_prints_thresholds_in_words_not_a_dict(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from dedup_audit.cli import cli

    runner = CliRunner()
    out = tmp_path / "scan"
    assert (
        runner.invoke(cli, ["scan", str(LF / "identity.json"), "-o", str(out), "-q"]).exit_code == 0
    )
    res = runner.invoke(
        cli, ["calibrate", "--report", str(out / "report.json"), "--margin", "0.001"]
    )
    assert res.exit_code == 0, res.output
    assert "No scored pair within ±0.001 of the thresholds (minhash 0.8)." in res.output
    assert "{" not in res.output
