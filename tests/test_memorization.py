"""Per-sample losses (schema, readers, validation), the analysis against clusters, the diagnosis,
and the `report` command, on the recorded real run and on simulated runs (tests/memo_sim.py)."""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from dedup_audit.errors import InputError, OutputError
from dedup_audit.records import Cluster, Dataset, Record, Sample, Turn
from dedup_audit.reports.memorization.report_json import build_report, dumps, write_report
from dedup_audit.training.losses import read_losses
from dedup_audit.training.membership import membership_from_dataset, membership_from_scan_report
from dedup_audit.training.samples import analyze_samples
from tests import memo_sim as sim

DATA = Path(__file__).parent / "data"
RUN = Path(__file__).parents[1] / "sample_data" / "run"


def _dataset(run, folder: Path) -> tuple[Dataset, list[Cluster]]:  # type: ignore[no-untyped-def]
    """The simulated training file as a Dataset, and its true duplicate clusters."""
    recs = [
        Record(
            i,
            f"sim.json:{i}",
            r,
            Sample(
                (Turn("user", r["instruction"] + "\n" + r["input"]), Turn("assistant", r["output"]))
            ),
        )
        for i, r in enumerate(run.rows)
    ]
    clusters = []
    for c, k in sorted(run.copies.items()):
        if k > 1:
            members = tuple(i for i, cc in enumerate(run.content) if cc == c)
            kind = "near" if c in run.near else "exact"
            clusters.append(Cluster(len(clusters), "full", kind, members))
    return Dataset(recs, "alpaca", "json", (str(folder / "sim.json"),)), clusters


# ---------------------------------------------------------------- losses schema


