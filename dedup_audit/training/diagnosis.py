"""The differential diagnosis: verdicts for the usual explanations of a loss staircase.

The per-epoch reshuffle gives every sample one more exposure at each boundary, so a staircase
needs no duplicates at all; duplicates add exposures inside epochs. The diagnosis therefore
compares groups instead of assuming that duplicates cause the step, and splits the duplicate
question in two: are duplicates memorized *more* (b1, a ranking test), and do they *explain* the
staircase (b2, their share of each boundary drop against their share of the rows)? Each
hypothesis says which file or setting would decide it when the inputs cannot.

Each hypothesis is one small function over the report's staircase and samples sections,
returning a typed `Hypothesis`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from statistics import mean
from typing import Any

SUPPORTED, NOT_SUPPORTED, UNDECIDED = "supported", "not supported", "undecided"
#: unique rows dropping at least this share of the all-row mean drop: the staircase does not
#: need the duplicates (b2 not supported); below half of it, they explain it
UNIQUE_SHARE_EXPLAINS = 0.5


def fmt(x: Any, spec: str = ".3g") -> str:
    """A number for an evidence line; 'n/a' when it could not be computed."""
    return "n/a" if x is None else format(x, spec)


@dataclass
class Hypothesis:
    """One explanation with its verdict, the evidence lines and what would decide it."""

    id: str
    hypothesis: str
    verdict: str = UNDECIDED
    evidence: list[str] = field(default_factory=list)
    decided_by: str = ""
    figures: dict[str, Any] = field(default_factory=dict)  # numbers the headline quotes

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "hypothesis": self.hypothesis,
            "verdict": self.verdict,
            "evidence": self.evidence,
            "decided_by": self.decided_by,
            "figures": self.figures,
        }


def boundary_phrase(b: Mapping[str, Any]) -> str:
    """'2 (drop 0.45 = 77.0x the trend, p=0.0012)'; 'against a flat trend' without a ratio."""
    ratio = b.get("ratio")
    vs = f" = {ratio:.1f}x the trend" if ratio is not None else " against a flat trend"
    return f"{b['boundary']} (drop {fmt(b.get('drop'))}{vs}, p={fmt(b.get('p_value'), '.2g')})"


def heldout_curve(samples: Mapping[str, Any] | None) -> dict[float, float]:
    """Mean held-out per-sample loss per trained epoch (epoch 0, the base model, left out)."""
    if not samples or not samples.get("available"):
        return {}
    curve = ((samples.get("groups") or {}).get("heldout") or {}).get("mean_loss") or {}
    return {float(e): v for e, v in curve.items() if v is not None and float(e) > 0}


def best_heldout_epoch(samples: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Where the held-out per-sample loss is lowest, and how much it rises after."""
    curve = heldout_curve(samples)
    if len(curve) < 2:
        return None
    best = min(curve, key=lambda e: (curve[e], e))
    last = max(curve)
    return {
        "epoch": best,
        "loss": curve[best],
        "last_epoch": last,
        "last_loss": curve[last],
        "rise_after": curve[last] - curve[best],
        "rises": best < last and curve[last] > curve[best] * 1.01,
    }


