"""Issue 12 item 7: progress names the stage and the view, and gives one ETA for the run."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from dedup_audit.progress import RunProgress, progress_bar, run_progress, scan_stages

ROOT = Path(__file__).resolve().parents[1]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_stages_are_named_with_their_view_and_the_run_eta_adds_up() -> None:
    clock = Clock()
    stages = scan_stages(["full", "prompt"], near=True, semantic=True)
    run = RunProgress.plan(stages, clock)
    took = {"loading": 1.0, "sketch": 10.0, "lsh": 2.0, "verify": 3.0, "embed": 60.0}
    labels = []
    etas = []
    # the descs the detectors really use; the ONNX encoder's bar names no view
    order = [
        "loading",
        "sketch",
        "lsh[full]",
        "verify[full]",
        "lsh[prompt]",
        "verify[prompt]",
        "embed[onnx]",
        "embed[onnx]",
    ]
    for desc in order:
        labels.append(run.begin(desc))
        etas.append(run.eta(0.0))
        clock.now += took[desc.split("[")[0]]
        run.end()
    assert labels == [
        "[1/8] reading rows",
        "[2/8] hashing and MinHash, every view",
        "[3/8] LSH banding, full view",
        "[4/8] verifying candidates, full view",
        "[5/8] LSH banding, prompt view",
        "[6/8] verifying candidates, prompt view",
        "[7/8] embeddings, full view",
        "[8/8] embeddings, prompt view",
    ]
    # no guess before a kind of stage has run once; then the sum of what is left
    assert etas[1] == "run ETA: after this stage"
    assert etas[4] == "run ETA: after the first embeddings"  # lsh/verify known, embed not yet
    assert etas[6] == "run ETA: after this stage"
    assert etas[7] == "run ETA 1m00s"  # the embeddings of the full view took 60 s
    # half-way through the last stage: the time left is what that stage's rate says
    run2 = RunProgress.plan([("embed", "full")], clock)
    run2.begin("embed[onnx]")
    clock.now += 30
    assert run2.eta(0.25) == "run ETA 1m30s"


def test_without_a_terminal_there_are_no_bars_and_nothing_changes() -> None:
    with run_progress(scan_stages(["full"], near=True, semantic=False)) as run:
        assert list(progress_bar(range(5), desc="minhash[full]")) == [0, 1, 2, 3, 4]
        assert run is not None and all(s.started is None for s in run.stages)


@pytest.mark.slow
def test_a_real_scan_in_a_terminal_names_stage_and_view(tmp_path: Path, model_cache: Path) -> None:
    """The CLI under a pseudo-terminal, as a person runs it: the bars' labels are read back."""
    main, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    cmd = [
        sys.executable,
        "-m",
        "dedup_audit",
        "scan",
        str(ROOT / "sample_data" / "self_cognition.json"),
        "--semantic",
        "--cache-dir",
        str(model_cache),
        "--views",
        "full,response",
        "-o",
        str(tmp_path / "scan"),
    ]
    proc = subprocess.Popen(cmd, stderr=child, stdout=subprocess.DEVNULL, cwd=ROOT)
    os.close(child)
    out = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    assert proc.wait() == 0
    text = out.decode("utf-8", errors="replace")
    labels = set(re.findall(r"\[\d+/\d+\] [a-zA-Z ,]+", text))
    assert "[1/8] reading rows" in labels
    assert "[2/8] hashing and MinHash, every view" in labels
    assert "[5/8] LSH banding, response view" in labels
    assert any(label.startswith("[7/8] embeddings, full view") for label in labels), labels
    assert "run ETA" in text
