"""The HTML report renders in headless Chromium: no console errors, every plot decodes, and the
sections the report.json holds are all there (and nothing it does not hold)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dedup_audit.reports.memorization.html import render_html
from dedup_audit.reports.memorization.report_json import build_report, write_report
from tests.browser import browser_session, severe_console_errors

RUN = Path(__file__).parents[1] / "sample_data" / "run"


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    yield from browser_session(tmp_path_factory.mktemp("chrome-profile"))


def _open(browser, path: Path) -> list[dict]:  # type: ignore[no-untyped-def,type-arg]
    return severe_console_errors(browser, path)


def _images(browser) -> list[tuple[str, int]]:  # type: ignore[no-untyped-def]
    return browser.execute_script(
        "return Array.from(document.images).map(i => [i.closest('figure').id, i.naturalWidth]);"
    )


@pytest.mark.slow
def test_full_report_renders_with_all_plots(browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rep = build_report(RUN, data=RUN / "train.json")
    paths = write_report(rep, tmp_path / "out")
    severe = _open(browser, paths["html"])
    assert severe == []
    imgs = _images(browser)
    assert [name for name, _ in imgs] == [
        "plot-loss",
        "plot-lr",
        "plot-group_curves",
        "plot-drop_distribution",
        "plot-exposures",
    ]
    assert all(width > 0 for _, width in imgs)
    ids = browser.execute_script(
        "return Array.from(document.querySelectorAll('section')).map(s => s.id);"
    )
    assert ids == ["diagnosis", "recommendations", "staircase", "samples", "inputs"]
    headline = browser.find_element("id", "headline").text
    assert headline == rep["headline"] and "memorization of the training samples" in headline
    # issue 10's glitches: no raw markdown, no "n/ax", exact copies shown once with their ids
    body = browser.find_element("tag name", "body").text
    assert "`" not in body and "n/ax" not in body
    assert browser.find_elements("css selector", "#diagnosis code")
    copies = browser.execute_script(
        "return Array.from(document.querySelectorAll('#samples .side')).map("
        "s => Array.from(s.querySelectorAll('.member pre')).map(p => p.innerText).join('|'));"
    )
    for side in copies:
        texts = side.split("|")
        pairs = list(zip(texts[::2], texts[1::2], strict=True))
        assert len(pairs) == len(set(pairs)), "identical copies shown side by side"
    assert "identical copies:" in body
    captions = [f.text for f in browser.find_elements("tag name", "figcaption")]
    assert any("held-out in green" in c for c in captions)  # this run has held-out losses
    # the diagnosis table shows each hypothesis with the verdict report.json gives it
    rows = browser.execute_script(
        "return Array.from(document.querySelectorAll('#diagnosis tbody tr')).map(r => r.cells[2].innerText);"
    )
    assert rows == [d["verdict"] for d in rep["diagnosis"]]
    n_boundaries = browser.execute_script(
        "return document.querySelectorAll('#staircase table')[0].tBodies[0].rows.length;"
    )
    assert n_boundaries == len(rep["staircase"]["boundaries"]) == 7
    browser.save_screenshot(str(tmp_path / "report.png"))
    assert (tmp_path / "report.png").stat().st_size > 10_000


@pytest.mark.slow
def test_logs_only_report_shows_what_is_missing(browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rep = build_report(RUN / "trainer_log.jsonl")
    (tmp_path / "r.html").write_text(render_html(rep), encoding="utf-8")
    assert _open(browser, tmp_path / "r.html") == []
    imgs = _images(browser)
    assert [n for n, _ in imgs] == ["plot-loss", "plot-lr"] and all(w > 0 for _, w in imgs)
    text = browser.find_element("id", "inputs").text
    assert "per-sample losses" in text and "dedup-audit losses" in text
    assert not browser.find_elements("id", "samples")


def test_html_renders_only_report_json(tmp_path: Path) -> None:
    """Rendering from the JSON written to disk gives the same page as from the in-memory dict."""
    rep = build_report(RUN / "trainer_log.jsonl")
    paths = write_report(rep, tmp_path / "o")
    again = render_html(json.loads(paths["json"].read_text(encoding="utf-8")))
    assert again == paths["html"].read_text(encoding="utf-8")
    assert "<script" not in again and "http://" not in again and "https://" not in again


def test_group_caption_mentions_held_out_only_when_there_is_one(tmp_path: Path) -> None:
    rows = [json.loads(x) for x in (RUN / "losses.jsonl").read_text(encoding="utf-8").splitlines()]
    train_only = tmp_path / "train_losses.jsonl"
    train_only.write_text(
        "".join(json.dumps(r) + "\n" for r in rows if r["split"] == "train"), encoding="utf-8"
    )
    page = render_html(build_report(RUN, data=RUN / "train.json", losses=train_only))
    assert "Mean per-sample loss per epoch, by cluster size" in page
    assert "held-out in green" not in page
    full = render_html(build_report(RUN, data=RUN / "train.json"))
    assert "held-out in green" in full