def _memorization(st: Mapping[str, Any], sm: Mapping[str, Any] | None) -> Hypothesis:
    h = Hypothesis(
        "a",
        "memorization of repeated samples (train loss falls at each new pass while held-out stalls)",
        decided_by="a held-out reference: `val_size: 0.1` + `eval_strategy: epoch` in the "
        "LLaMA-Factory YAML (eval loss), or --heldout with per-sample losses of samples never "
        "trained on",
    )
    stair = st.get("verdict")
    stair_b = [b for b in st.get("boundaries", []) if b.get("verdict") == "staircase"]
    if st:
        h.evidence.append(
            f"logs: staircase verdict '{stair}'"
            + (" at boundary(ies) " + ", ".join(map(boundary_phrase, stair_b)) if stair_b else "")
        )
    evl = st.get("eval") or {}
    eval_signal = bool(
        evl.get("present") and (evl.get("gap_growing") or evl.get("eval_rising_after_best"))
    )
    if evl.get("present"):
        h.evidence.append(
            f"eval: train/eval gap {fmt(evl.get('gap_first'))} -> {fmt(evl.get('gap_last'))}"
            f" (growth {fmt(evl.get('gap_growth'))}); best eval loss at epoch "
            f"{fmt(evl.get('best_eval_epoch'))}"
            + ("; eval loss rises after it" if evl.get("eval_rising_after_best") else "")
        )
    held_signal = held_known = sample_steps = False
    if sm:
        tvh = sm["stats"]["train_vs_heldout_log_drop"]
        if tvh.get("n_y"):
            held_known = True
            held_signal = bool(
                tvh.get("p_value") is not None
                and tvh["p_value"] < 0.01
                and (tvh.get("train_median") or 0) > (tvh.get("heldout_median") or 0)
            )
            h.evidence.append(
                f"per-sample: median log-loss drop train {fmt(tvh.get('train_median'))} vs "
                f"held-out {fmt(tvh.get('heldout_median'))} (Mann-Whitney U="
                f"{fmt(tvh.get('U'), '.1f')}, p={fmt(tvh.get('p_value'), '.2g')}, "
                f"n={tvh['n_x']} vs {tvh['n_y']})"
            )
        best = best_heldout_epoch(sm)
        if best:
            h.figures["heldout_best"] = best
            h.evidence.append(
                f"per-sample held-out loss is lowest at epoch {best['epoch']:g} "
                f"({best['loss']:.3g})"
                + (
                    f" and rises {best['rise_after']:.3g} by epoch {best['last_epoch']:g}"
                    if best["rises"]
                    else ""
                )
            )
        for b in sm.get("boundaries", []):
            f = b.get("singleton_fraction_dropping")
            if b["from_epoch"] > 0 and f is not None:
                sample_steps = sample_steps or f >= 0.8
                h.evidence.append(
                    f"per-sample: epoch {b['from_epoch']:g}->{b['to_epoch']:g}: mean drop "
                    f"{fmt(b['total_mean_drop'])}, {100 * f:.0f}% of unique samples dropped"
                    + (
                        f", held-out {fmt(b['heldout_mean_drop'])}"
                        if b.get("heldout_mean_drop") is not None
                        else ""
                    )
                )
    reference = held_known or bool(evl.get("present"))
    if (stair == "staircase" or sample_steps) and (eval_signal or held_signal):
        h.verdict = SUPPORTED
    elif reference and not (eval_signal or held_signal) and stair != "staircase":
        h.verdict = NOT_SUPPORTED
    elif reference and not (eval_signal or held_signal):
        h.evidence.append(
            "train loss steps down but the held-out/eval loss falls with it: generalization, "
            "not only memorization"
        )
    return h


def _dups_memorized_more(
    sm: Mapping[str, Any] | None, duplicated_records: int | None
) -> Hypothesis:
    h = Hypothesis(
        "b1",
        "duplicated samples are memorized more than unique ones",
        decided_by="--data DATA (or --scan scan/report.json) together with --losses from "
        "`dedup-audit losses`",
    )
    if not sm or sm.get("membership") is None:
        if duplicated_records is not None:
            h.evidence.append(f"scan: {duplicated_records} record(s) sit in duplicate clusters")
        h.evidence.append("no per-sample losses joined with the scan's clusters")
        if duplicated_records == 0:
            h.verdict = NOT_SUPPORTED
        return h
    mem = sm["membership"]
    st_auc = sm["stats"]["auc_memorization_duplicated_vs_unique"]
    sp = sm["stats"]["spearman_copies_vs_total_drop"]
    sp1 = sm["stats"]["spearman_copies_vs_drop_since_first"]
    h.evidence.append(
        f"scan ({mem['source']}, view {mem['view']}): {mem['duplicated_records']} record(s) in "
        f"{mem['clusters']} duplicate cluster(s)"
    )
    if mem["duplicated_records"] == 0:
        h.verdict = NOT_SUPPORTED
        return h
    h.figures["auc"] = st_auc.get("auc")
    h.evidence.append(
        f"memorization score duplicated vs unique: AUC={fmt(st_auc.get('auc'))}, "
        f"Mann-Whitney U={fmt(st_auc.get('U'), '.1f')}, p={fmt(st_auc.get('p_value'), '.2g')}, "
        f"n={st_auc['n_x']} clusters vs {st_auc['n_y']} unique"
    )
    h.evidence.append(
        f"Spearman(copies, drop epoch {sm['stats']['total_drop']['from_epoch']:g}->"
        f"{sm['stats']['total_drop']['to_epoch']:g}): rho={fmt(sp.get('rho'))}, "
        f"p={fmt(sp.get('p_value'), '.2g')}, n={sp['n']}; since epoch "
        f"{sm['stats']['drop_since_first']['from_epoch']:g}: rho={fmt(sp1.get('rho'))}, "
        f"n={sp1['n']}"
    )
    expo = sm.get("exposures", {})
    if expo.get("verdict"):
        h.evidence.append(f"exposures: {expo['verdict']} ({expo.get('reason')})")
    auc, p = st_auc.get("auc"), st_auc.get("p_value")
    if auc is None or p is None:
        h.verdict = UNDECIDED
    elif auc >= 0.7 and p < 0.01 and st_auc["n_x"] >= 3:
        h.verdict = SUPPORTED
    elif auc < 0.6 or p >= 0.05:
        h.verdict = NOT_SUPPORTED
    return h


