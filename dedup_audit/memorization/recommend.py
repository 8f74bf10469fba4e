"""Recommendations: what to change in the data or the training config, each with its evidence.

Separate from the diagnosis because it answers a different question (what to do, not what
happened) and reads the diagnosis' verdicts rather than recomputing them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dedup_audit.memorization.diagnosis import NOT_SUPPORTED, UNDECIDED, fmt


def recommend(
    staircase: Mapping[str, Any] | None,
    samples: Mapping[str, Any] | None,
    diagnosis: Sequence[Mapping[str, Any]],
    *,
    args: Mapping[str, Any] | None = None,
    duplicated_records: int | None = None,
    data_path: str | None = None,
    checkpoints: int = 0,
) -> list[dict[str, Any]]:
    """What to change, each with the evidence behind it (never a recommendation without one)."""
    args = args or {}
    st = staircase or {}
    sm = samples if samples and samples.get("available") else None
    verdict = {d["id"]: d["verdict"] for d in diagnosis}
    recs: list[dict[str, Any]] = []
    dup_n = duplicated_records
    if sm and sm.get("membership"):
        dup_n = sm["membership"]["duplicated_records"] - sm["membership"]["clusters"]
    if dup_n:
        auc = sm["stats"]["auc_memorization_duplicated_vs_unique"] if sm else {}
        recs.append(
            {
                "action": f"remove the {dup_n} redundant row(s) (keep one per cluster)",
                "setting": f"dedup-audit clean {data_path or 'DATA'} -o DATA.clean.json",
                "evidence": (
                    f"duplicated samples are memorized more: AUC={fmt(auc.get('auc'))} "
                    f"(p={fmt(auc.get('p_value'), '.2g')}, n={auc.get('n_x')} vs {auc.get('n_y')})"
                    if auc and auc.get("auc") is not None
                    else "the scan found them; their effect is unmeasured without per-sample losses"
                ),
                "hypothesis": "b",
            }
        )
    evl = st.get("eval") or {}
    n_ep = args.get("num_train_epochs") or st.get("num_epochs_logged")
    if evl.get("present") and evl.get("eval_rising_after_best") and evl.get("best_eval_epoch"):
        best = max(1, round(evl["best_eval_epoch"]))
        recs.append(
            {
                "action": f"train for fewer epochs ({best} instead of {n_ep})",
                "setting": f"num_train_epochs: {best}",
                "evidence": f"eval loss is lowest at epoch {evl['best_eval_epoch']:g} and rises after it",
                "hypothesis": "a",
            }
        )
    elif st.get("verdict") == "staircase" and verdict.get("a") != NOT_SUPPORTED:
        recs.append(
            {
                "action": "measure a held-out loss to choose the number of epochs",
                "setting": "val_size: 0.1\neval_strategy: epoch",
                "evidence": "the loss steps down at every new pass over the data; without a held-out "
                "curve the report cannot tell memorization from learning",
                "hypothesis": "a",
            }
        )
    per = st.get("logged_points_per_epoch")
    if (args.get("logging_steps") or 1) > 1 or (per is not None and per < 12):
        recs.append(
            {
                "action": "log every step so each boundary has enough points to test",
                "setting": "logging_steps: 1",
                "evidence": f"{per} logged point(s) per epoch"
                + (
                    f" (logging_steps: {args['logging_steps']})"
                    if args.get("logging_steps")
                    else ""
                ),
                "hypothesis": "a",
            }
        )
    if not sm and (checkpoints == 0 or str(args.get("save_strategy", "")) not in ("epoch", "")):
        recs.append(
            {
                "action": "save a checkpoint at every epoch and score per-sample losses on each",
                "setting": "save_strategy: epoch\n# then: dedup-audit losses RUN_DIR --data DATA -o losses.jsonl",
                "evidence": f"{checkpoints} checkpoint folder(s) found; per-sample losses are what link the drops to samples",
                "hypothesis": "a, b",
            }
        )
    if not evl.get("present") and not (sm and sm["stats"]["train_vs_heldout_log_drop"].get("n_y")):
        recs.append(
            {
                "action": "hold out a validation split",
                "setting": "val_size: 0.1\neval_strategy: epoch",
                "evidence": "no eval loss in the log and no held-out per-sample losses",
                "hypothesis": "a",
            }
        )
    jumps = (st.get("lr") or {}).get("jumps_at_boundaries")
    if jumps:
        recs.append(
            {
                "action": "use a schedule without restarts at epoch boundaries",
                "setting": "lr_scheduler_type: cosine",
                "evidence": f"the learning rate jumps at boundary(ies) {jumps}",
                "hypothesis": "c",
            }
        )
    if (
        verdict.get("d") == UNDECIDED
        and (st.get("boundaries") or [])
        and any(b.get("aligned_events") for b in st.get("boundaries", []))
    ):
        spe = st.get("steps_per_epoch")
        recs.append(
            {
                "action": "to rule out checkpoint/eval events, place them off the epoch boundaries once",
                "setting": "save_strategy: steps\nsave_steps: "
                + (str(max(1, int(spe * 0.6))) if spe else "<not a multiple of steps per epoch>"),
                "evidence": "all save/eval events coincide with boundaries in this run",
                "hypothesis": "d",
            }
        )
    return recs