def test_losses_readers_agree_across_formats(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = sim.simulate().losses[:200]
    sim.write_jsonl(tmp_path / "l.jsonl", rows)
    with (tmp_path / "l.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "l.parquet")
    tables = [read_losses(tmp_path / n) for n in ("l.jsonl", "l.csv", "l.parquet")]
    first = [(r.key, r.epoch, r.loss, r.split) for r in tables[0].rows]
    assert len(first) == 200
    for t in tables[1:]:
        assert [(r.key, r.epoch, r.loss, r.split) for r in t.rows] == first
    assert tables[0].issues == []


def test_losses_validation_counts_and_examples(tmp_path: Path) -> None:
    rows = [
        {"key": "a", "epoch": 1, "loss": 2.0},
        {"key": "a", "epoch": 2, "loss": 1.0},
        {"key": "b", "epoch": 1, "loss_sum": 30.0, "n_tokens": 10},  # loss 3.0
        {"key": "b", "epoch": 2, "loss": float("nan")},
        {"key": "c", "epoch": 1, "loss": float("inf")},
        {"key": "a", "epoch": 2, "loss": 1.5},  # resumed run re-scored: last wins
    ]
    p = tmp_path / "l.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    t = read_losses(p)
    assert t.by_key() == {"a": {1.0: 2.0, 2.0: 1.5}, "b": {1.0: 3.0}}
    issues = {i.kind: i for i in t.issues}
    assert issues["nonfinite_loss"].count == 2
    assert "line 4" in issues["nonfinite_loss"].examples[0]
    assert (
        issues["duplicated_rows"].count == 1
        and "lines 2 and 6" in issues["duplicated_rows"].examples[0]
    )
    assert (
        issues["missing_epochs"].count == 1
        and "key=b missing epoch(s) 2" in issues["missing_epochs"].examples[0]
    )
    p.write_text(json.dumps({"epoch": 1, "loss": 1}) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match="no 'key'"):
        read_losses(p)
    p.write_text(json.dumps({"key": "a", "loss": 1}) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match="epoch"):
        read_losses(p)
    with pytest.raises(InputError, match="not found"):
        read_losses(tmp_path / "nope.jsonl")


def test_recorded_losses_are_binned_per_pass() -> None:
    """The real recorder file: fractional epochs become completed passes (floor)."""
    t = read_losses(RUN / "recorded_losses.jsonl")
    assert t.epochs() == [float(e) for e in range(8)]
    assert any(i.kind == "recorded_losses" for i in t.issues)
    assert len(t.keys()) == 244
    # copies of an exact duplicate are trained on several times per pass: averaged, and said so
    assert any(i.kind == "recorded_multiple_per_epoch" for i in t.issues) or all(
        len(v) == 8 for v in t.by_key().values()
    )


def test_unjoined_keys_are_counted_with_examples(tmp_path: Path) -> None:
    run = sim.simulate()
    ds, clusters = _dataset(run, tmp_path)
    rows = [*run.losses, {"key": "other.json:7", "epoch": 1.0, "loss": 1.0}]
    sim.write_jsonl(tmp_path / "l.jsonl", rows)
    sm = analyze_samples(read_losses(tmp_path / "l.jsonl"), membership_from_dataset(ds, clusters))
    issue = next(i for i in sm["issues"] if i["kind"] == "unjoined_keys")
    assert issue["count"] == 1 and issue["examples"] == ["other.json:7"]


# ---------------------------------------------------------------- analysis


def test_simulated_analysis_shares_auc_and_exposures(tmp_path: Path) -> None:
    run = sim.simulate()
    sim.write_run(run, tmp_path)
    ds, clusters = _dataset(run, tmp_path)
    sm = analyze_samples(
        read_losses(tmp_path / "losses.jsonl"), membership_from_dataset(ds, clusters)
    )
    dup_units = sum(1 for k in run.copies.values() if k > 1)
    auc = sm["stats"]["auc_memorization_duplicated_vs_unique"]
    assert auc["n_x"] == dup_units and auc["n_y"] == len(run.copies) - dup_units
    assert auc["auc"] >= 0.9 and auc["p_value"] < 0.001
    # total drop = sum over groups of (row share x group drop), at every boundary
    for b in sm["boundaries"]:
        for family in ("size", "kind"):
            parts = b["shares"][family].values()
            assert sum(p["contribution"] for p in parts) == pytest.approx(
                b["total_mean_drop"], abs=1e-5
            )
            assert sum(p["row_share"] for p in parts) == pytest.approx(1.0, abs=1e-5)
    assert set(sm["groups"]) >= {
        "size:singleton",
        "size:2",
        "size:3-4",
        "size:5+",
        "kind:exact",
        "kind:near",
        "heldout",
    }
    assert sm["groups"]["size:singleton"]["records"] == sum(
        1 for k in run.copies.values() if k == 1
    )
    # the simulation's loss depends on exposures, so curves overlap when aligned by them
    assert sm["exposures"]["verdict"] in ("exposures explain", "partly")
    assert sm["exposures"]["spread_ratio"] < 0.8
    # the most memorized units are duplicates, listed with every copy side by side
    top = sm["top_memorized"][0]
    assert top["copies"] > 1 and len(top["members"]) == min(6, top["copies"])
    assert top["members"][0]["prompt"] and top["members"][0]["losses"]["0"] is not None


def test_real_run_report_auc_and_diagnosis() -> None:
    rep = build_report(RUN, data=RUN / "train.json")
    sm = rep["samples"]
    auc = sm["stats"]["auc_memorization_duplicated_vs_unique"]
    assert auc["auc"] >= 0.9, auc
    assert auc["n_x"] >= 30 and auc["n_y"] >= 100 and auc["p_value"] < 1e-6
    assert sm["membership"]["duplicated_records"] == 244 - 120 - 12 - 6  # 106: see the manifest
    assert rep["staircase"]["verdict"] == "staircase"
    verdicts = {d["id"]: d["verdict"] for d in rep["diagnosis"]}
    assert verdicts["a"] == "supported"  # held-out loss stalls while train loss steps down
    assert verdicts["b1"] == "supported"  # duplicates are memorized more (AUC 0.91) ...
    assert verdicts["b2"] == "not supported"  # ... but unique rows carry half of every drop
    assert verdicts["c"] == "not supported"  # cosine: lr continuous at every boundary
    assert verdicts["d"] == "undecided"  # save_strategy/eval_strategy epoch: all on boundaries
    assert any("AUC=0.9" in e for d in rep["diagnosis"] if d["id"] == "b1" for e in d["evidence"])
    # the headline leads with the cause that carries the drop, with its numbers, and the fix
    head = rep["headline"]
    assert head.startswith("Staircase at 5 of 7 epoch boundaries")
    assert "unique rows, 57% of the data, carry 49% of each boundary drop" in head
    assert "held-out loss is lowest at epoch 2" in head  # from the held-out per-sample losses
    assert "do not explain the staircase" in head
    assert "num_train_epochs: 2" in head and "learning_rate: 0.001" in head
    assert "without a held-out" not in json.dumps(rep)
    recs = rep["recommendations"]
    assert recs[0]["setting"] == "num_train_epochs: 2"
    # one recommendation per setting
    firsts = [r["setting"].split(":")[0].split()[0] for r in recs]
    assert len(firsts) == len(set(firsts)), firsts
    # (d): the advice moves exactly the events its evidence says sit on the boundaries
    d = next(x for x in rep["diagnosis"] if x["id"] == "d")
    ev_rec = next(r for r in recs if r["hypothesis"] == "d")
    assert "eval and save events sit on every tested boundary" in d["evidence"][-1]
    assert "save_steps: 18" in ev_rec["setting"] and "eval_steps: 18" in ev_rec["setting"]
    assert rep["training_args"]["save_strategy"] == "epoch"
    assert rep["events"]["save"] == rep["events"]["eval"] == [31 * k for k in range(1, 9)]


def test_real_run_manifest_clusters_match_the_scan() -> None:
    """The scan finds exactly the manifest's injected groups (exact and near)."""
    manifest = json.loads((RUN / "duplicates_manifest.json").read_text(encoding="utf-8"))
    rep = build_report(RUN, data=RUN / "train.json")
    top_ids = {m["id"] for u in rep["samples"]["top_memorized"] for m in u["members"]}
    groups = [set(g["ids"]) for g in manifest["groups"]]
    assert all(any(i in g for g in groups) for i in top_ids)


def test_scan_report_input_and_heldout_key_list(tmp_path: Path) -> None:
    run = sim.simulate()
    sim.write_run(run, tmp_path)
    ds, clusters = _dataset(run, tmp_path)
    scan = {
        "schema": "dedup-audit/scan",
        "dataset": {"rows": len(ds)},
        "config": {"dedup_view": "full"},
        "clusters": [
            {
                "id": c.id,
                "view": c.view,
                "kind": c.kind,
                "size": c.size,
                "members": [
                    {"index": m, "id": ds.records[m].id, "key": f"h{m}"} for m in c.members
                ],
            }
            for c in clusters
        ],
    }
    (tmp_path / "scan.json").write_text(json.dumps(scan), encoding="utf-8")
    mem = membership_from_scan_report(scan)
    assert mem.duplicated_records == sum(c.size for c in clusters)
    # held-out given as a key list over rows of the main file
    rows = [dict(r, split="train") for r in run.losses]
    sim.write_jsonl(tmp_path / "all.jsonl", rows)
    keys = sorted({r["key"] for r in run.losses if r["split"] == "heldout"})
    (tmp_path / "held.txt").write_text("\n".join(keys) + "\n", encoding="utf-8")
    rep = build_report(
        tmp_path,
        losses=tmp_path / "all.jsonl",
        scan=tmp_path / "scan.json",
        heldout=tmp_path / "held.txt",
    )
    sm = rep["samples"]
    assert sm["join"]["heldout_keys"] == len(keys)
    assert sm["stats"]["auc_memorization_duplicated_vs_unique"]["auc"] >= 0.9
    assert "held-out median" in sm["memorization_score"]["definition"]


def test_partial_inputs_give_partial_reports(tmp_path: Path) -> None:
    run = sim.simulate()
    sim.write_run(run, tmp_path / "logs", losses=False)
    rep = build_report(tmp_path / "logs")
    assert rep["samples"] is None
    assert {m["what"] for m in rep["missing"]} >= {
        "per-sample losses",
        "dataset / scan",
        "training arguments",
    }
    verdicts = {d["id"]: d["verdict"] for d in rep["diagnosis"]}
    assert verdicts["b1"] == verdicts["b2"] == "undecided"
    assert rep["staircase"]["verdict"] == "staircase"
    # losses alone, no log: per-sample analysis without groups
    sim.write_jsonl(tmp_path / "l.jsonl", run.losses)
    rep = build_report(None, losses=tmp_path / "l.jsonl")
    assert rep["staircase"] is None and rep["samples"]["available"]
    assert any(m["what"] == "training log" for m in rep["missing"])
    # a folder with nothing usable is a clear error
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="nothing to report"):
        build_report(tmp_path / "empty")
    # all losses NaN: no per-sample section, no crash
    (tmp_path / "nan.jsonl").write_text(
        json.dumps({"key": "a", "epoch": 1, "loss": math.nan}) + "\n", encoding="utf-8"
    )
    rep = build_report(tmp_path / "logs", losses=tmp_path / "nan.jsonl")
    assert rep["samples"]["available"] is False
    assert rep["samples"]["issues"][0]["kind"] == "nonfinite_loss"


def test_report_is_deterministic_and_writes_safely(tmp_path: Path) -> None:
    run = sim.simulate()
    sim.write_run(run, tmp_path / "run")
    a = dumps(build_report(tmp_path / "run"))
    b = dumps(build_report(tmp_path / "run"))
    assert a == b
    rep = json.loads(a)
    assert rep["schema"] == "dedup-audit/memorization" and rep["version"] == 2
    paths = write_report(rep, tmp_path / "out")
    assert paths["json"].read_text(encoding="utf-8") == a
    with pytest.raises(OutputError, match="--force"):
        write_report(rep, tmp_path / "out")
    write_report(rep, tmp_path / "out", force=True)


def test_cli_report(tmp_path: Path) -> None:
    from dedup_audit.cli import cli

    runner = CliRunner()
    res = runner.invoke(cli, ["report", "--help"])
    assert (
        res.exit_code == 0
        and "Examples:" in res.output
        and "dedup-audit report saves/run" in res.output
    )
    out = tmp_path / "memo"
    res = runner.invoke(
        cli, ["report", str(RUN), "--data", str(RUN / "train.json"), "-o", str(out)]
    )
    assert res.exit_code == 0, res.output
    assert "Staircase at 5 of 7" in res.output
    assert re.search(r"\(a\)\s+supported", res.output) and "(b2)  not supported" in res.output
    rep = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert rep["staircase"]["verdict"] == "staircase"
    assert (out / "report.html").stat().st_size > 10_000
    res = runner.invoke(cli, ["report", str(RUN), "-o", str(out)])
    assert res.exit_code == 2 and "Error:" in res.output and "--force" in res.output
    (tmp_path / "empty").mkdir()
    res = runner.invoke(cli, ["report", str(tmp_path / "empty"), "-o", str(tmp_path / "x")])
    assert res.exit_code == 2 and "nothing to report" in res.output


# ---------------------------------------------------------------- safe joins, verdicts (issue 10)


def test_reordered_data_file_joins_by_content_not_by_id(tmp_path: Path) -> None:
    """The losses were scored on train.json; the same rows reordered must give the same
    analysis (AUC 0.9145), with the id/content disagreement counted, not a silent mis-join."""
    import random

    rows = json.loads((RUN / "train.json").read_text(encoding="utf-8"))
    random.Random(0).shuffle(rows)
    (tmp_path / "train.json").write_text(json.dumps(rows), encoding="utf-8")
    base = build_report(RUN, data=RUN / "train.json")
    moved = build_report(RUN, data=tmp_path / "train.json")
    a = base["samples"]["stats"]["auc_memorization_duplicated_vs_unique"]
    b = moved["samples"]["stats"]["auc_memorization_duplicated_vs_unique"]
    assert a == b and a["auc"] == pytest.approx(0.9145, abs=1e-4)
    assert base["samples"]["join"]["ids_disagree_with_content"] == 0
    assert moved["samples"]["join"]["ids_disagree_with_content"] > 200
    issue = next(i for i in moved["samples"]["issues"] if i["kind"] == "ids_disagree_with_content")
    assert issue["count"] == moved["samples"]["join"]["ids_disagree_with_content"]
    assert "joined by content" in issue["message"]


def test_ambiguous_join_is_refused_with_exit_2(tmp_path: Path) -> None:
    """Loss rows whose ids exist in --data but whose scored content is nowhere in it: the
    losses belong to another version of the file, and no record can be trusted to be theirs."""
    from dedup_audit.cli import cli

    lines = (RUN / "losses.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(x) for x in lines]
    for r in rows:
        if r["key"] in ("train.json:3", "train.json:7"):
            r["content_key"] = "0000000000000000"
    sim.write_jsonl(tmp_path / "losses.jsonl", rows)
    with pytest.raises(InputError, match="2 loss key"):
        build_report(RUN, data=RUN / "train.json", losses=tmp_path / "losses.jsonl")
    res = CliRunner().invoke(
        cli,
        [
            "report",
            str(RUN),
            "--data",
            str(RUN / "train.json"),
            "--losses",
            str(tmp_path / "losses.jsonl"),
            "-o",
            str(tmp_path / "out"),
        ],
    )
    assert res.exit_code == 2 and "ambiguous" in res.output and "Traceback" not in res.output


def test_natural_duplicates_do_not_explain_the_staircase(tmp_path: Path) -> None:
    """Few duplicates (3 pairs among 70 rows): they carry about their row share of the drop, so
    (b2) is not supported and the headline does not blame them."""
    run = sim.simulate(dup_copies=(2, 2, 2), n_unique=64)
    sim.write_run(run, tmp_path)
    ds, clusters = _dataset(run, tmp_path)
    rep = build_report(tmp_path, dataset=ds, clusters=clusters)
    verdicts = {d["id"]: d["verdict"] for d in rep["diagnosis"]}
    assert verdicts["b2"] == "not supported"
    b2 = next(d for d in rep["diagnosis"] if d["id"] == "b2")
    share = b2["figures"]["duplicate_share"]
    assert share["row_share"] < 0.1 and share["drop_share"] < 0.15
    assert "they explain the staircase" not in rep["headline"]
    assert "Cause: every new pass" in rep["headline"]


def test_rise_headline_and_schedule_advice(tmp_path: Path) -> None:
    sim.write_jsonl(tmp_path / "trainer_log.jsonl", sim.restart_log())
    rep = build_report(tmp_path / "trainer_log.jsonl")
    assert rep["staircase"]["verdict"] == "rise"
    assert rep["headline"].startswith("No staircase: the loss rises at 3 of 3 epoch boundaries")
    assert "learning rate jumps up" in rep["headline"]
    assert "smooth" not in rep["headline"]
    c = next(d for d in rep["diagnosis"] if d["id"] == "c")
    assert c["verdict"] == "supported" and any("the loss rises here" in e for e in c["evidence"])
    sched = next(r for r in rep["recommendations"] if r["hypothesis"] == "c")
    assert "the loss rises at [1, 2, 3]" in sched["evidence"]
    from dedup_audit.reports.memorization.html import render_html

    page = render_html(rep)  # the loss plot marks rise boundaries in their own colour
    assert 'class="v-rise"' in page and "plot-loss" in page


def test_unreadable_trainer_log_in_a_folder_names_file_and_line(tmp_path: Path) -> None:
    from dedup_audit.cli import cli

    rows = (RUN / "trainer_log.jsonl").read_text(encoding="utf-8").splitlines()
    rows[40] = rows[40][:-5]  # one broken line in the middle
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "trainer_log.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"trainer_log\.jsonl:41: not valid JSON"):
        build_report(tmp_path / "run")
    res = CliRunner().invoke(cli, ["report", str(tmp_path / "run"), "-o", str(tmp_path / "o")])
    assert res.exit_code == 2 and "trainer_log.jsonl:41" in res.output
    assert "no trainer_log.jsonl" not in res.output


def test_guessed_scoring_settings_are_reported(tmp_path: Path) -> None:
    rows = [json.loads(x) for x in (RUN / "losses.jsonl").read_text().splitlines()]
    for r in rows:
        r["scored_with"] = (
            "plain, cutoff_len none (guessed: tokenizer chat template, no truncation)"
        )
    sim.write_jsonl(tmp_path / "l.jsonl", rows)
    rep = build_report(RUN, data=RUN / "train.json", losses=tmp_path / "l.jsonl")
    assert rep["samples"]["scored_with"] == [rows[0]["scored_with"]]
    assert any(i["kind"] == "guessed_settings" for i in rep["samples"]["issues"])


def test_coarse_logging_gets_a_logging_steps_recommendation(tmp_path: Path) -> None:
    """HF's default logging_steps: 500 leaves one point on a short run: the report recommends a
    value, computed from the steps per epoch that trainer_state.json gives."""
    run = sim.simulate(epochs=5)
    sim.write_run(run, tmp_path, losses=False)
    rows = [r for r in run.log if "loss" in r]
    sim.write_jsonl(tmp_path / "trainer_log.jsonl", rows[-1:])
    rep = build_report(tmp_path)
    rec = next(r for r in rep["recommendations"] if r["setting"].startswith("logging_steps"))
    assert rec["setting"] == "logging_steps: 1"
    assert f"{run.steps_per_epoch} steps" in rec["evidence"]
    # every 10th step of 23-step epochs: 2 points per epoch, the same advice
    sim.write_jsonl(tmp_path / "trainer_log.jsonl", rows[9::10])
    rep = build_report(tmp_path)
    assert any(r["setting"] == "logging_steps: 1" for r in rep["recommendations"])
    assert rep["staircase"]["verdict"] != "staircase"
