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
