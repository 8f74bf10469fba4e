"""Readers: every file type and LLaMA-Factory's dataset_info.json give the same rows and Samples."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from dedup_audit.errors import ConfigError, InputError
from dedup_audit.readers import load_dataset
from dedup_audit.records import Dataset

IO = Path(__file__).resolve().parent / "data" / "io"
LF = IO / "llamafactory"
INFO = LF / "dataset_info.json"


def rows_of(path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    data: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
    return data


def samples(ds: Dataset) -> list[Any]:
    return [r.sample for r in ds.records]


def flat(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Alpaca rows with string cells only, so every file type can hold them."""
    return [{k: v for k, v in r.items() if isinstance(v, str)} for r in rows]


def test_json_rows_ids_and_sources() -> None:
    path = LF / "alpaca_en_demo.json"
    ds = load_dataset(path)
    rows = rows_of(path)
    assert ds.file_type == "json" and ds.paths == (str(path),) and ds.name == "alpaca_en_demo"
    assert [r.row for r in ds.records] == rows
    assert [list(r.row) for r in ds.records] == [list(r) for r in rows]  # key order kept
    assert [r.index for r in ds.records] == list(range(len(rows)))
    assert ds.records[5].id == "alpaca_en_demo.json:5"
    assert {r.source for r in ds.records} == {str(path)}


def test_json_writer_hints() -> None:
    h = load_dataset(LF / "alpaca_en_demo.json").writer_hints
    assert (h["indent"], h["ensure_ascii"], h["trailing_newline"], h["exact"]) == (
        2,
        False,
        True,
        True,
    )
    h = load_dataset(IO / "gsm8k_train_alpaca.json").writer_hints
    assert (h["indent"], h["trailing_newline"], h["exact"]) == (4, False, True)
    h = load_dataset(IO / "gpteacher_toolformer.json").writer_hints
    assert (h["indent"], h["ensure_ascii"], h["trailing_newline"], h["exact"]) == (
        2,
        True,
        False,
        True,
    )
    h = load_dataset(
        IO / "gsm8k_test.jsonl", columns={"prompt": "question", "response": "answer"}
    ).writer_hints
    assert (h["ensure_ascii"], h["trailing_newline"], h["exact"]) == (True, True, True)


@pytest.mark.parametrize(
    "kind", ["jsonl", "parquet", "csv", "tsv", "arrow", "arrow_stream", "hf_disk", "hf_dict"]
)
def test_every_file_type_loads_the_same_rows(tmp_path: Path, kind: str) -> None:
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    src = load_dataset(LF / "alpaca_en_demo.json")
    rows = flat(rows_of(LF / "alpaca_en_demo.json"))
    table = pa.Table.from_pylist(rows)
    if kind == "jsonl":
        path = tmp_path / "d.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    elif kind in ("csv", "tsv"):
        path = tmp_path / f"d.{kind}"
        with path.open("w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(
                fh, fieldnames=list(rows[0]), delimiter="," if kind == "csv" else "\t"
            )
            w.writeheader()
            w.writerows(rows)
    elif kind == "parquet":
        path = tmp_path / "d.parquet"
        pq.write_table(table, path)
    elif kind.startswith("arrow"):
        path = tmp_path / "d.arrow"
        opener = pa.ipc.new_stream if kind == "arrow_stream" else pa.ipc.new_file
        with pa.OSFile(str(path), "wb") as sink, opener(sink, table.schema) as writer:
            writer.write_table(table)
    else:
        path = tmp_path / "d_disk"
        hf = datasets.Dataset.from_list(rows)
        (
            datasets.DatasetDict({"train": hf, "test": hf.select([0])}) if kind == "hf_dict" else hf
        ).save_to_disk(str(path))
    ds = load_dataset(path)
    assert ds.format == "alpaca"
    assert [r.row for r in ds.records] == rows
    assert samples(ds) == samples(src)
    expected_type = {"tsv": "csv", "arrow_stream": "arrow", "hf_dict": "hf_disk"}.get(kind, kind)
    assert ds.file_type == expected_type
    if kind == "arrow_stream":
        assert ds.writer_hints["arrow_kind"] == "stream"
    if kind == "hf_dict":
        assert ds.writer_hints["split"] == "train"


