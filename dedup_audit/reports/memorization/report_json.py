"""report.json for the memorization report: the versioned source of truth.

The HTML page and the terminal summary render only what this dict holds. Everything that can be
computed from the given inputs is; everything that cannot is listed under "missing" with what it
would add and how to supply it, so partial inputs give a partial report, never a crash.

    {"schema": "dedup-audit/memorization", "version": 1, "tool_version": ..., "inputs": {...},
     "missing": [...], "training": {...}, "training_args": {...}, "checkpoints": [...],
     "events": {...}, "staircase": {...}, "samples": {...}, "diagnosis": [...],
     "recommendations": [...], "headline": "..."}
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dedup_audit.errors import InputError
from dedup_audit.records import Cluster, Dataset
from dedup_audit.training.diagnosis import (
    NOT_SUPPORTED,
    SUPPORTED,
    Hypothesis,
    diagnose,
    fmt,
)
from dedup_audit.training.losses import (
    LossTable,
    looks_like_losses,
    merge,
    read_key_list,
    read_losses,
)
from dedup_audit.training.membership import (
    Membership,
    membership_from_dataset,
    membership_from_scan_report,
)
from dedup_audit.training.recommend import Recommendation, recommend
from dedup_audit.training.samples import analyze_samples
from dedup_audit.training.staircase import StaircaseConfig, detect_staircase
from dedup_audit.training.trainer_log import (
    LogNotFoundError,
    TrainingLog,
    checkpoint_dirs,
    read_log,
)
from dedup_audit.training.training_args import read_training_args, relevant_args
from dedup_audit.writers import atomic_write_text

SCHEMA = "dedup-audit/memorization"
SCHEMA_VERSION = 2
LOSS_NAMES = ("losses.jsonl", "losses.parquet", "losses.csv")
ARGS_NAMES = ("training_args.yaml", "training_args.yml", "training_args.json", "train.yaml")


def _missing(what: str, effect: str, how: str) -> dict[str, str]:
    return {"what": what, "effect": effect, "how": how}


def _events(
    log: TrainingLog | None, checkpoints: list[int], args: dict[str, Any]
) -> dict[str, list[int]]:
    """Steps of checkpoint saves and evaluations: actual ones first, then the configured ones."""
    save = set(checkpoints)
    total = (log.total_steps if log else None) or args.get("max_steps")
    if str(args.get("save_strategy", "")) == "steps" and args.get("save_steps") and total:
        n = int(args["save_steps"])
        save |= set(range(n, int(total) + 1, n))
    if str(args.get("save_strategy", "")) == "epoch" and log is not None:
        save |= {
            e.step
            for e in log.train
            if e.epoch is not None and e.epoch >= 1 and abs(e.epoch - round(e.epoch)) < 1e-6
        }
    evals = {e.step for e in log.evals} if log else set()
    strat = str(args.get("eval_strategy") or args.get("evaluation_strategy") or "")
    if strat == "steps" and args.get("eval_steps") and total:
        n = int(args["eval_steps"])
        evals |= set(range(n, int(total) + 1, n))
    out = {"save": sorted(save), "eval": sorted(evals)}
    return {k: v for k, v in out.items() if v}


def _scan_clusters(report: dict[str, Any], dataset: Dataset, path: str) -> list[Cluster]:
    n = len(dataset.records)
    clusters = []
    for c in report.get("clusters", []):
        members = tuple(sorted(int(m["index"]) for m in c["members"]))
        for m in c["members"]:
            i = int(m["index"])
            if i >= n or dataset.records[i].id != str(m["id"]):
                raise InputError(
                    f"{path}: cluster {c['id']} member {m['id']!r} is not row {i} of --data; the scan "
                    "report was made on another file (rerun `dedup-audit scan` on this data)"
                )
        clusters.append(
            Cluster(id=int(c["id"]), view=str(c["view"]), kind=str(c["kind"]), members=members)
        )
    return clusters


def _load_scan_json(path: str | Path) -> dict[str, Any]:
    """A saved scan's report.json, through the one reader of saved scans."""
    from dedup_audit.reports.scan.saved import read

    return read(path).report


@dataclass
class Gathered:
    """What the input stages found (report.json `inputs`) and what they lacked (`missing`)."""

    inputs: dict[str, Any] = field(default_factory=dict)
    missing: list[dict[str, str]] = field(default_factory=list)

    def lack(self, what: str, effect: str, how: str) -> None:
        self.missing.append(_missing(what, effect, how))


