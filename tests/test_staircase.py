"""Staircase detection from trainer logs: the recorded real run, simulated runs and controls.

Simulated runs come from tests/memo_sim.py (documented there): a per-epoch-reshuffled run in
which every sample's loss falls with its exposure count gives a staircase; the same run without
memorization, a smooth exponential curve and a single epoch are the controls that must not be
called a staircase.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dedup_audit.errors import InputError
from dedup_audit.training.staircase import StaircaseConfig, detect_staircase
from dedup_audit.training.trainer_log import read_log, read_trainer_log, read_trainer_state
from tests import memo_sim as sim

DATA = Path(__file__).parent / "data"
RUN = Path(__file__).parents[1] / "sample_data" / "run"


def _write_log(tmp_path: Path, rows: list[dict]) -> Path:  # type: ignore[type-arg]
    tmp_path.mkdir(parents=True, exist_ok=True)
    p = tmp_path / "trainer_log.jsonl"
    sim.write_jsonl(p, rows)
    return p


def test_recorded_real_run_staircase_from_the_second_boundary() -> None:
    st = detect_staircase(read_log(RUN))
    assert st["verdict"] == "staircase"
    assert st["num_epochs_logged"] == 8 and st["steps_per_epoch"] == 31
    assert len(st["boundaries"]) == 7
    stair = [b for b in st["boundaries"] if b["verdict"] == "staircase"]
    # boundaries 2-5 step down 0.39-0.57 (1-1.5x the per-step noise sd of 0.3-0.5): all found;
    # 6 is a 0.2 step (0.4 sd) and 7, at the end of the cosine, rises: neither is called
    assert {2, 3, 4, 5} <= {b["boundary"] for b in stair}
    assert {b["boundary"]: b["verdict"] for b in st["boundaries"]}[7] != "staircase"
    assert st["run_test"]["passes"] and st["run_test"]["p_value"] < 1e-6
    for b in stair:
        assert b["drop"] > 0 and b["p_value"] < 0.1 and b["jump"] > 0
        assert b["ratio"] is None or b["ratio"] >= 1.5
        assert b["lr_jump"] is False  # cosine schedule: continuous across boundaries
        for key in ("mean_before", "mean_after", "trend_drop", "excess_drop", "t", "n_before"):
            assert b[key] is not None
    # the run's eval loss (held-out split, each epoch) rises while train loss falls
    assert st["eval"]["present"] and st["eval"]["gap_growing"]
    assert st["eval"]["eval_rising_after_best"]


def test_simulated_memorization_gives_staircase_with_figures(tmp_path: Path) -> None:
    run = sim.simulate()
    sim.write_run(run, tmp_path)
    st = detect_staircase(read_log(tmp_path))
    assert st["verdict"] == "staircase"
    b1 = st["boundaries"][0]
    assert b1["step"] == run.steps_per_epoch
    assert b1["verdict"] == "staircase" and b1["ratio"] > 3
    # the reported drop is the mean of the last window of epoch 1 minus the first of epoch 2
    losses = [r["loss"] for r in run.log if "loss" in r]
    n = st["window_points"]
    spe = run.steps_per_epoch
    expect = sum(losses[spe - n : spe]) / n - sum(losses[spe : spe + n]) / n
    assert b1["drop"] == pytest.approx(expect, abs=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_controls_never_claim_a_staircase(tmp_path: Path, seed: int) -> None:
    smooth = detect_staircase(read_trainer_log(_write_log(tmp_path, sim.smooth_log(seed=seed))))
    assert smooth["verdict"] != "staircase"
    assert all(b["verdict"] != "staircase" for b in smooth["boundaries"])
    nomem = sim.simulate(memorize=False, seed=seed)
    sim.write_run(nomem, tmp_path / "nomem")
    st = detect_staircase(read_log(tmp_path / "nomem"))
    assert st["verdict"] != "staircase", st["boundaries"]


def test_single_epoch_has_no_boundary(tmp_path: Path) -> None:
    run = sim.simulate(epochs=1)
    sim.write_run(run, tmp_path)
    st = detect_staircase(read_log(tmp_path))
    assert st["verdict"] == "inconclusive"
    assert st["boundaries"] == []
    assert "single epoch" in st["reasons"][0]


def test_lr_restart_at_boundaries_blocks_the_claim(tmp_path: Path) -> None:
    run = sim.simulate(lr_restart=True)
    sim.write_run(run, tmp_path)
    st = detect_staircase(read_log(tmp_path))
    assert st["verdict"] != "staircase"
    assert st["lr"]["jumps_at_boundaries"] == [1, 2, 3]
    b1 = st["boundaries"][0]
    assert b1["lr_jump"] and any("learning rate jumps" in r for r in b1["reasons"])


def test_rounded_epochs_place_the_same_boundaries(tmp_path: Path) -> None:
    exact, rounded = sim.simulate(), sim.simulate(round_epoch=True)
    sim.write_run(exact, tmp_path / "a")
    sim.write_run(rounded, tmp_path / "b")
    a, b = detect_staircase(read_log(tmp_path / "a")), detect_staircase(read_log(tmp_path / "b"))
    assert [x["step"] for x in a["boundaries"]] == [x["step"] for x in b["boundaries"]]


def test_smoothing_never_crosses_a_boundary(tmp_path: Path) -> None:
    run = sim.simulate()
    sim.write_run(run, tmp_path)
    st = detect_staircase(read_log(tmp_path))
    s = st["series"]
    spe = run.steps_per_epoch
    # the first smoothed point of epoch 2 only averages epoch-2 points
    width = max(1, st["logged_points_per_epoch"] // 10)
    first = s["loss"][spe : spe + width // 2 + 1]
    assert s["smoothed_within_epoch"][spe] == pytest.approx(sum(first) / len(first), abs=1e-6)
    assert s["epoch_index"][spe - 1] == 1 and s["epoch_index"][spe] == 2


def test_resumed_run_is_deduplicated_and_flagged(tmp_path: Path) -> None:
    run = sim.simulate()
    rows = [r for r in run.log if "loss" in r]
    spe = run.steps_per_epoch
    # crash at step spe+5, resume from the epoch-1 checkpoint: steps spe+1.. are logged again
    resumed = rows[: spe + 5] + rows[spe:] + [run.log[-1]]
    log = read_trainer_log(_write_log(tmp_path, resumed))
    assert len(log.resumes) == 1
    assert log.resumes[0].resumed_at_step == spe + 1
    assert log.resumes[0].previous_max_step == spe + 5
    assert log.duplicate_steps == 5
    assert [e.step for e in log.train] == list(range(1, len(rows) + 1))
    st = detect_staircase(read_log(tmp_path / "trainer_log.jsonl"))
    b1 = st["boundaries"][0]
    assert b1["resumed_here"] is True
    assert b1["verdict"] != "staircase"


def test_legacy_learning_rate_field_summary_line_and_eval(tmp_path: Path) -> None:
    rows = []
    for r in sim.simulate().log:
        r = dict(r)
        if "lr" in r:
            r["learning_rate"] = r.pop("lr")
        rows.append(r)
    rows.insert(30, {"current_steps": 23, "total_steps": 92, "eval_loss": 2.0, "epoch": 1.0})
    log = read_trainer_log(_write_log(tmp_path, rows))
    assert log.lr_field == "learning_rate" and log.has_lr
    assert len(log.train) == 92  # the summary and eval lines are not training points
    assert [e.step for e in log.evals] == [23]
    assert log.summary["percentage"] == 100.0


def test_trainer_state_json(tmp_path: Path) -> None:
    run = sim.simulate()
    p = tmp_path / "trainer_state.json"
    p.write_text(json.dumps(run.state), encoding="utf-8")
    log = read_trainer_state(p)
    assert log.source == "hf_trainer_state"
    assert log.save_steps == run.steps_per_epoch and log.num_train_epochs == 4
    assert len(log.evals) == 4
    st = detect_staircase(log)
    assert st["verdict"] == "staircase"
    assert st["eval"]["present"]


def test_real_trainer_state_agrees_with_jsonl() -> None:
    a = read_trainer_log(RUN / "trainer_log.jsonl")
    b = read_trainer_state(RUN / "trainer_state.json")
    assert [e.step for e in a.train] == [e.step for e in b.train]
    assert [e.loss for e in a.train] == pytest.approx([e.loss for e in b.train])


def test_bad_logs(tmp_path: Path) -> None:
    good = json.dumps({"current_steps": 1, "loss": 1.0, "epoch": 0.1})
    p = tmp_path / "trainer_log.jsonl"
    p.write_text(good + "\n{not json\n" + good + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"trainer_log.jsonl:2"):
        read_trainer_log(p)
    # a run killed mid-write leaves a truncated last line: tolerated
    p.write_text(good + '\n{"current_steps": 2, "lo', encoding="utf-8")
    assert len(read_trainer_log(p).train) == 1
    # NaN losses are counted, not used
    p.write_text(good + '\n{"current_steps": 2, "loss": NaN, "epoch": 0.2}\n', encoding="utf-8")
    log = read_trainer_log(p)
    assert len(log.train) == 1 and len(log.nonfinite) == 1
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"no trainer_log\.jsonl"):
        read_log(tmp_path / "empty")
    st = detect_staircase(log)
    assert st["verdict"] == "inconclusive"


def test_config_validation() -> None:
    from dedup_audit.errors import ConfigError

    with pytest.raises(ConfigError):
        StaircaseConfig(window=0.9)


def test_placebo_cuts_leave_out_the_first_epoch() -> None:
    """Epoch 1's steep initial fall is no model for a mid-epoch cut (issue 10)."""
    st = detect_staircase(read_log(RUN))
    assert st["placebo"] and all(p["epoch"] >= 2 for p in st["placebo"])
    assert len(st["placebo"]) == 7  # one midpoint cut in each of epochs 2..8
    assert st["placebo_inflation"] >= 1.0


