"""The reports a person looks at, opened in a real headless Chromium: every plot loads, the tables are
there, no script or console error, and the screenshot is a page with content (not blank)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from data_checks.cli import main as data_checks_main
from tests.browser import HeadlessChromium, chromium_binary, page_report
from tests.conftest import ROOT

CHROMIUM = chromium_binary()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (.ci/run installs it)")
SAMPLE = ROOT / "gatetune" / "sample_data" / "sft_sample.jsonl"


def _not_blank(png: Path, min_height: int) -> None:
    import matplotlib.image

    pixels = matplotlib.image.imread(png)
    assert pixels.shape[0] >= min_height and pixels.shape[1] >= 600, pixels.shape
    assert pixels[..., :3].std() > 0.05  # text, lines and plots, not one flat colour


def _dataset_with_findings(path: Path) -> Path:
    """The bundled sample plus what makes each gate's section full: duplicates, PII, a malformed record."""
    records = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines()][:200]
    records += [dict(records[i]) for i in range(0, 30, 3)]  # exact duplicates: clusters to plot
    records.append({"messages": [{"role": "user", "content": "Reply to ann@shop.co.uk, desk 212 867 5309"},
                                 {"role": "assistant", "content": "Sent. Test card 4111 1111 1111 1111 used."}]})
    records.append({"messages": [{"role": "assistant", "content": "an answer with no question"}]})
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_the_data_gate_report_renders_its_plots_and_tables(tmp_path: Path) -> None:
    data = _dataset_with_findings(tmp_path / "chats.jsonl")
    report = tmp_path / "report.html"
    assert data_checks_main([str(data), "--html", str(report)]) == 1  # the planted findings fail the gates
    with HeadlessChromium(CHROMIUM) as browser:
        facts = page_report(browser, report.as_uri())
        shot = browser.screenshot(tmp_path / "report.png")
    assert facts["errors"] == [], facts["errors"]
    assert facts["broken_images"] == [] and facts["images"] >= 3, facts
    assert all(width >= 300 and height >= 150 for width, height in facts["image_sizes"]), facts["image_sizes"]
    assert facts["tables"] >= 5 and facts["table_rows"] >= 20, facts
    headings = " | ".join(facts["headings"])
    for section in ("template", "dedup", "pii", "High-confidence findings", "Low-confidence findings",
                    "Placeholders"):
        assert section in headings, headings
    _not_blank(shot, min_height=900)


def test_loss_png_renders(tmp_path: Path) -> None:
    from gatetune.plots import plot_losses

    history = [{"step": s, "loss": 3.0 / (1 + s / 10)} for s in range(1, 41)]
    history += [{"step": s, "eval_loss": 3.2 / (1 + s / 12)} for s in range(0, 41, 10)]
    png = plot_losses(history, tmp_path / "loss.png", "lora on tiny-llama")
    with HeadlessChromium(CHROMIUM) as browser:
        facts = page_report(browser, png.as_uri())
        shot = browser.screenshot(tmp_path / "shot.png")
    assert facts["errors"] == [] and facts["broken_images"] == [], facts
    assert facts["images"] == 1 and facts["image_sizes"][0][0] >= 600, facts
    _not_blank(shot, min_height=300)


def test_a_broken_page_is_caught(tmp_path: Path) -> None:
    """The checks above can fail: a missing image and a script error are both reported."""
    page = tmp_path / "broken.html"
    page.write_text("<html><body><h1>x</h1><img alt='gone' src='missing.png'>"
                    "<script>undefined_function()</script></body></html>", encoding="utf-8")
    with HeadlessChromium(CHROMIUM) as browser:
        facts = page_report(browser, page.as_uri())
    assert facts["broken_images"] == ["gone"]
    assert any("undefined_function" in e or "ReferenceError" in e for e in facts["errors"]), facts["errors"]