def duplicate_share(sm: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Rows and drop carried by duplicated records, averaged over the boundaries after the first
    trained epoch, and how fast unique rows drop relative to all rows."""
    if not sm or not sm.get("membership") or not sm.get("boundaries"):
        return None
    rows, drops, unique_rel = [], [], []
    for b in sm["boundaries"]:
        if b["from_epoch"] < 1 or not b.get("total_mean_drop") or b["total_mean_drop"] <= 0:
            continue
        single = b["shares"]["size"].get("singleton")
        if not single or single.get("share_of_drop") is None:
            continue
        rows.append(1 - single["row_share"])
        drops.append(1 - single["share_of_drop"])
        unique_rel.append(single["mean_drop"] / b["total_mean_drop"])
    if not rows:
        return None
    return {
        "row_share": mean(rows),
        "drop_share": mean(drops),
        "unique_drop_vs_all": mean(unique_rel),
        "boundaries": len(rows),
    }


def _dups_explain_staircase(st: Mapping[str, Any], sm: Mapping[str, Any] | None) -> Hypothesis:
    h = Hypothesis(
        "b2",
        "duplicates explain the staircase (they carry the boundary drops)",
        decided_by="per-sample losses (--losses) joined with the clusters (--data or --scan)",
    )
    share = duplicate_share(sm)
    if share is None:
        h.evidence.append("no per-sample drops by group (needs --losses and --data/--scan)")
        return h
    h.figures["duplicate_share"] = share
    for b in (sm or {}).get("boundaries", []):
        single = b["shares"]["size"].get("singleton") or {}
        if b["from_epoch"] < 1 or single.get("share_of_drop") is None:
            continue
        h.evidence.append(
            f"epoch {b['from_epoch']:g}->{b['to_epoch']:g}: duplicated rows carry "
            f"{100 * (1 - single['share_of_drop']):.0f}% of the mean drop from "
            f"{100 * (1 - single['row_share']):.0f}% of rows"
        )
    rel = share["unique_drop_vs_all"]
    h.evidence.append(
        f"on average duplicated rows ({100 * share['row_share']:.0f}% of rows) carry "
        f"{100 * share['drop_share']:.0f}% of each boundary drop; unique rows drop "
        f"{rel:.2f}x the all-row mean"
    )
    if share["row_share"] == 0:
        h.verdict = NOT_SUPPORTED
    elif rel >= UNIQUE_SHARE_EXPLAINS:
        h.verdict = NOT_SUPPORTED
        h.evidence.append(
            "unique samples step down at every boundary too: under per-epoch reshuffling each "
            "sample's next exposure is the step; removing the duplicates would keep "
            f"~{100 * rel:.0f}% of its depth per row"
        )
    else:
        h.verdict = SUPPORTED
        h.evidence.append(
            "unique samples barely drop at the boundaries: the steps come from the duplicates"
        )
    return h


def _schedule(st: Mapping[str, Any], args: Mapping[str, Any], staircase: bool) -> Hypothesis:
    h = Hypothesis(
        "c",
        "learning-rate schedule or batch-size / gradient-accumulation effects at the boundary",
        decided_by="the `lr` field of trainer_log.jsonl and `lr_scheduler_type` / warmup in "
        "the YAML",
    )
    lr = st.get("lr") or {}
    sched = str(args.get("lr_scheduler_type") or "")
    if not staircase or not st.get("boundaries"):
        h.evidence.append("no training log with epoch boundaries")
    elif not lr.get("present"):
        h.evidence.append("the log has no learning rate ('lr' / 'learning_rate')")
    else:
        jumps = lr.get("jumps_at_boundaries") or []
        rises = [b["boundary"] for b in st["boundaries"] if b.get("verdict") == "rise"]
        for b in st["boundaries"]:
            if b.get("lr_before") is not None:
                h.evidence.append(
                    f"boundary {b['boundary']}: lr {b['lr_before']:.3g} -> {b['lr_after']:.3g}"
                    f" ({'jump' if b.get('lr_jump') else 'continuous'})"
                    + (", the loss rises here" if b.get("verdict") == "rise" else "")
                )
        h.figures["rises"] = rises
        h.figures["lr_jumps"] = jumps
        h.verdict = SUPPORTED if jumps or "restart" in sched else NOT_SUPPORTED
    if sched:
        h.evidence.append(f"lr_scheduler_type: {sched}")
    if st.get("steps_per_epoch"):
        h.evidence.append(
            f"{st['steps_per_epoch']:g} optimizer steps per epoch, "
            f"{st.get('logged_points_per_epoch')} logged points per epoch"
        )
    bs, ga = args.get("per_device_train_batch_size"), args.get("gradient_accumulation_steps")
    if bs or ga:
        h.evidence.append(f"per_device_train_batch_size={bs}, gradient_accumulation_steps={ga}")
    return h


def _events(st: Mapping[str, Any], events: Mapping[str, Sequence[int]]) -> Hypothesis:
    h = Hypothesis(
        "d",
        "evaluation / checkpoint events (or a resume) coinciding with the boundaries",
        decided_by="save_steps / eval_steps not a multiple of the steps per epoch (YAML), or "
        "the run's trainer_state.json and checkpoint-* folders",
    )
    ev = {k: list(v) for k, v in events.items() if v}
    if not st or not st.get("boundaries"):
        h.evidence.append("no training log with epoch boundaries")
        return h
    stair_b = [b["boundary"] for b in st["boundaries"] if b.get("verdict") == "staircase"]
    resumed = [b["boundary"] for b in st["boundaries"] if b.get("resumed_here")]
    aligned = [b["boundary"] for b in st["boundaries"] if b.get("aligned_events")]
    off = st.get("off_boundary_events") or []
    sig_off = [e for e in off if e.get("significant")]
    for name, steps in sorted(ev.items()):
        h.evidence.append(
            f"{name} events at step(s) {', '.join(map(str, steps[:12]))}"
            + (" ..." if len(steps) > 12 else "")
        )
    if resumed:
        h.evidence.append(f"the run was resumed at boundary(ies) {resumed}")
    if off:
        h.evidence.append(
            f"{len(off)} event(s) inside epochs; {len(sig_off)} with a significant drop"
            + (
                f" (e.g. step {sig_off[0]['step']}, p={fmt(sig_off[0]['p_value'], '.2g')})"
                if sig_off
                else ""
            )
        )
    aligned_kinds = sorted({k for b in st["boundaries"] for k in (b.get("aligned_events") or {})})
    h.figures["aligned_kinds"] = aligned_kinds
    if any(b in resumed for b in stair_b) or sig_off:
        h.verdict = SUPPORTED
    elif off:
        h.verdict = NOT_SUPPORTED
        h.evidence.append("events inside epochs leave the loss on its trend")
    elif aligned:
        h.verdict = UNDECIDED
        h.evidence.append(
            f"{' and '.join(aligned_kinds)} events sit on every tested boundary "
            f"({', '.join(map(str, aligned))}), so this run cannot separate them from the new "
            "pass; one run with them off the boundaries would (saving and evaluating do not "
            "change the weights, so they are unlikely causes)"
        )
    elif ev:
        h.verdict = NOT_SUPPORTED
        h.evidence.append("no save/eval event or resume coincides with any boundary")
    else:
        h.evidence.append("no save/eval events known")
    return h


def diagnose(
    staircase: Mapping[str, Any] | None,
    samples: Mapping[str, Any] | None,
    *,
    args: Mapping[str, Any] | None = None,
    events: Mapping[str, Sequence[int]] | None = None,
    duplicated_records: int | None = None,
) -> list[Hypothesis]:
    """Verdicts for the usual explanations of a staircase, each with evidence and the file or
    setting that would decide it when the inputs cannot."""
    st = staircase or {}
    sm = samples if samples and samples.get("available") else None
    return [
        _memorization(st, sm),
        _dups_memorized_more(sm, duplicated_records),
        _dups_explain_staircase(st, sm),
        _schedule(st, args or {}, bool(staircase)),
        _events(st, events or {}),
    ]