def test_nested_parquet_sharegpt_rows(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    src = load_dataset(IO / "dummy_conversation.json")
    pq.write_table(
        pa.Table.from_pylist(rows_of(IO / "dummy_conversation.json")), tmp_path / "c.parquet"
    )
    ds = load_dataset(tmp_path / "c.parquet")
    assert ds.format == "sharegpt" and samples(ds) == samples(src)


def test_csv_with_json_encoded_conversations(tmp_path: Path) -> None:
    src = load_dataset(IO / "dummy_conversation.json")
    path = tmp_path / "c.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "conversations"])
        for r in rows_of(IO / "dummy_conversation.json"):
            w.writerow([r["id"], json.dumps(r["conversations"])])
    ds = load_dataset(path, id_column="id")
    assert samples(ds) == samples(src) and ds.records[0].id == "identity_0"


def test_txt_one_document_per_line(tmp_path: Path) -> None:
    docs = [r["text"] for r in rows_of(LF / "c4_demo.jsonl")]
    texts = [line for doc in docs for line in doc.split("\n") if line.strip()]
    path = tmp_path / "docs.txt"
    path.write_text("\n".join(texts[:3]) + "\n\n" + "\n".join(texts[3:]) + "\n", encoding="utf-8")
    ds = load_dataset(path)
    assert ds.format == "text" and ds.file_type == "txt"
    assert [r.sample.turns[0].text for r in ds.records] == texts
    assert ds.records[3].id == "docs.txt:3"
    assert ds.writer_hints["exact"] is False  # the blank line is not a document


def test_folder_of_files_in_name_order(tmp_path: Path) -> None:
    folder = tmp_path / "parts"
    folder.mkdir()
    rows = rows_of(LF / "alpaca_en_demo.json")
    (folder / "b.json").write_text(json.dumps(rows[10:], indent=2), encoding="utf-8")
    (folder / "a.json").write_text(json.dumps(rows[:10], indent=2), encoding="utf-8")
    ds = load_dataset(folder)
    assert [r.row for r in ds.records] == rows
    assert ds.records[10].id == "b.json:0" and ds.records[10].index == 10
    assert ds.paths == (str(folder / "a.json"), str(folder / "b.json"))
    (folder / "c.csv").write_text("instruction,output\na,b\n", encoding="utf-8")
    with pytest.raises(InputError, match="mixes file types"):
        load_dataset(folder)


def test_json_lines_inside_a_json_file(tmp_path: Path) -> None:
    path = tmp_path / "lines.json"
    shutil.copy(LF / "c4_demo.jsonl", path)
    ds = load_dataset(path)
    assert ds.file_type == "json" and ds.writer_hints["layout"] == "lines"
    assert [r.row for r in ds.records] == rows_of(LF / "c4_demo.jsonl")


def test_bom_is_dropped_and_remembered(tmp_path: Path) -> None:
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + (LF / "identity.json").read_bytes())
    ds = load_dataset(path)
    assert ds.writer_hints["bom"] is True and len(ds) == len(rows_of(LF / "identity.json"))


@pytest.mark.parametrize(
    ("name", "fmt", "file_type"),
    [
        ("identity", "alpaca", "json"),
        ("alpaca_en_demo", "alpaca", "json"),
        ("glaive_toolcall_en_demo", "sharegpt", "json"),
        ("dpo_en_demo", "pairwise", "json"),
        ("c4_demo", "text", "jsonl"),
    ],
)
def test_dataset_info_resolution(name: str, fmt: str, file_type: str) -> None:
    info = json.loads(INFO.read_text(encoding="utf-8"))[name]
    ds = load_dataset("", dataset_info=INFO, dataset_name=name)
    assert (ds.format, ds.file_type, ds.name) == (fmt, file_type, name)
    assert ds.paths == (str(LF / info["file_name"]),)
    direct = load_dataset(LF / info["file_name"])
    assert samples(ds) == samples(direct)
    if name == "glaive_toolcall_en_demo":
        assert ds.columns == {"messages": "conversations", "tools": "tools"}
        assert any(s.tools for s in samples(ds))
    if name == "c4_demo":
        assert ds.columns == {"prompt": "text"}
    if name == "dpo_en_demo":
        assert all(s.rejected for s in samples(ds))


def test_dataset_info_columns_drop_unlisted_roles(tmp_path: Path) -> None:
    """LLaMA-Factory semantics: with `columns`, a role the entry leaves out is unused."""
    shutil.copy(IO / "oaast_sft_zh.json", tmp_path / "o.json")
    cols = {"prompt": "instruction", "query": "input", "response": "output"}
    info = {
        "plain": {"file_name": "o.json"},
        "no_history": {"file_name": "o.json", "columns": cols},
        "history": {"file_name": "o.json", "columns": {**cols, "history": "history"}},
    }
    (tmp_path / "dataset_info.json").write_text(json.dumps(info), encoding="utf-8")
    plain = load_dataset("", dataset_info=tmp_path, dataset_name="plain")
    no_hist = load_dataset(
        "", dataset_info=tmp_path / "dataset_info.json", dataset_name="no_history"
    )
    hist = load_dataset("", dataset_info=tmp_path / "dataset_info.json", dataset_name="history")
    assert samples(plain) == samples(no_hist)
    assert all(len(s.turns) == 2 for s in samples(no_hist))
    assert samples(hist) == samples(load_dataset(tmp_path / "o.json"))
    assert any(len(s.turns) > 2 for s in samples(hist))