def test_cosine_restarts_give_a_rise_verdict_with_lr_evidence(tmp_path: Path) -> None:
    log = read_trainer_log(_write_log(tmp_path, sim.restart_log()))
    st = detect_staircase(log)
    assert st["verdict"] == "rise"
    assert [b["verdict"] for b in st["boundaries"]] == ["rise"] * 3
    for b in st["boundaries"]:
        assert b["lr_jump"] and b["lr_after"] > b["lr_before"]
        assert b["jump"] < 0 and b["p_rise"] < 0.01
        assert "learning rate jumps up" in b["reasons"][0]
        assert "schedule restart" in b["reasons"][0]


def test_step_decay_lr_drop_is_not_a_staircase(tmp_path: Path) -> None:
    log = read_trainer_log(_write_log(tmp_path, sim.restart_log(schedule="step")))
    st = detect_staircase(log)
    assert st["verdict"] != "staircase"
    dropped = [b for b in st["boundaries"] if b["jump"] > 0 and b["p_value"] < 0.01]
    assert dropped, st["boundaries"]  # the loss does fall at the boundaries ...
    for b in dropped:  # ... and the lr explains it
        assert b["verdict"] == "inconclusive" and "learning rate jumps down" in b["reasons"][0]


def test_coarse_logging_is_not_called_and_gets_a_logging_steps_advice(tmp_path: Path) -> None:
    run = sim.simulate(epochs=5)  # 23 steps per epoch
    sim.write_run(run, tmp_path)
    rows = [r for r in run.log if "loss" in r][9::10]  # logging_steps: 10
    st = detect_staircase(read_trainer_log(_write_log(tmp_path / "coarse", rows)))
    assert st["verdict"] != "staircase"
    assert st["logged_points_per_epoch"] <= 3
    assert "logging_steps: 1" in st["logging_advice"]
    # HF's default logging_steps: 500 on a 92-step run leaves one point; trainer_state.json
    # still says how many steps an epoch has, so the advice names a value
    one = [r for r in run.log if "loss" in r][-1:]
    log = read_trainer_log(_write_log(tmp_path / "one", one))
    log.total_steps, log.num_train_epochs = 115, 5.0
    st = detect_staircase(log)
    assert st["verdict"] == "inconclusive" and st["boundaries"] == []
    assert "set logging_steps: 1" in st["reasons"][0] and "23 steps" in st["reasons"][0]
