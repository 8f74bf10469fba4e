"""Issue 2 acceptance for clean: faithful output, full removal record, determinism."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from dedup_audit import clean, load_dataset
from dedup_audit.errors import OutputError
from dedup_audit.pipeline import scan


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_clean_alpaca_round_trip_and_removal_record(sample_dir: Path, tmp_path: Path) -> None:
    src = sample_dir / "alpaca_en_demo.json"
    before = _sha(src)
    out = tmp_path / "alpaca.clean.json"
    res = clean(src, out)
    assert _sha(src) == before  # the input is never touched
    assert res.removed_path == tmp_path / "alpaca.clean.json.removed.jsonl"

    rows = json.loads(src.read_text(encoding="utf-8"))
    kept = json.loads(out.read_text(encoding="utf-8"))
    removed = [
        json.loads(line) for line in res.removed_path.read_text(encoding="utf-8").splitlines()
    ]
    assert len(kept) == 985 and len(removed) == 14
    # kept + removed == input, by identity and order
    kept_idx = [i for i, d in enumerate(res.scan.decisions) if d.keep]
    assert kept == [rows[i] for i in kept_idx]
    assert sorted(kept_idx + [r["index"] for r in removed]) == list(range(len(rows)))
    for r in removed:
        assert r["row"] == rows[r["index"]]
        assert r["reason"] == "exact:full" and r["method"] == "exact" and r["similarity"] == 1.0
        assert r["kept_id"] == f"alpaca_en_demo.json:{r['kept_index']}"
        assert rows[r["kept_index"]] == r["row"]
        assert isinstance(r["cluster_id"], int)
    # same format and key order, same JSON layout (2-space indent, unescaped unicode)
    assert list(kept[0]) == list(rows[0])
    assert out.read_text(encoding="utf-8").startswith(src.read_text(encoding="utf-8")[:40])

    again = scan(out)
    assert not again.clusters_in("full", "exact")


def test_clean_output_loads_with_llamafactory_column_mapping(
    sample_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "conv.clean.json"
    clean(sample_dir / "dummy_conversation.json", out)
    info = tmp_path / "dataset_info.json"
    info.write_text(
        json.dumps(
            {
                "conv": {
                    "file_name": out.name,
                    "formatting": "sharegpt",
                    "columns": {"messages": "conversations"},
                }
            }
        ),
        encoding="utf-8",
    )
    ds = load_dataset(info, dataset_info=info, dataset_name="conv")
    assert ds.format == "sharegpt"
    assert all(r.sample.turns and r.sample.turns[0].role == "user" for r in ds.records)
    assert len(ds) == len(json.loads(out.read_text(encoding="utf-8")))


def test_two_runs_are_byte_identical(sample_dir: Path, tmp_path: Path) -> None:
    outs = []
    for run in ("a", "b"):
        d = tmp_path / run
        res = clean(sample_dir / "identity.json", d / "identity.json", report_dir=d / "report")
        outs.append(
            [
                _sha(res.output),
                _sha(res.removed_path),
                _sha(d / "report" / "report.json"),
                _sha(d / "report" / "report.md"),
                _sha(d / "report" / "pairs.parquet"),
            ]
        )
    assert outs[0] == outs[1]


def test_clean_refuses_to_overwrite_input_or_existing_output(
    sample_dir: Path, tmp_path: Path
) -> None:
    src = tmp_path / "identity.json"
    src.write_bytes((sample_dir / "identity.json").read_bytes())
    before = _sha(src)
    with pytest.raises(OutputError):
        clean(src, src)
    assert _sha(src) == before
    out = tmp_path / "out.json"
    out.write_text("[]", encoding="utf-8")
    with pytest.raises(OutputError, match="--force"):
        clean(src, out)
    assert out.read_text(encoding="utf-8") == "[]"
    clean(src, out, force=True)
    assert len(json.loads(out.read_text(encoding="utf-8"))) > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "identity.json",
        "out.json",
        "out.json.removed.jsonl",
    ]


def test_keep_by_numeric_column_on_jsonl(sample_dir: Path, tmp_path: Path) -> None:
    from dedup_audit import ScanConfig
    from dedup_audit.config import KeepPolicy
    from dedup_audit.errors import ConfigError

    rows = json.loads((sample_dir / "alpaca_en_demo.json").read_text(encoding="utf-8"))
    src = tmp_path / "scored.jsonl"
    src.write_text(
        "".join(
            json.dumps({**r, "score": (i * 37) % 11}, ensure_ascii=False) + "\n"
            for i, r in enumerate(rows)
        ),
        encoding="utf-8",
    )
    res = clean(src, tmp_path / "out.jsonl", ScanConfig(keep=KeepPolicy.parse("score:max")))
    kept = [
        json.loads(line)
        for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    assert len(kept) == 985
    scored = [json.loads(line) for line in src.read_text(encoding="utf-8").splitlines()]
    for c in res.scan.clusters_in("full", "exact"):
        best = max(scored[m]["score"] for m in c.members)
        survivors = [m for m in c.members if res.scan.decisions[m].keep]
        assert len(survivors) == 1 and scored[survivors[0]]["score"] == best
    with pytest.raises(ConfigError, match=r"--keep-by nope: record scored\.jsonl:"):
        scan(src, ScanConfig(keep=KeepPolicy.parse("nope:max")))
