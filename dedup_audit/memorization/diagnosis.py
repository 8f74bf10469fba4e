"""The differential diagnosis: verdicts for the four usual explanations of a loss staircase.

The per-epoch reshuffle gives every sample one more exposure at each boundary, so a staircase
needs no duplicates at all; duplicates add exposures inside epochs. The diagnosis therefore
compares groups instead of assuming that duplicates cause the step, and says for each hypothesis
which file or setting would decide it when the inputs cannot.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

SUPPORTED, NOT_SUPPORTED, UNDECIDED = "supported", "not supported", "undecided"


def fmt(x: Any, spec: str = ".3g") -> str:
    """A number for an evidence line; 'n/a' when it could not be computed."""
    return "n/a" if x is None else format(x, spec)


def _hyp(
    hid: str, title: str, verdict: str, evidence: list[str], decided_by: str
) -> dict[str, Any]:
    return {
        "id": hid,
        "hypothesis": title,
        "verdict": verdict,
        "evidence": evidence,
        "decided_by": decided_by,
    }


def diagnose(
    staircase: Mapping[str, Any] | None,
    samples: Mapping[str, Any] | None,
    *,
    args: Mapping[str, Any] | None = None,
    events: Mapping[str, Sequence[int]] | None = None,
    duplicated_records: int | None = None,
) -> list[dict[str, Any]]:
    """Verdicts for the four usual explanations of a staircase, each with evidence and the file or
    setting that would decide it when the inputs cannot."""
    args = args or {}
    st = staircase or {}
    sm = samples if samples and samples.get("available") else None
    stair = st.get("verdict")
    stair_b = [b for b in st.get("boundaries", []) if b.get("verdict") == "staircase"]
    out = []

    # (a) memorization of repeated samples
    ev: list[str] = []
    if staircase:
        ev.append(
            f"logs: staircase verdict '{stair}'"
            + (
                " at boundary(ies) "
                + ", ".join(
                    f"{b['boundary']} (drop {fmt(b.get('drop'))} = {fmt(b.get('ratio'), '.1f')}x trend, p={fmt(b.get('p_value'), '.2g')})"
                    for b in stair_b
                )
                if stair_b
                else ""
            )
        )
    evl = st.get("eval") or {}
    eval_signal = bool(
        evl.get("present") and (evl.get("gap_growing") or evl.get("eval_rising_after_best"))
    )
    if evl.get("present"):
        ev.append(
            f"eval: train/eval gap {fmt(evl.get('gap_first'))} -> {fmt(evl.get('gap_last'))}"
            f" (growth {fmt(evl.get('gap_growth'))}); best eval loss at epoch {fmt(evl.get('best_eval_epoch'))}"
            + ("; eval loss rises after it" if evl.get("eval_rising_after_best") else "")
        )
    held_signal = False
    held_known = False
    sample_steps = False
    if sm:
        tvh = sm["stats"]["train_vs_heldout_log_drop"]
        if tvh.get("n_y"):
            held_known = True
            held_signal = bool(
                tvh.get("p_value") is not None
                and tvh["p_value"] < 0.01
                and (tvh.get("train_median") or 0) > (tvh.get("heldout_median") or 0)
            )
            ev.append(
                f"per-sample: median log-loss drop train {fmt(tvh.get('train_median'))} vs held-out "
                f"{fmt(tvh.get('heldout_median'))} (Mann-Whitney U={fmt(tvh.get('U'), '.1f')}, "
                f"p={fmt(tvh.get('p_value'), '.2g')}, n={tvh['n_x']} vs {tvh['n_y']})"
            )
        for b in sm.get("boundaries", []):
            f = b.get("singleton_fraction_dropping")
            if b["from_epoch"] > 0 and f is not None:
                sample_steps = sample_steps or f >= 0.8
                ev.append(
                    f"per-sample: epoch {b['from_epoch']:g}->{b['to_epoch']:g}: mean drop "
                    f"{fmt(b['total_mean_drop'])}, {100 * f:.0f}% of unique samples dropped"
                    + (
                        f", held-out {fmt(b['heldout_mean_drop'])}"
                        if b.get("heldout_mean_drop") is not None
                        else ""
                    )
                )
    if (stair == "staircase" or sample_steps) and (eval_signal or held_signal):
        verdict = SUPPORTED
    elif (
        (held_known or evl.get("present"))
        and not (eval_signal or held_signal)
        and stair != "staircase"
    ):
        verdict = NOT_SUPPORTED
    elif (held_known or evl.get("present")) and not (eval_signal or held_signal):
        verdict = UNDECIDED
        ev.append(
            "train loss steps down but the held-out/eval loss falls with it: generalization, not only memorization"
        )
    else:
        verdict = UNDECIDED
    out.append(
        _hyp(
            "a",
            "memorization of repeated samples (train loss falls at each new pass while held-out stalls)",
            verdict,
            ev,
            "a held-out reference: `val_size: 0.1` + `eval_strategy: epoch` in the LLaMA-Factory YAML "
            "(eval loss), or --heldout with per-sample losses of samples never trained on",
        )
    )

    # (b) duplicated or near-duplicated data
    ev = []
    if not sm or sm.get("membership") is None:
        verdict = UNDECIDED
        if duplicated_records is not None:
            ev.append(f"scan: {duplicated_records} record(s) sit in duplicate clusters")
        ev.append("no per-sample losses joined with the scan's clusters")
        if duplicated_records == 0:
            verdict = NOT_SUPPORTED
    else:
        mem = sm["membership"]
        st_auc = sm["stats"]["auc_memorization_duplicated_vs_unique"]
        sp = sm["stats"]["spearman_copies_vs_total_drop"]
        sp1 = sm["stats"]["spearman_copies_vs_drop_since_first"]
        ev.append(
            f"scan ({mem['source']}, view {mem['view']}): {mem['duplicated_records']} record(s) in "
            f"{mem['clusters']} duplicate cluster(s)"
        )
        if mem["duplicated_records"] == 0:
            verdict = NOT_SUPPORTED
        else:
            ev.append(
                f"memorization score duplicated vs unique: AUC={fmt(st_auc.get('auc'))}, "
                f"Mann-Whitney U={fmt(st_auc.get('U'), '.1f')}, p={fmt(st_auc.get('p_value'), '.2g')}, "
                f"n={st_auc['n_x']} clusters vs {st_auc['n_y']} unique"
            )
            ev.append(
                f"Spearman(copies, drop epoch {sm['stats']['total_drop']['from_epoch']:g}->"
                f"{sm['stats']['total_drop']['to_epoch']:g}): rho={fmt(sp.get('rho'))}, "
                f"p={fmt(sp.get('p_value'), '.2g')}, n={sp['n']}; since epoch "
                f"{sm['stats']['drop_since_first']['from_epoch']:g}: rho={fmt(sp1.get('rho'))}, n={sp1['n']}"
            )
            for b in sm.get("boundaries", []):
                sz = b["shares"]["size"]
                single = sz.get("singleton", {})
                dup_rows = 1 - (single.get("row_share") or 0.0)
                dup_drop = 1 - (single.get("share_of_drop") or 0.0) if single else 1.0
                ev.append(
                    f"epoch {b['from_epoch']:g}->{b['to_epoch']:g}: duplicated rows carry "
                    f"{100 * dup_drop:.0f}% of the mean drop from {100 * dup_rows:.0f}% of rows"
                )
            auc, p = st_auc.get("auc"), st_auc.get("p_value")
            if auc is not None and p is not None and auc >= 0.7 and p < 0.01 and st_auc["n_x"] >= 3:
                verdict = SUPPORTED
            elif auc is None or p is None:
                verdict = UNDECIDED
            elif auc < 0.6 or p >= 0.05:
                verdict = NOT_SUPPORTED
            else:
                verdict = UNDECIDED
            expo = sm.get("exposures", {})
            if expo.get("verdict"):
                ev.append(f"exposures: {expo['verdict']} ({expo.get('reason')})")
            b_single = [
                b.get("singleton_fraction_dropping")
                for b in sm.get("boundaries", [])
                if b["from_epoch"] > 0
            ]
            if b_single and min(x or 0 for x in b_single) >= 0.8:
                ev.append(
                    "unique samples also drop at every boundary: the reshuffle gives each sample one "
                    "more exposure per epoch, so the staircase does not need duplicates; duplicates deepen it"
                )
    out.append(
        _hyp(
            "b",
            "duplicated or near-duplicated data (extra exposures inside each epoch)",
            verdict,
            ev,
            "--data DATA (or --scan scan/report.json) together with --losses from `dedup-audit losses`",
        )
    )

    # (c) learning-rate schedule / batch size / gradient accumulation
    ev = []
    lr = st.get("lr") or {}
    sched = str(args.get("lr_scheduler_type") or "")
    if not staircase or not st.get("boundaries"):
        verdict = UNDECIDED
        ev.append("no training log with epoch boundaries")
    elif not lr.get("present"):
        verdict = UNDECIDED
        ev.append("the log has no learning rate ('lr' / 'learning_rate')")
    else:
        jumps = lr.get("jumps_at_boundaries") or []
        for b in st["boundaries"]:
            if b.get("lr_before") is not None:
                ev.append(
                    f"boundary {b['boundary']}: lr {b['lr_before']:.3g} -> {b['lr_after']:.3g}"
                    f" ({'jump' if b.get('lr_jump') else 'continuous'})"
                )
        verdict = SUPPORTED if jumps or "restart" in sched else NOT_SUPPORTED
    if sched:
        ev.append(f"lr_scheduler_type: {sched}")
    if st.get("steps_per_epoch"):
        ev.append(
            f"{st['steps_per_epoch']:g} optimizer steps per epoch, {st.get('logged_points_per_epoch')} logged points per epoch"
        )
    bs, ga = args.get("per_device_train_batch_size"), args.get("gradient_accumulation_steps")
    if bs or ga:
        ev.append(f"per_device_train_batch_size={bs}, gradient_accumulation_steps={ga}")
    out.append(
        _hyp(
            "c",
            "learning-rate schedule or batch-size / gradient-accumulation effects at the boundary",
            verdict,
            ev,
            "the `lr` field of trainer_log.jsonl and `lr_scheduler_type` / warmup in the YAML",
        )
    )

    # (d) evaluation / checkpoint events (or a resume) coinciding with boundaries
    ev = []
    events = {k: list(v) for k, v in (events or {}).items() if v}
    if not staircase or not st.get("boundaries"):
        verdict = UNDECIDED
        ev.append("no training log with epoch boundaries")
    else:
        resumed = [b["boundary"] for b in st["boundaries"] if b.get("resumed_here")]
        aligned = [b["boundary"] for b in st["boundaries"] if b.get("aligned_events")]
        off = st.get("off_boundary_events") or []
        sig_off = [e for e in off if e.get("significant")]
        for name, steps in sorted(events.items()):
            ev.append(
                f"{name} events at step(s) {', '.join(map(str, steps[:12]))}{' ...' if len(steps) > 12 else ''}"
            )
        if resumed:
            ev.append(f"the run was resumed at boundary(ies) {resumed}")
        if aligned:
            ev.append(f"events coincide with boundary(ies) {aligned}")
        if off:
            ev.append(
                f"{len(off)} event(s) inside epochs; {len(sig_off)} with a significant drop"
                + (
                    f" (e.g. step {sig_off[0]['step']}, p={fmt(sig_off[0]['p_value'], '.2g')})"
                    if sig_off
                    else ""
                )
            )
        if (resumed and any(b in resumed for b in (x["boundary"] for x in stair_b))) or sig_off:
            verdict = SUPPORTED
        elif off:
            verdict = NOT_SUPPORTED
        elif not events and not st.get("boundaries"):
            verdict = UNDECIDED
        elif aligned:
            verdict = UNDECIDED
            ev.append(
                "every event sits on a boundary, so the log cannot separate them (saving or evaluating "
                "does not change the weights, but only a run with events off the boundaries proves it)"
            )
        elif events:
            verdict = NOT_SUPPORTED
            ev.append("no save/eval event or resume coincides with any boundary")
        else:
            verdict = UNDECIDED
            ev.append("no save/eval events known")
    out.append(
        _hyp(
            "d",
            "evaluation / checkpoint events (or a resume) coinciding with the boundaries",
            verdict,
            ev,
            "save_steps / eval_steps not a multiple of the steps per epoch (YAML), or the run's "
            "trainer_state.json and checkpoint-* folders",
        )
    )
    return out
