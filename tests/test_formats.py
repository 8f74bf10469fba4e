"""Formats: each family turns real rows into the Sample LLaMA-Factory would build."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dedup_audit.errors import ConfigError, FormatError, InputError
from dedup_audit.readers import load_dataset
from dedup_audit.records import Turn

IO = Path(__file__).resolve().parent / "data" / "io"
LF = IO / "llamafactory"


def rows_of(path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    data: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
    return data


def write_json(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps(rows, ensure_ascii=False, indent=2), encoding="utf-8")
    return path


def test_alpaca_prompt_joins_instruction_and_input() -> None:
    ds = load_dataset(LF / "alpaca_en_demo.json")
    rows = rows_of(LF / "alpaca_en_demo.json")
    assert ds.format == "alpaca"
    assert ds.columns == {"prompt": "instruction", "query": "input", "response": "output"}
    with_input = [i for i, r in enumerate(rows) if r["input"]]
    without = [i for i, r in enumerate(rows) if not r["input"]]
    assert with_input and without
    for i in with_input + without:
        r, s = rows[i], ds.records[i].sample
        user = r["instruction"] + ("\n" + r["input"] if r["input"] else "")
        assert s.turns == (Turn("user", user), Turn("assistant", r["output"]))
        assert s.system == "" and s.rejected == ""


def test_alpaca_history_comes_before_the_current_turn() -> None:
    path = IO / "oaast_sft_zh.json"
    ds = load_dataset(path)
    assert ds.columns["history"] == "history"
    for rec, row in zip(ds.records, rows_of(path), strict=True):
        expected = []
        for old_user, old_answer in row["history"]:
            expected += [Turn("user", old_user), Turn("assistant", old_answer)]
        expected += [Turn("user", row["instruction"]), Turn("assistant", row["output"])]
        assert rec.sample.turns == tuple(expected)
    assert any(len(r.sample.turns) > 2 for r in ds.records)


def test_alpaca_with_response_key_is_detected() -> None:
    ds = load_dataset(IO / "gpteacher_toolformer.json")
    assert ds.format == "alpaca" and ds.columns["response"] == "response"
    row = ds.records[0].row
    assert ds.records[0].sample.turns[-1] == Turn("assistant", row["response"])


def test_sharegpt_roles_and_texts() -> None:
    path = IO / "dummy_conversation.json"
    ds = load_dataset(path)
    assert ds.format == "sharegpt" and ds.tags["role_tag"] == "from"
    for rec, row in zip(ds.records, rows_of(path), strict=True):
        roles = {"human": "user", "gpt": "assistant"}
        assert rec.sample.turns == tuple(
            Turn(roles[m["from"]], m["value"]) for m in row["conversations"]
        )


def test_sharegpt_tools_observation_and_function_call() -> None:
    path = LF / "glaive_toolcall_en_demo.json"
    ds = load_dataset(path)
    assert ds.format == "sharegpt" and ds.columns["tools"] == "tools"
    rows = rows_of(path)
    with_tools = [r for r in ds.records if r.row["tools"]]
    assert with_tools
    for rec, row in zip(ds.records, rows, strict=True):
        assert rec.sample.tools == row["tools"]
    roles = {t.role for r in ds.records for t in r.sample.turns}
    assert {"tool", "function"} <= roles


def test_messages_system_tool_calls_and_content_parts(tmp_path: Path) -> None:
    """OpenAI-style rows derived from the FastChat chats: a leading system message becomes
    Sample.system, content parts are joined, tool calls become JSON."""
    rows = []
    for r in rows_of(IO / "dummy_conversation.json")[:4]:
        msgs: list[dict[str, Any]] = [{"role": "system", "content": "Be brief."}]
        msgs += [
            {"role": "user" if m["from"] == "human" else "assistant", "content": m["value"]}
            for m in r["conversations"]
        ]
        rows.append({"messages": msgs})
    rows[1]["messages"][1]["content"] = [
        {"type": "text", "text": "part one"},
        {"type": "text", "text": "two"},
    ]
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    rows[2]["messages"].append({"role": "user", "content": "call it"})
    rows[2]["messages"].append({"role": "assistant", "content": None, "tool_calls": [call]})
    rows[2]["messages"].append({"role": "tool", "content": "42"})
    ds = load_dataset(write_json(tmp_path / "m.json", rows))
    assert ds.format == "messages"
    s0 = ds.records[0].sample
    assert s0.system == "Be brief." and s0.turns[0].role == "user"
    assert ds.records[1].sample.turns[0].text == "part one\ntwo"
    tail = ds.records[2].sample.turns[-2:]
    assert tail[0] == Turn("function", json.dumps([call["function"]]))
    assert tail[1] == Turn("tool", "42")


def test_text_is_one_assistant_turn() -> None:
    path = LF / "c4_demo.jsonl"
    ds = load_dataset(path)
    assert ds.format == "text" and ds.file_type == "jsonl"
    for rec, row in zip(ds.records, rows_of(path), strict=True):
        assert rec.sample.turns == (Turn("assistant", row["text"]),)


def test_pairwise_sharegpt_chosen_is_last_turn() -> None:
    path = LF / "dpo_en_demo.json"
    ds = load_dataset(path)
    assert ds.format == "pairwise"
    for rec, row in zip(ds.records, rows_of(path), strict=True):
        assert rec.sample.turns[-1] == Turn("assistant", row["chosen"]["value"])
        assert rec.sample.rejected == row["rejected"]["value"]
        assert rec.sample.turns[0].text == row["conversations"][0]["value"]


def test_pairwise_alpaca_and_trl_prompt_rows(tmp_path: Path) -> None:
    base = rows_of(LF / "dpo_en_demo.json")
    alpaca = [
        {
            "instruction": r["conversations"][0]["value"],
            "input": "",
            "chosen": r["chosen"]["value"],
            "rejected": r["rejected"]["value"],
        }
        for r in base
    ]
    trl = [
        {"prompt": r["instruction"], "chosen": r["chosen"], "rejected": r["rejected"]}
        for r in alpaca
    ]
    implicit = [
        {
            "chosen": [
                {"role": "user", "content": r["instruction"]},
                {"role": "assistant", "content": r["chosen"]},
            ],
            "rejected": [
                {"role": "user", "content": r["instruction"]},
                {"role": "assistant", "content": r["rejected"]},
            ],
        }
        for r in alpaca
    ]
    expected = [
        (Turn("user", r["instruction"]), Turn("assistant", r["chosen"]), r["rejected"])
        for r in alpaca
    ]
    for name, rows in (("a", alpaca), ("t", trl), ("i", implicit)):
        ds = load_dataset(write_json(tmp_path / f"{name}.json", rows))
        assert ds.format == "pairwise", name
        got = [(*r.sample.turns, r.sample.rejected) for r in ds.records]
        assert got == expected, name


def test_format_override_wins(tmp_path: Path) -> None:
    ds = load_dataset(LF / "c4_demo.jsonl", format="text")
    assert ds.format == "text"
    rows = [{**r, "text": "extra"} for r in rows_of(LF / "identity.json")]
    auto = load_dataset(write_json(tmp_path / "x.json", rows))
    assert auto.format == "alpaca"
    forced = load_dataset(tmp_path / "x.json", format="text")
    assert forced.format == "text" and forced.records[0].sample.turns == (
        Turn("assistant", "extra"),
    )


def test_columns_map_gsm8k_question_answer() -> None:
    path = IO / "gsm8k_test.jsonl"
    ds = load_dataset(path, columns={"prompt": "question", "response": "answer"})
    assert ds.format == "alpaca" and ds.columns == {"prompt": "question", "response": "answer"}
    for rec, row in zip(ds.records, rows_of(path), strict=True):
        assert rec.sample.turns == (Turn("user", row["question"]), Turn("assistant", row["answer"]))


def test_columns_prompt_only_is_text() -> None:
    ds = load_dataset(LF / "c4_demo.jsonl", columns={"prompt": "text"})
    assert ds.format == "text"


def test_unknown_format_names_keys_and_flag() -> None:
    with pytest.raises(FormatError) as err:
        load_dataset(IO / "gsm8k_test.jsonl")
    msg = str(err.value)
    assert "gsm8k_test.jsonl" in msg and "'answer'" in msg and "'question'" in msg
    assert "--column prompt=question --column response=answer" in msg


def test_ambiguous_format(tmp_path: Path) -> None:
    rows = [
        {**r, "conversations": [{"from": "human", "value": r["instruction"]}]}
        for r in rows_of(LF / "identity.json")
    ]
    with pytest.raises(FormatError, match=r"ambiguous.*'conversations'.*--format"):
        load_dataset(write_json(tmp_path / "amb.json", rows))


def test_forced_format_that_does_not_fit() -> None:
    with pytest.raises(
        FormatError,
        match=r"--format sharegpt needs .*keys found: \['input', 'instruction', 'output'\]",
    ):
        load_dataset(LF / "identity.json", format="sharegpt")
    with pytest.raises(ConfigError, match="--format must be"):
        load_dataset(LF / "identity.json", format="yaml")


def test_unknown_column_role() -> None:
    with pytest.raises(ConfigError, match="unknown column role"):
        load_dataset(IO / "gsm8k_test.jsonl", columns={"question": "prompt"})


def test_missing_mapped_column_lists_keys() -> None:
    with pytest.raises(InputError) as err:
        load_dataset(
            IO / "gsm8k_test.jsonl", columns={"prompt": "question", "response": "solution"}
        )
    msg = str(err.value)
    assert (
        "'solution'" in msg
        and "keys found: ['answer', 'question']" in msg
        and "--column response=KEY" in msg
    )


def test_unknown_role_tag_names_row(tmp_path: Path) -> None:
    rows = rows_of(IO / "dummy_conversation.json")
    rows[3]["conversations"][1]["from"] = "bot"
    with pytest.raises(InputError, match=r"row 3: conversations\[1\] has role 'bot'"):
        load_dataset(write_json(tmp_path / "c.json", rows))


def test_json_text_answers_stay_text(tmp_path: Path) -> None:
    """An alpaca chosen answer that is itself JSON text is an answer, not a message."""
    rows = [
        {
            "instruction": r["instruction"],
            "chosen": json.dumps({"answer": r["output"]}),
            "rejected": "[1, 2]",
        }
        for r in rows_of(LF / "identity.json")
    ]
    ds = load_dataset(write_json(tmp_path / "j.json", rows))
    assert ds.format == "pairwise"
    for rec, row in zip(ds.records, rows, strict=True):
        assert rec.sample.turns[-1].text == row["chosen"] and rec.sample.rejected == "[1, 2]"


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["instruction", "input", "output", "system", "history", "tools"]),
        st.one_of(
            st.none(),
            st.sampled_from(["", " ", "Add 2 and 3.", "5", "\n", "系统"]),
            st.integers(),
            st.just([["hi", "hello"]]),
        ),
    ),
    st.booleans(),
)
def test_the_fast_alpaca_path_equals_the_checked_path(row: dict, with_extras: bool) -> None:
    """alpaca._plain_sample (the common row, unchecked) gives exactly the checked path's Sample,
    and declines (None) every row the checked path would treat differently or reject."""
    from dedup_audit.formats import alpaca
    from dedup_audit.formats.spec import Spec

    cols = {"prompt": "instruction", "query": "input", "response": "output"}
    if with_extras:
        cols |= {"system": "system", "history": "history", "tools": "tools"}
    spec = Spec("alpaca", "alpaca", cols, {})
    try:
        want = alpaca.checked_sample(row, spec, "gen.json: row 1")
    except InputError:
        want = None
    got = alpaca._plain_sample(row, cols)
    assert got is None or got == want
    plain = {"instruction": "Add 2 and 3.", "input": "", "output": "5"}
    assert alpaca._plain_sample(plain, cols) == alpaca.checked_sample(plain, spec, "x")
