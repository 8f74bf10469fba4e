"""Calibration: S-curve from the scan's bands/rows, borderline pairs, and the
`calibrate` command on a real saved scan."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from dedup_audit.commands.calibrate import calibrate
from dedup_audit.records import Pair
from dedup_audit.reports.scan.calibrate import (
    borderline_pairs,
    candidate_probability,
    lsh_params,
    s_curve,
)

PAIRS = [
    Pair(0, 1, 1.0, "exact", "full"),
    Pair(0, 2, 0.82, "minhash", "full", 0.8),
    Pair(1, 3, 0.78, "minhash", "full", 0.75),
    Pair(2, 4, 0.60, "minhash", "full", 0.6),
    Pair(3, 5, 0.91, "embedding", "prompt"),
    Pair(4, 5, 0.84, "embedding", "prompt"),
]


def test_s_curve_uses_the_scans_bands_and_rows() -> None:
    b, r = lsh_params(0.8, 128)
    assert (b, r) == (18, 7) and b * r <= 128
    curve = s_curve(0.8, 128)
    assert [s for s, _ in curve] == [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95]
    probs = [p for _, p in curve]
    assert probs == sorted(probs) and probs[0] < 0.15 and probs[-1] > 0.999
    assert probs[6] >= 0.98  # tuned for recall at the threshold
    assert probs[6] == pytest.approx(1 - (1 - 0.8**r) ** b)
    assert candidate_probability(1.0, b, r) == 1.0


def test_borderline_pairs_either_side_closest_first() -> None:
    got = borderline_pairs(PAIRS, {"minhash": 0.8, "embedding": 0.9}, margin=0.05)
    assert [(p.a, p.b) for p in got["minhash"]] == [(0, 2), (1, 3)]
    assert [(p.a, p.b) for p in got["embedding"]] == [(3, 5)]
    assert "exact" not in got


def test_calibrate_command_prints_curve_and_borderline_pairs(tmp_path: Path) -> None:
    from dedup_audit.config import MinHashConfig, ScanConfig
    from dedup_audit.pipeline import scan
    from dedup_audit.readers import load_dataset
    from dedup_audit.reports.scan.saved import read, save

    data = Path(__file__).parent / "data" / "minhash_gpteacher_300.json"
    cfg = ScanConfig(views=("full",), minhash=MinHashConfig(threshold=0.7))
    result = scan(load_dataset(data), cfg)
    save(result, tmp_path)
    report_path = tmp_path / "report.json"
    near = [p for p in read(report_path).scored_pairs() if p.method == "minhash"]
    assert near, "the GPTeacher subset has near duplicates"

    res = CliRunner().invoke(calibrate, ["--report", str(report_path), "--margin", "0.1"])
    assert res.exit_code == 0, res.output
    assert "threshold 0.7, num_perm 128" in res.output
    assert "Jaccard  P(candidate)" in res.output
    near_thr = sorted(
        (p for p in near if abs(p.score - 0.7) <= 0.1), key=lambda p: abs(p.score - 0.7)
    )
    assert near_thr, "the subset has MinHash pairs within 0.1 of 0.7"
    assert "Borderline minhash pairs (threshold 0.7" in res.output
    assert f"{near_thr[0].score:.4f}" in res.output
    help_text = CliRunner().invoke(calibrate, ["--help"]).output
    assert "dedup-audit calibrate --threshold 0.8" in help_text


def test_calibrate_labels_fits_the_threshold_from_human_labels(tmp_path: Path) -> None:
    """39 borderline GPTeacher Toolformer pairs labelled by hand (tests/data/SOURCES.md): the
    fitted threshold is the best-F1 cut, checked here by brute force over the saved scores."""
    import json

    from dedup_audit.config import MinHashConfig, ScanConfig
    from dedup_audit.pipeline import scan
    from dedup_audit.reports.scan.saved import read, save

    data = Path(__file__).parent / "data" / "minhash_gpteacher_300.json"
    labels_path = data.with_name("minhash_gpteacher_300.labels.jsonl")
    save(scan(data, ScanConfig(views=("full",), minhash=MinHashConfig(threshold=0.7))), tmp_path)
    labels = [json.loads(line) for line in labels_path.open(encoding="utf-8")]
    assert len(labels) >= 36 and 8 <= sum(lab["duplicate"] for lab in labels) <= 12
    stored = read(tmp_path).pairs["full"]
    score = {
        (f"{data.name}:{a}", f"{data.name}:{b}"): s
        for a, b, s in zip(stored.a.tolist(), stored.b.tolist(), stored.score.tolist(), strict=True)
    }
    pairs = [(score.get((lab["a"], lab["b"])), lab["duplicate"]) for lab in labels]

    def f1(cut: float) -> tuple[float, float, float]:
        tp = sum(1 for s, d in pairs if d and s is not None and s >= cut)
        fp = sum(1 for s, d in pairs if not d and s is not None and s >= cut)
        pos = sum(1 for _, d in pairs if d)
        p, r = tp / (tp + fp), tp / pos
        return (2 * p * r / (p + r) if tp else 0.0), p, r

    cuts = sorted({s for s, _ in pairs if s is not None})
    best = max(cuts, key=lambda c: (f1(c)[0], c))
    _, p, r = f1(best)
    res = CliRunner().invoke(
        calibrate, ["--report", str(tmp_path / "report.json"), "--labels", str(labels_path)]
    )
    assert res.exit_code == 0, res.output
    assert f"Threshold {round(best, 6)} (best F1): precision {p:.3f}, recall {r:.3f}" in res.output
    assert "Apply: rescan with --threshold" in res.output  # the labels ask for less than 0.7
    strict = min(
        c for c in cuts if f1(c)[1] == 1.0 and all(f1(x)[1] == 1.0 for x in cuts if x >= c)
    )
    args = ["--report", str(tmp_path / "report.json"), "--labels", str(labels_path)]
    res = CliRunner().invoke(calibrate, [*args, "--min-precision", "1.0"])
    assert res.exit_code == 0, res.output
    assert f"Threshold {round(strict, 6)} (lowest threshold with precision >= 1.0)" in res.output
    assert f"dedup-audit rethreshold {tmp_path / 'report.json'} --threshold" in res.output


def test_calibrate_errors_are_one_line_exit_2(tmp_path: Path) -> None:
    from dedup_audit.config import ScanConfig
    from dedup_audit.pipeline import scan
    from dedup_audit.reports.scan.saved import save

    data = Path(__file__).parent / "data" / "minhash_gpteacher_300.json"
    save(scan(data, ScanConfig(views=("full",))), tmp_path)
    report = str(tmp_path / "report.json")
    bad = tmp_path / "labels.jsonl"
    bad.write_text('{"a": "minhash_gpteacher_300.json:1", "b": "nope:2", "duplicate": true}\n')
    for argv, message in [
        (["--report", report, "--threshold", "1.5"], "--threshold must be in (0, 1], got 1.5"),
        (["--labels", str(bad)], "--labels needs --report"),
        (["--report", report, "--labels", str(bad)], "line 1: no record with id 'nope:2'"),
    ]:
        res = CliRunner().invoke(calibrate, argv)
        assert res.exit_code == 2, res.output
        assert message in res.output and "Traceback" not in res.output