@dataclass(frozen=True)
class RunStage:
    """The run folder (or single log file): its training log and checkpoint steps."""

    log: TrainingLog | None
    run_dir: Path | None
    checkpoints: list[int]


def read_run(run: str | Path | None, g: Gathered) -> RunStage:
    """The training log of a run folder or file; a folder without one is a partial report, a
    log that exists but cannot be read is an error (InputError naming file and line)."""
    if run is None:
        g.lack(
            "training log",
            "no staircase test and no lr/event diagnosis",
            "pass the run folder (output_dir) or trainer_log.jsonl",
        )
        return RunStage(None, None, [])
    rp = Path(run)
    g.inputs["run"] = str(rp)
    if not rp.exists():
        raise InputError(f"{rp}: run folder or log not found")
    run_dir = rp if rp.is_dir() else None
    log = None
    try:
        log = read_log(rp)
        g.inputs["trainer_log"] = log.path
    except LogNotFoundError as exc:
        g.lack(
            "training log",
            str(exc),
            "train with logging_steps: 1; LLaMA-Factory writes trainer_log.jsonl",
        )
    checkpoints = [s for s, _ in checkpoint_dirs(run_dir)] if run_dir else []
    return RunStage(log, run_dir, checkpoints)


def read_args(training_args: str | Path | None, g: Gathered) -> dict[str, Any]:
    if training_args is None:
        g.lack(
            "training arguments",
            "scheduler, batch and save/eval settings are read from the log only",
            "--training-args the LLaMA-Factory YAML you trained with",
        )
        return {}
    g.inputs["training_args"] = str(training_args)
    return read_training_args(training_args)


def read_membership(
    g: Gathered,
    *,
    dataset: Dataset | None,
    clusters: list[Cluster] | None,
    data: str | Path | None,
    scan: str | Path | None,
    view: str,
    progress: bool,
) -> Membership | None:
    """Duplicate clusters: from a given dataset, --data (scanned now, or with --scan's
    clusters), or a scan report alone."""
    if dataset is not None:
        g.inputs["data"] = ", ".join(dataset.paths)
        return membership_from_dataset(dataset, clusters or [], view)
    if data is not None:
        from dedup_audit.pipeline import load
        from dedup_audit.pipeline import scan as run_scan

        g.inputs["data"] = str(data)
        if scan is not None:
            report = _load_scan_json(scan)
            g.inputs["scan"] = str(scan)
            ds = load(data)
            return membership_from_dataset(ds, _scan_clusters(report, ds, str(scan)), view)
        result = run_scan(data, progress=progress)
        return membership_from_dataset(result.dataset, result.clusters, view)
    if scan is not None:
        g.inputs["scan"] = str(scan)
        return membership_from_scan_report(_load_scan_json(scan), view)
    g.lack(
        "dataset / scan",
        "no duplicate groups: hypotheses (b1) and (b2) stay undecided",
        "--data DATA (scanned on the fly) or --scan scan/report.json",
    )
    return None


def read_loss_tables(
    losses: str | Path | None, heldout: str | Path | None, g: Gathered
) -> tuple[LossTable | None, list[str]]:
    """--losses plus --heldout (a losses file, merged as split heldout, or a key list)."""
    table: LossTable | None = None
    heldout_keys: list[str] = []
    if losses is not None:
        table = read_losses(losses)
        g.inputs["losses"] = str(losses)
    if heldout is not None:
        g.inputs["heldout"] = str(heldout)
        if looks_like_losses(heldout):
            held_table = read_losses(heldout, split="heldout")
            table = merge([table, held_table]) if table is not None else held_table
        else:
            heldout_keys = read_key_list(heldout)
    if table is None:
        g.lack(
            "per-sample losses",
            "no per-sample drops, groups, AUC or top memorized samples",
            "dedup-audit losses RUN_DIR --config train.yaml -o losses.jsonl, then --losses "
            "losses.jsonl",
        )
    return table, heldout_keys


