"""Recommendations: what to change in the data or the training config, each with its evidence.

Separate from the diagnosis because it answers a different question (what to do, not what
happened) and reads the diagnosis' verdicts and figures rather than recomputing them. One
recommendation per setting: two reasons to change the same setting become one line with both
pieces of evidence.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dedup_audit.training.diagnosis import (
    NOT_SUPPORTED,
    SUPPORTED,
    UNDECIDED,
    Hypothesis,
    fmt,
)


@dataclass
class Recommendation:
    """One change, the YAML/CLI line that makes it, and why."""

    key: str  # the setting it changes (one recommendation per key)
    action: str
    setting: str
    evidence: str
    hypothesis: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "setting": self.setting,
            "evidence": self.evidence,
            "hypothesis": self.hypothesis,
        }


def _add(recs: dict[str, Recommendation], rec: Recommendation) -> None:
    old = recs.get(rec.key)
    if old is None:
        recs[rec.key] = rec
    elif rec.evidence not in old.evidence:
        old.evidence += "; " + rec.evidence
        if rec.hypothesis not in old.hypothesis.split(", "):
            old.hypothesis += ", " + rec.hypothesis


def best_epochs(st: Mapping[str, Any], by_id: Mapping[str, Hypothesis]) -> tuple[int, str] | None:
    """The epoch count a held-out curve points at: per-sample held-out losses first (they are
    measured at each checkpoint), else the eval loss in the log. None when neither rises."""
    held = by_id["a"].figures.get("heldout_best") if "a" in by_id else None
    if held and held["rises"]:
        return max(1, round(held["epoch"])), (
            f"held-out per-sample loss is lowest at epoch {held['epoch']:g} ({held['loss']:.3g}) "
            f"and rises {held['rise_after']:.3g} by epoch {held['last_epoch']:g}"
        )
    evl = st.get("eval") or {}
    if evl.get("present") and evl.get("eval_rising_after_best") and evl.get("best_eval_epoch"):
        return max(1, round(evl["best_eval_epoch"])), (
            f"eval loss is lowest at epoch {evl['best_eval_epoch']:g} and rises after it"
        )
    return None


def recommend(
    staircase: Mapping[str, Any] | None,
    samples: Mapping[str, Any] | None,
    diagnosis: Sequence[Hypothesis],
    *,
    args: Mapping[str, Any] | None = None,
    duplicated_records: int | None = None,
    data_path: str | None = None,
    checkpoints: int = 0,
) -> list[Recommendation]:
    """What to change, each with the evidence behind it (never a recommendation without one)."""
    args = args or {}
    st = staircase or {}
    sm = samples if samples and samples.get("available") else None
    by_id = {d.id: d for d in diagnosis}
    verdict = {d.id: d.verdict for d in diagnosis}
    recs: dict[str, Recommendation] = {}
    n_ep = args.get("num_train_epochs") or st.get("num_epochs_logged")
    memorized = verdict.get("a") == SUPPORTED
    best = best_epochs(st, by_id)
    if best is not None:
        epochs, why = best
        _add(
            recs,
            Recommendation(
                "num_train_epochs",
                f"train for fewer epochs ({epochs} instead of {fmt(n_ep, 'g')})",
                f"num_train_epochs: {epochs}",
                why,
                "a",
            ),
        )
    lr = args.get("learning_rate")
    if memorized and st.get("verdict") == "staircase" and isinstance(lr, int | float) and lr > 0:
        _add(
            recs,
            Recommendation(
                "learning_rate",
                "lower the learning rate, so each pass memorizes less",
                f"learning_rate: {lr / 2:.3g}",
                f"each new pass steps the train loss down while the held-out loss does not "
                f"follow (learning_rate {lr:g} now)",
                "a",
            ),
        )
    dup_n = duplicated_records
    if sm and sm.get("membership"):
        dup_n = sm["membership"]["duplicated_records"] - sm["membership"]["clusters"]
    if dup_n:
        auc = by_id["b1"].figures.get("auc") if "b1" in by_id else None
        share = by_id["b2"].figures.get("duplicate_share") if "b2" in by_id else None
        evidence = (
            f"duplicated samples are memorized more: AUC={fmt(auc)}"
            if auc is not None
            else "the scan found them; their effect is unmeasured without per-sample losses"
        )
        if share:
            evidence += (
                f"; they carry {100 * share['drop_share']:.0f}% of each boundary drop from "
                f"{100 * share['row_share']:.0f}% of rows"
            )
        _add(
            recs,
            Recommendation(
                "data",
                f"remove the {dup_n} redundant row(s) (keep one per cluster)",
                f"dedup-audit clean {data_path or 'DATA'} -o DATA.clean.json",
                evidence,
                "b1, b2",
            ),
        )
    if memorized and verdict.get("b2") != SUPPORTED:
        _add(
            recs,
            Recommendation(
                "more_data",
                "add more distinct samples: with the same rows, every pass is another exposure",
                "dataset: <more distinct rows>",
                "unique samples step down at every boundary too"
                if verdict.get("b2") == NOT_SUPPORTED
                else "the train loss steps down at each pass while the held-out loss does not",
                "a",
            ),
        )
    has_reference = bool((st.get("eval") or {}).get("present")) or bool(
        sm and sm["stats"]["train_vs_heldout_log_drop"].get("n_y")
    )
    if not has_reference:
        _add(
            recs,
            Recommendation(
                "val_size",
                "hold out a validation split to choose the number of epochs",
                "val_size: 0.1\neval_strategy: epoch",
                "no eval loss in the log and no held-out per-sample losses: without a held-out "
                "curve the report cannot tell memorization from learning",
                "a",
            ),
        )
    advice = st.get("logging_advice")
    if advice:
        value = advice.split("set logging_steps: ", 1)[-1].split(" ", 1)[0]
        _add(
            recs,
            Recommendation(
                "logging_steps",
                "log often enough that each boundary has points to test",
                f"logging_steps: {value}",
                advice,
                "a",
            ),
        )
    if not sm and (checkpoints == 0 or str(args.get("save_strategy", "")) not in ("epoch", "")):
        _add(
            recs,
            Recommendation(
                "save_strategy",
                "save a checkpoint at every epoch and score per-sample losses on each",
                "save_strategy: epoch\n"
                "# then: dedup-audit losses RUN_DIR --config train.yaml -o losses.jsonl",
                f"{checkpoints} checkpoint folder(s) found; per-sample losses are what link the "
                "drops to samples",
                "a, b1, b2",
            ),
        )
    jumps = (st.get("lr") or {}).get("jumps_at_boundaries")
    if jumps:
        rises = by_id["c"].figures.get("rises") if "c" in by_id else None
        _add(
            recs,
            Recommendation(
                "lr_scheduler_type",
                "use a schedule without restarts at epoch boundaries",
                "lr_scheduler_type: cosine",
                f"the learning rate jumps at boundary(ies) {jumps}"
                + (f" and the loss rises at {rises}" if rises else ""),
                "c",
            ),
        )
    d = by_id.get("d")
    if d is not None and d.verdict == UNDECIDED and d.figures.get("aligned_kinds"):
        spe = st.get("steps_per_epoch")
        off = str(max(1, int(spe * 0.6))) if spe else "<not a multiple of the steps per epoch>"
        lines = []
        if "save" in d.figures["aligned_kinds"]:
            lines += ["save_strategy: steps", f"save_steps: {off}"]
        if "eval" in d.figures["aligned_kinds"]:
            lines += ["eval_strategy: steps", f"eval_steps: {off}"]
        _add(
            recs,
            Recommendation(
                "event_steps",
                "once, put the checkpoint/eval events off the epoch boundaries to rule them out",
                "\n".join(lines),
                f"every {' and '.join(d.figures['aligned_kinds'])} event coincides with a "
                "boundary in this run, so the log cannot separate them",
                "d",
            ),
        )
    return list(recs.values())
