"""Writers: kept rows go back in the input's own format, byte-identical when all are kept;
writes are atomic and never touch the input."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dedup_audit.errors import OutputError
from dedup_audit.readers import load_dataset
from dedup_audit.records import Dataset
from dedup_audit.writers import (
    atomic_write_bytes,
    atomic_write_text,
    check_output_path,
    write_dataset,
    write_jsonl,
)

IO = Path(__file__).resolve().parent / "data" / "io"
LF = IO / "llamafactory"
TEXT_FILES = [
    LF / "alpaca_en_demo.json",
    LF / "identity.json",
    LF / "glaive_toolcall_en_demo.json",
    LF / "dpo_en_demo.json",
    LF / "c4_demo.jsonl",
    IO / "dummy_conversation.json",
    IO / "oaast_sft_zh.json",
    IO / "gpteacher_toolformer.json",
    IO / "gsm8k_train_alpaca.json",
]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def everything(ds: Dataset) -> list[int]:
    return list(range(len(ds)))


@pytest.mark.parametrize("path", TEXT_FILES, ids=lambda p: p.name)
def test_round_trip_is_byte_identical(tmp_path: Path, path: Path) -> None:
    before = digest(path)
    ds = load_dataset(path)
    assert ds.writer_hints["exact"] is True
    out = write_dataset(ds, everything(ds), tmp_path / ("out" + path.suffix))
    assert out.read_bytes() == path.read_bytes()
    assert digest(path) == before


def test_round_trip_jsonl_with_escapes(tmp_path: Path) -> None:
    path = IO / "gsm8k_test.jsonl"
    ds = load_dataset(path, columns={"prompt": "question", "response": "answer"})
    out = write_dataset(ds, everything(ds), tmp_path / "t.jsonl")
    assert out.read_bytes() == path.read_bytes()


def test_round_trip_crlf_bom_and_compact(tmp_path: Path) -> None:
    rows = json.loads((LF / "identity.json").read_text(encoding="utf-8"))
    variants = {
        "crlf.json": json.dumps(rows, indent=2).replace("\n", "\r\n").encode(),
        "bom.json": b"\xef\xbb\xbf" + json.dumps(rows, indent="\t").encode(),
        "compact.json": json.dumps(rows, separators=(",", ":")).encode(),
        "spaced.json": json.dumps(rows).encode(),
    }
    for name, data in variants.items():
        src = tmp_path / name
        src.write_bytes(data)
        ds = load_dataset(src)
        out = write_dataset(ds, everything(ds), tmp_path / f"out_{name}")
        assert out.read_bytes() == data, name


def test_round_trip_csv_and_txt(tmp_path: Path) -> None:
    rows = json.loads((LF / "identity.json").read_text(encoding="utf-8"))
    src = write_dataset(load_dataset(LF / "identity.json"), range(len(rows)), tmp_path / "a.csv")
    ds = load_dataset(src)
    assert ds.writer_hints["exact"] is True and [r.row for r in ds.records] == rows
    again = write_dataset(ds, everything(ds), tmp_path / "b.csv")
    assert again.read_bytes() == src.read_bytes()
    docs = [
        r["text"].split("\n")[0]
        for r in (load_dataset(LF / "c4_demo.jsonl").records[i].row for i in range(6))
    ]
    txt = tmp_path / "d.txt"
    txt.write_text("\n".join(docs) + "\n", encoding="utf-8")
    ds = load_dataset(txt)
    assert write_dataset(ds, everything(ds), tmp_path / "e.txt").read_bytes() == txt.read_bytes()


@pytest.mark.parametrize("suffix", [".parquet", ".arrow", ".csv", ".jsonl", ".json", ""])
def test_binary_and_converted_outputs_reload_same_rows(tmp_path: Path, suffix: str) -> None:
    """json -> X; then X -> X again keeps rows, key order and Samples."""
    src = load_dataset(IO / "dummy_conversation.json")
    keep = [0, 2, 3, 7, 11]
    if suffix == "":  # a save_to_disk folder: convert through parquet first, then write hf_disk
        import datasets

        datasets.Dataset.from_list([r.row for r in src.records]).save_to_disk(
            str(tmp_path / "disk")
        )
        src = load_dataset(tmp_path / "disk")
    out = write_dataset(src, keep, tmp_path / ("kept" + suffix if suffix else "kept_disk"))
    ds = load_dataset(out)
    got = [r.row for r in ds.records]
    if suffix == ".csv":  # CSV cells are strings: nested values come back as their JSON text
        got = [{k: json.loads(v) if v.startswith("[") else v for k, v in r.items()} for r in got]
    assert got == [src.records[i].row for i in keep]
    assert [list(r.row) for r in ds.records] == [list(src.records[i].row) for i in keep]
    assert [r.sample for r in ds.records] == [src.records[i].sample for i in keep]
    again = write_dataset(
        ds, everything(ds), tmp_path / ("again" + suffix if suffix else "again_disk")
    )
    assert [r.row for r in load_dataset(again).records] == [r.row for r in ds.records]


def test_hf_dict_keeps_other_splits_and_force_replaces_folder(tmp_path: Path) -> None:
    import datasets

    rows = [r.row for r in load_dataset(LF / "alpaca_en_demo.json").records]
    hf = datasets.Dataset.from_list(rows)
    datasets.DatasetDict({"train": hf, "test": hf.select([1, 2])}).save_to_disk(
        str(tmp_path / "src")
    )
    ds = load_dataset(tmp_path / "src")
    out = tmp_path / "out"
    write_dataset(ds, [0, 5], out)
    with pytest.raises(OutputError, match="exists; pass --force"):
        write_dataset(ds, [0, 5], out)
    write_dataset(ds, [0, 5, 6], out, force=True)
    whole = datasets.load_from_disk(str(out))
    assert whole["train"].to_list() == [rows[0], rows[5], rows[6]]
    assert whole["test"].to_list() == [rows[1], rows[2]]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "src"]  # no temp folders left


def test_written_output_loads_with_llamafactory_mapping(tmp_path: Path) -> None:
    info = json.loads((LF / "dataset_info.json").read_text(encoding="utf-8"))
    for name in ("alpaca_en_demo", "glaive_toolcall_en_demo", "dpo_en_demo", "c4_demo"):
        ds = load_dataset("", dataset_info=LF / "dataset_info.json", dataset_name=name)
        keep = list(range(0, len(ds), 2))
        suffix = Path(info[name]["file_name"]).suffix
        out = write_dataset(ds, keep, tmp_path / f"{name}.clean{suffix}")
        entry = {**info[name], "file_name": out.name}
        (tmp_path / "dataset_info.json").write_text(json.dumps({name: entry}), encoding="utf-8")
        back = load_dataset("", dataset_info=tmp_path / "dataset_info.json", dataset_name=name)
        assert back.format == ds.format and back.columns == ds.columns and back.tags == ds.tags
        assert [r.sample for r in back.records] == [ds.records[i].sample for i in keep]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_kept_plus_removed_partitions_the_input(tmp_path: Path, data: st.DataObject) -> None:
    path = data.draw(
        st.sampled_from(
            [LF / "alpaca_en_demo.json", IO / "dummy_conversation.json", LF / "c4_demo.jsonl"]
        )
    )
    ds = load_dataset(path)
    n = len(ds)
    keep = data.draw(st.lists(st.integers(0, n - 1), unique=True))
    suffix = data.draw(st.sampled_from([path.suffix, ".jsonl", ".parquet"]))
    out = tmp_path / f"o{suffix}"
    write_dataset(ds, data.draw(st.permutations(keep)), out, force=True)
    removed = [i for i in range(n) if i not in set(keep)]
    if not keep and suffix == ".parquet":
        import pyarrow.parquet as pq

        assert pq.read_table(out).num_rows == 0  # an empty table, with the input's columns
        assert pq.read_table(out).column_names == list(ds.records[0].row)
        return
    written = load_dataset(out).records if keep else []
    kept_rows = [r.row for r in written]
    assert kept_rows == [ds.records[i].row for i in sorted(keep)]  # order kept
    assert all(
        list(r.row) == list(ds.records[i].row) for r, i in zip(written, sorted(keep), strict=True)
    )
    merged = sorted(
        [(i, ds.records[i].row) for i in sorted(keep)] + [(i, ds.records[i].row) for i in removed],
        key=lambda t: t[0],
    )
    assert [row for _, row in merged] == [r.row for r in ds.records]
    assert len(kept_rows) + len(removed) == n


def test_empty_keep_writes_an_empty_file(tmp_path: Path) -> None:
    ds = load_dataset(LF / "identity.json")
    assert write_dataset(ds, [], tmp_path / "none.json").read_text() == "[]\n"
    assert write_dataset(ds, [], tmp_path / "none.jsonl").read_text() == ""


def test_check_output_path(tmp_path: Path) -> None:
    src = tmp_path / "in.json"
    shutil.copy(LF / "identity.json", src)
    with pytest.raises(OutputError, match="the output is the input file"):
        check_output_path(src, [src], force=True)
    with pytest.raises(OutputError, match="the output is the input file"):
        check_output_path(tmp_path / "sub" / ".." / "in.json", [src], force=True)
    link = tmp_path / "link.json"
    os.symlink(src, link)
    with pytest.raises(OutputError, match="the output is the input file"):
        check_output_path(link, [src], force=True)
    other = tmp_path / "other.json"
    other.write_text("x")
    with pytest.raises(OutputError, match=r"other.json exists; pass --force to overwrite"):
        check_output_path(other, [src], force=False)
    check_output_path(other, [src], force=True)
    check_output_path(tmp_path / "new.json", [src], force=False)
    with pytest.raises(OutputError, match="holds the input"):
        check_output_path(tmp_path, [src], force=True)


def test_write_dataset_refuses_its_input_and_leaves_it_alone(tmp_path: Path) -> None:
    src = tmp_path / "in.json"
    shutil.copy(LF / "identity.json", src)
    before = digest(src)
    ds = load_dataset(src)
    with pytest.raises(OutputError):
        write_dataset(ds, [0], src, force=True)
    assert digest(src) == before


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    """Rows that cannot become one parquet table: an OutputError, and no file or temp file."""
    src = tmp_path / "mixed.json"
    rows = json.loads((LF / "identity.json").read_text(encoding="utf-8"))
    rows[1]["output"] = ["a", "list"]
    src.write_text(json.dumps(rows), encoding="utf-8")
    ds = load_dataset(src, format="text", columns={"prompt": "instruction"})
    with pytest.raises(OutputError, match="cannot build an Arrow table"):
        write_dataset(ds, everything(ds), tmp_path / "out.parquet")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mixed.json"]
    with pytest.raises(OutputError, match="only plain-text datasets"):
        write_dataset(ds, everything(ds), tmp_path / "out.txt")
    with pytest.raises(OutputError, match="cannot tell the output file type"):
        write_dataset(ds, everything(ds), tmp_path / "out.yaml")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mixed.json"]


def test_atomic_write_keeps_old_file_on_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "report.json"
    atomic_write_text(target, "old")

    def boom(*_: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_bytes(target, b"new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_write_jsonl_is_utf8_one_object_per_line(tmp_path: Path) -> None:
    rows = [r.row for r in load_dataset(IO / "oaast_sft_zh.json").records]
    out = tmp_path / "r.jsonl"
    write_jsonl(out, iter(rows))
    lines = out.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == rows
    assert "\\u" not in out.read_text(encoding="utf-8")