def test_dataset_info_tags_and_folder(tmp_path: Path) -> None:
    rows = rows_of(IO / "dummy_conversation.json")
    msgs = [
        {
            "msgs": [
                {"speaker": "me" if m["from"] == "human" else "ai", "text": m["value"]}
                for m in r["conversations"]
            ]
        }
        for r in rows
    ]
    (tmp_path / "parts").mkdir()
    (tmp_path / "parts" / "0.json").write_text(json.dumps(msgs[:5]), encoding="utf-8")
    (tmp_path / "parts" / "1.json").write_text(json.dumps(msgs[5:]), encoding="utf-8")
    tags = {"role_tag": "speaker", "content_tag": "text", "user_tag": "me", "assistant_tag": "ai"}
    info = {
        "chat": {
            "file_name": "parts",
            "formatting": "sharegpt",
            "columns": {"messages": "msgs"},
            "tags": tags,
        }
    }
    (tmp_path / "dataset_info.json").write_text(json.dumps(info), encoding="utf-8")
    ds = load_dataset("", dataset_info=tmp_path / "dataset_info.json", dataset_name="chat")
    assert ds.format == "sharegpt" and ds.tags == tags and len(ds.paths) == 2
    assert samples(ds) == samples(load_dataset(IO / "dummy_conversation.json"))


def test_dataset_info_errors() -> None:
    with pytest.raises(InputError) as err:
        load_dataset("", dataset_info=INFO, dataset_name="alpaca_typo")
    msg = str(err.value)
    assert "'alpaca_typo'" in msg and "alpaca_en_demo" in msg and "c4_demo" in msg
    with pytest.raises(InputError, match=r"hf_hub_url='llamafactory/alpaca_en'.*local files only"):
        load_dataset("", dataset_info=INFO, dataset_name="alpaca_en")
    with pytest.raises(InputError, match="not found"):  # listed, but no local copy here
        load_dataset("", dataset_info=INFO, dataset_name="alpaca_zh_demo")
    with pytest.raises(InputError, match="pass --dataset NAME"):
        load_dataset("", dataset_info=INFO)
    with pytest.raises(ConfigError, match="needs --dataset-info"):
        load_dataset(LF / "identity.json", dataset_name="identity")
    with pytest.raises(ConfigError, match="drop --format"):
        load_dataset("", dataset_info=INFO, dataset_name="identity", format="alpaca")


def test_id_column_duplicates_and_missing(tmp_path: Path) -> None:
    rows = rows_of(IO / "dummy_conversation.json")
    ds = load_dataset(IO / "dummy_conversation.json", id_column="id")
    assert [r.id for r in ds.records] == [r["id"] for r in rows]
    dup = [dict(r) for r in rows]
    dup[7]["id"] = dup[2]["id"]
    (tmp_path / "dup.json").write_text(json.dumps(dup), encoding="utf-8")
    with pytest.raises(
        InputError, match=r"not unique: .*dup.json: row 7 repeats id 'identity_2' of .*row 2"
    ):
        load_dataset(tmp_path / "dup.json", id_column="id")
    del dup[4]["id"]
    dup[7]["id"] = "fixed"
    (tmp_path / "miss.json").write_text(json.dumps(dup), encoding="utf-8")
    with pytest.raises(InputError, match=r"missing or empty in .*miss.json: row 4"):
        load_dataset(tmp_path / "miss.json", id_column="id")
    with pytest.raises(InputError, match=r"'uid' is not a column; keys found"):
        load_dataset(IO / "dummy_conversation.json", id_column="uid")


def test_semicolon_csv_dialect_round_trips(tmp_path: Path) -> None:
    from dedup_audit.writers import write_dataset

    rows = flat(rows_of(LF / "alpaca_en_demo.json"))  # texts full of commas
    path = tmp_path / "semi.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]), delimiter=";", lineterminator="\r\n")
        w.writeheader()
        w.writerows(rows)
    ds = load_dataset(path)
    assert ds.writer_hints["delimiter"] == ";" and ds.writer_hints["newline"] == "\r\n"
    assert [r.row for r in ds.records] == rows
    out = write_dataset(ds, range(len(ds)), tmp_path / "out.csv")
    assert out.read_bytes() == path.read_bytes()
