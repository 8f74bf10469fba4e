"""The training run, read for memorization: the loss staircase in trainer logs, per-sample losses (scorer, recorder) and
their analysis against the scan's duplicate clusters.

    from dedup_audit.training import read_log, detect_staircase, read_losses, analyze_samples
    stair = detect_staircase(read_log("saves/run"))
    print(stair["verdict"], [(b["boundary"], b["ratio"]) for b in stair["boundaries"]])

Heavy modules (scorer, recorder: torch/transformers) are not imported here.
"""

from __future__ import annotations

from dedup_audit.training.diagnosis import diagnose
from dedup_audit.training.losses import LossRow, LossTable, read_losses
from dedup_audit.training.membership import (
    Membership,
    membership_from_dataset,
    membership_from_scan_report,
)
from dedup_audit.training.recommend import recommend
from dedup_audit.training.samples import analyze_samples
from dedup_audit.training.staircase import StaircaseConfig, detect_staircase
from dedup_audit.training.trainer_log import (
    TrainingLog,
    read_log,
    read_trainer_log,
    read_trainer_state,
)

__all__ = [
    "LossRow",
    "LossTable",
    "Membership",
    "StaircaseConfig",
    "TrainingLog",
    "analyze_samples",
    "detect_staircase",
    "diagnose",
    "membership_from_dataset",
    "membership_from_scan_report",
    "read_log",
    "read_losses",
    "read_trainer_log",
    "read_trainer_state",
    "recommend",
]
