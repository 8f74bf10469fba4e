"""The scan's report.html (issue 12 item 8), opened in headless Chromium like the memorization
report: no console errors, every section there, and what it shows agrees with report.json and
removed.jsonl. Data: 300 real GPTeacher rows (near duplicates) and GSM8K train with two test
questions planted in it (contamination)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from dedup_audit.cli import cli
from dedup_audit.reports.scan.html import histogram_svg, marked
from tests.browser import browser_session, severe_console_errors

DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    yield from browser_session(tmp_path_factory.mktemp("chrome-profile"))


@pytest.fixture(scope="module")
def near_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`clean --report-dir` on the GPTeacher rows: cleaned file, removals and the report."""
    out = tmp_path_factory.mktemp("near")
    res = CliRunner().invoke(
        cli,
        [
            "clean",
            str(DATA / "minhash_gpteacher_300.json"),
            "-o",
            str(out / "clean.json"),
            "--report-dir",
            str(out / "report"),
            "-q",
        ],
    )
    assert res.exit_code == 0, res.output
    return out


def _js(browser: Any, script: str) -> Any:
    return browser.execute_script(script)


@pytest.mark.slow
def test_scan_html_shows_clusters_removals_and_histogram(browser: Any, near_run: Path) -> None:
    page = near_run / "report" / "report.html"
    report = json.loads((near_run / "report" / "report.json").read_text(encoding="utf-8"))
    removed = [
        json.loads(line)
        for line in (near_run / "clean.json.removed.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    assert severe_console_errors(browser, page) == []
    sections = _js(
        browser, "return Array.from(document.querySelectorAll('section')).map(s => s.id);"
    )
    assert sections == ["summary", "clusters", "removals", "similarity"]
    headline = browser.find_element("id", "headline").text
    assert f"{report['summary']['rows']} rows" in headline
    assert f"removes {report['summary']['removed']} " in headline
    assert "not a line number" in browser.find_element("id", "ids").text

    # summary: one row per view, counts as in report.json
    views = _js(
        browser,
        "return Array.from(document.querySelectorAll('#summary table')[1].tBodies[0].rows)"
        ".map(r => [r.cells[0].innerText, r.cells[3].innerText]);",
    )
    assert views == [[v, str(s["near_pairs"])] for v, s in report["summary"]["views"].items()]
    assert "conflicting" in browser.find_element("id", "summary").text

    # the largest full-view cluster: every member side by side, the kept one marked, and the
    # marked words are words the first member does not have
    biggest = max((c for c in report["clusters"] if c["view"] == "full"), key=lambda c: c["size"])
    cards = _js(
        browser,
        f"return Array.from(document.querySelectorAll('#cluster-{biggest['id']} .member'))"
        ".map(m => [m.className, m.querySelector('.who').innerText, "
        "Array.from(m.querySelectorAll('mark')).map(k => k.innerText)]);",
    )
    assert len(cards) == biggest["size"] == 4
    assert [c[0] for c in cards].count("member kept") == 1
    kept_member = next(m for m in biggest["members"] if m["id"] not in {r["id"] for r in removed})
    assert kept_member["id"] in next(c[1] for c in cards if c[0] == "member kept")
    rows = json.loads((DATA / "minhash_gpteacher_300.json").read_text(encoding="utf-8"))
    first = biggest["members"][0]["index"]
    assert f"row {first + 1} " in cards[0][1]  # 1-based row beside the id
    assert any(c[2] for c in cards[1:]), "near duplicates differ somewhere"
    first_text = " ".join(str(v) for v in rows[first].values())
    for _, _, marks in cards[1:]:
        assert any(word not in first_text for word in marks)

    # removals: one row per removed record, with the kept twin removed.jsonl names
    table = _js(
        browser,
        "return Array.from(document.querySelectorAll('#removals tbody tr'))"
        ".map(r => Array.from(r.cells).map(c => c.innerText));",
    )
    assert len(table) == len(removed) == report["summary"]["removed"] == 9
    for cells, r in zip(table, removed, strict=True):
        assert cells[0] == str(r["index"] + 1) and cells[1] == r["id"]
        assert cells[2] == r["reason"] and cells[3] == r["method"]
        assert cells[4] == f"{r['similarity']:.4f}" and r["kept_id"] in cells[5]

    # histogram: the red bars (at or above the threshold) hold exactly the near pairs
    red = _js(
        browser,
        "return Array.from(document.querySelectorAll('#hist-full-minhash rect.in'))"
        ".map(b => Number(b.dataset.count));",
    )
    assert sum(red) == report["summary"]["views"]["full"]["near_pairs"] > 0
    line_height = _js(
        browser,
        "return document.querySelector('#hist-full-minhash line.threshold')"
        ".getBoundingClientRect().height;",
    )
    assert line_height > 100  # drawn across the plot
    assert "threshold 0.8" in browser.find_element("id", "hist-full-minhash").text
    browser.save_screenshot(str(near_run / "scan.png"))
    assert (near_run / "scan.png").stat().st_size > 10_000


@pytest.mark.slow
def test_scan_html_puts_contamination_beside_the_reference(browser: Any, tmp_path: Path) -> None:
    test_rows = [
        json.loads(line)
        for line in (DATA / "gsm8k_test_60.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    train = json.loads((DATA / "gsm8k_train_300.json").read_text(encoding="utf-8"))
    train += [
        {"instruction": test_rows[i]["question"], "input": "", "output": test_rows[i]["answer"]}
        for i in (3, 17)
    ]
    src = tmp_path / "train.json"
    src.write_text(json.dumps(train, indent=2), encoding="utf-8")
    out = tmp_path / "scan"
    ref = str(DATA / "gsm8k_test_60.jsonl")
    res = CliRunner().invoke(cli, ["scan", str(src), "--against", ref, "-o", str(out), "-q"])
    assert res.exit_code == 0, res.output
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert severe_console_errors(browser, out / "report.html") == []
    cells = _js(
        browser,
        "return Array.from(document.querySelectorAll('#contamination tbody tr'))"
        ".map(r => [r.cells[0].innerText, r.cells[1].innerText, r.cells[2].innerText]);",
    )
    assert len(cells) == len(report["contamination"]) > 0
    for (left, right, method), hit in zip(cells, report["contamination"], strict=True):
        assert hit["id"] in left and f"row {hit['index'] + 1} " in left
        assert hit["reference_id"] in right and method == hit["method"]
    questions = {test_rows[i]["question"].split("?")[0][:40] for i in (3, 17)}
    assert all(any(q in right for _, right, _ in cells) for q in questions)
    # each contamination removal names the reference item it matched as its twin
    first_hit: dict[int, dict[str, Any]] = {}
    for hit in report["contamination"]:
        first_hit.setdefault(hit["index"], hit)
    twins = _js(
        browser,
        "return Array.from(document.querySelectorAll('#removals tbody tr'))"
        ".map(r => [r.cells[0].innerText, r.cells[5].innerText]);",
    )
    assert twins == [
        [str(i + 1), f"{h['reference_id']} (reference)"] for i, h in sorted(first_hit.items())
    ]
    # the headline counts the contamination removals, not "duplicates"
    assert "removes 2 " in browser.find_element("id", "headline").text


def test_scan_html_is_self_contained_and_deterministic(tmp_path: Path) -> None:
    args = ["scan", str(DATA / "minhash_gpteacher_300.json"), "-q", "-o"]
    for name in ("a", "b"):
        assert CliRunner().invoke(cli, [*args, str(tmp_path / name)]).exit_code == 0
    a = (tmp_path / "a" / "report.html").read_bytes()
    assert a == (tmp_path / "b" / "report.html").read_bytes()
    text = a.decode("utf-8")
    for banned in ("<script", " src=", " href=", "<link", "url(", "@import"):
        assert banned not in text, banned  # nothing is loaded from anywhere


def test_marked_words_are_the_differences() -> None:
    a = "Answer the question: what is 2 + 3?"
    b = "Answer this question: what is 2 + 4?"
    assert marked(a, b) == "Answer <mark>the</mark> question: what is 2 + <mark>3</mark>?"
    assert marked(b, b) == "Answer this question: what is 2 + 4?"
    assert (
        marked("<b>&", "x") == "<mark>&lt;</mark><mark>b</mark><mark>&gt;</mark><mark>&amp;</mark>"
    )


def test_histogram_splits_at_the_threshold() -> None:
    scores = [0.71, 0.79, 0.7999, 0.8, 0.81, 0.85, 0.851, 1.0]
    svg = histogram_svg(scores, 0.85, title="t")
    import re

    bars = re.findall(r'class="(bar(?: in)?)"[^>]*data-count="(\d+)"', svg)
    red = sum(int(n) for cls, n in bars if cls == "bar in")
    assert red == sum(s >= 0.85 for s in scores) == 3
    assert sum(int(n) for _, n in bars) == len(scores)