def build_report(
    run: str | Path | None = None,
    *,
    data: str | Path | None = None,
    losses: str | Path | None = None,
    scan: str | Path | None = None,
    heldout: str | Path | None = None,
    training_args: str | Path | None = None,
    dataset: Dataset | None = None,
    clusters: list[Cluster] | None = None,
    view: str = "full",
    staircase_config: StaircaseConfig | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Everything the inputs allow: staircase from logs, per-sample analysis from losses, groups
    from the scan's clusters, the differential diagnosis and recommendations.

    `run` is a training output_dir (trainer_log.jsonl, trainer_state.json, checkpoint-*,
    losses.jsonl, training_args.yaml are found there) or a single log file. `dataset` + `clusters`
    bypass loading and scanning (library use and tests).
    """
    g = Gathered()
    rs = read_run(run, g)
    log, run_dir = rs.log, rs.run_dir
    if run_dir is not None:
        if losses is None:
            losses = next((run_dir / n for n in LOSS_NAMES if (run_dir / n).is_file()), None)
        if training_args is None:
            training_args = next((run_dir / n for n in ARGS_NAMES if (run_dir / n).is_file()), None)
    args = read_args(training_args, g)
    checkpoints = rs.checkpoints
    events = _events(log, checkpoints, args)
    membership = read_membership(
        g, dataset=dataset, clusters=clusters, data=data, scan=scan, view=view, progress=progress
    )
    dup_records = membership.duplicated_records if membership is not None else None
    table, heldout_keys = read_loss_tables(losses, heldout, g)
    samples = (
        analyze_samples(table, membership, heldout_keys=heldout_keys) if table is not None else None
    )
    if (
        samples
        and samples.get("available")
        and not samples["stats"]["train_vs_heldout_log_drop"].get("n_y")
    ):
        g.lack(
            "held-out reference",
            "the memorization score is a raw loss reduction, not relative to unseen samples",
            "--heldout losses of samples never trained on (or a key list), or rows with split: heldout",
        )
    inputs, missing = g.inputs, g.missing

    stair = None
    if log is not None:
        stair = detect_staircase(log, staircase_config, events=events)
    hyps = diagnose(stair, samples, args=args, events=events, duplicated_records=dup_records)
    recs = recommend(
        stair,
        samples,
        hyps,
        args=args,
        duplicated_records=dup_records,
        data_path=str(data) if data is not None else None,
        checkpoints=len(checkpoints),
    )
    if log is None and table is None:
        raise InputError(
            f"{run if run is not None else 'no run given'}: nothing to report - no trainer_log.jsonl / "
            "trainer_state.json and no per-sample losses; give the training output_dir or --losses"
        )
    return {
        "schema": SCHEMA,
        "version": SCHEMA_VERSION,
        "tool_version": _tool_version(),
        "inputs": inputs,
        "missing": missing,
        "training": log.to_dict() if log else None,
        "training_args": relevant_args(args),
        "checkpoints": checkpoints,
        "events": events,
        "staircase": stair,
        "samples": samples,
        "diagnosis": [h.to_dict() for h in hyps],
        "recommendations": [r.to_dict() for r in recs],
        "headline": headline(stair, samples, hyps, recs),
    }


def _tool_version() -> str:
    from dedup_audit import __version__

    return __version__


def _stair_sentence(stair: dict[str, Any]) -> str:
    bs = stair["boundaries"]
    sb = [b for b in bs if b["verdict"] == "staircase"]
    if stair["verdict"] == "staircase":
        drops = [b["drop"] for b in sb if b.get("drop") is not None]
        trends = [max(0.0, b["trend_drop"]) for b in sb if b.get("trend_drop") is not None]
        ps = [b["p_value"] for b in sb if b.get("p_value") is not None]
        return (
            f"Staircase at {len(sb)} of {len(bs)} epoch boundaries: the loss drops "
            f"{fmt(min(drops))}-{fmt(max(drops))} where the within-epoch trend predicts at most "
            f"{fmt(max(trends))} (p <= {fmt(max(ps), '.2g')} each; run-level p="
            f"{fmt(stair['run_test']['p_value'], '.2g')})."
        )
    if stair["verdict"] == "rise":
        rb = [b for b in bs if b["verdict"] == "rise"]
        lr_up = [
            b
            for b in rb
            if b.get("lr_jump") and (b.get("lr_after") or 0) > (b.get("lr_before") or 0)
        ]
        return f"No staircase: the loss rises at {len(rb)} of {len(bs)} epoch boundaries" + (
            f", where the learning rate jumps up ({len(lr_up)} of them): a schedule "
            "restart, not memorization."
            if lr_up
            else "; the learning rate is continuous there (look at the data order or a resume)."
        )
    if stair["verdict"] == "smooth":
        return "No staircase: the loss crosses every epoch boundary as its trend predicts."
    return "Staircase inconclusive: " + "; ".join(stair["reasons"]) + "."


def headline(
    stair: dict[str, Any] | None,
    samples: dict[str, Any] | None,
    diagnosis: list[Hypothesis],
    recs: list[Recommendation],
) -> str:
    """What the evidence says, in three parts: the staircase, the cause that carries the drop
    (with its numbers), and the changes that follow from it."""
    parts = []
    if stair is not None:
        parts.append(_stair_sentence(stair))
    by_id = {h.id: h for h in diagnosis}
    a, b1, b2 = by_id["a"], by_id["b1"], by_id["b2"]
    share = b2.figures.get("duplicate_share")
    held = a.figures.get("heldout_best")
    if a.verdict == SUPPORTED:
        cause = "Cause: every new pass over the data lowers the training samples' loss"
        if share and b2.verdict != SUPPORTED:
            cause += (
                f" (unique rows, {100 * (1 - share['row_share']):.0f}% of the data, carry "
                f"{100 * (1 - share['drop_share']):.0f}% of each boundary drop)"
            )
        if held and held["rises"]:
            cause += (
                f" while the held-out loss is lowest at epoch {held['epoch']:g} and rises "
                f"{held['rise_after']:.3g} by epoch {held['last_epoch']:g}"
            )
        elif held:
            cause += f" while the held-out loss stays near {held['last_loss']:.3g}"
        parts.append(cause + ": memorization of the training samples.")
    elif a.verdict == NOT_SUPPORTED:
        parts.append("The held-out loss falls with the training loss: learning, not memorization.")
    if b2.verdict == SUPPORTED and share:
        parts.append(
            f"Duplicated rows ({100 * share['row_share']:.0f}% of the data) carry "
            f"{100 * share['drop_share']:.0f}% of each boundary drop: they explain the staircase."
        )
    elif b1.verdict == SUPPORTED:
        parts.append(
            f"Duplicates are memorized more (AUC {fmt(b1.figures.get('auc'))})"
            + (" but do not explain the staircase." if b2.verdict == NOT_SUPPORTED else ".")
        )
    other = [
        f"({h.id}) {h.hypothesis.split(' (')[0]}"
        for h in diagnosis
        if h.verdict == SUPPORTED and h.id in ("c", "d")
    ]
    if other:
        parts.append("Also supported: " + ", ".join(other) + ".")
    fixes = [r.setting.splitlines()[0] for r in recs if r.key in FIX_KEYS]
    if fixes:
        parts.append("Change: " + "; ".join(fixes) + ".")
    if not any(h.verdict == SUPPORTED for h in diagnosis) and not fixes:
        parts.append("No hypothesis is supported by these inputs.")
    return " ".join(parts)


#: recommendations the headline names, in this order (the rest are in the table)
FIX_KEYS = ("num_train_epochs", "learning_rate", "more_data", "data", "lr_scheduler_type")


def dumps(report: dict[str, Any]) -> str:
    return json.dumps(report, ensure_ascii=False, indent=2, allow_nan=False) + "\n"


REPORT_FILES = ("report.json", "report.html")


def write_report_files(report: dict[str, Any], outdir: str | Path) -> dict[str, Path]:
    """report.json and report.html into outdir, each written atomically (no checks: the
    caller's OutputPlan has made them)."""
    from dedup_audit.reports.memorization.html import render_html

    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "report.json", "html": out / "report.html"}
    atomic_write_text(paths["json"], dumps(report))
    atomic_write_text(paths["html"], render_html(report))
    return paths


def write_report(
    report: dict[str, Any], outdir: str | Path, *, force: bool = False
) -> dict[str, Path]:
    """Write report.json and report.html into outdir, checked like every command's outputs
    (`writers.OutputPlan`: an existing report needs force, an input is never overwritten) and
    replaced together."""
    from dedup_audit.writers import OutputPlan

    out = Path(outdir)
    inputs = [
        Path(v)
        for k, v in report.get("inputs", {}).items()
        if isinstance(v, str) and k != "data" and Path(v).exists()
    ]
    plan = OutputPlan(inputs, force)
    plan.folder(out, "-o/--output", REPORT_FILES)
    with plan:
        plan.stage_folder(out, lambda tmp: write_report_files(report, tmp))
        plan.commit()
    return {"json": out / "report.json", "html": out / "report.html"}
