"""Screenshots of the reports for docs/reports.md, taken in a real headless Chromium (tests/browser.py).

    python scripts/screenshot_reports.py DATA.jsonl RUN_DIR [--out docs/img] [--skip-invalid]

Writes data_checks_report.png (the top of `data-checks DATA --html`'s page), data_checks_dedup.png and
data_checks_pii.png (those gates' sections), loss.png and eval.png (a run's
plots as the browser shows them) and prints what each page rendered (images, tables, errors).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from data_checks.cli import main as data_checks_main  # noqa: E402
from tests.browser import HeadlessChromium, chromium_binary, page_report  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    parser.add_argument("--skip-invalid", action="store_true")
    parser.add_argument("--height", type=int, default=1500, help="pixels of the report page to keep")
    args = parser.parse_args()
    binary = chromium_binary()
    if binary is None:
        print("no chromium found (apt-get install chromium)", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.html"
        data_checks_main([str(args.data), "--html", str(report)] + (["--skip-invalid"] if args.skip_invalid else []))
        with HeadlessChromium(binary, width=1200, height=args.height) as browser:
            facts = page_report(browser, report.as_uri())
            print(f"report: {facts['images']} images ({len(facts['broken_images'])} broken), {facts['tables']} "
                  f"tables, {len(facts['errors'])} errors, page height {facts['page_height']} px")
            data = browser.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": {
                "x": 0, "y": 0, "width": 1200, "height": min(args.height, facts["page_height"]), "scale": 1}})["data"]
            import base64

            (args.out / "data_checks_report.png").write_bytes(base64.b64decode(data))
            for gate in ("dedup", "pii"):  # each gate's section from its heading down
                top = browser.evaluate(f"[...document.querySelectorAll('h2')].find(h => h.textContent.startsWith("
                                       f"'{gate}:'))?.getBoundingClientRect().top + window.scrollY")
                if top is None:
                    continue
                data = browser.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": {
                    "x": 0, "y": max(0, top - 20), "width": 1200, "height": 1100, "scale": 1}})["data"]
                (args.out / f"data_checks_{gate}.png").write_bytes(base64.b64decode(data))
            for name in ("loss.png", "eval.png"):
                if (args.run_dir / name).is_file():
                    facts = page_report(browser, (args.run_dir / name).resolve().as_uri())
                    print(f"{name}: {facts['image_sizes']}, {len(facts['errors'])} errors")
                    browser.call("Emulation.setDeviceMetricsOverride", {
                        "width": facts["image_sizes"][0][0] + 16, "height": facts["image_sizes"][0][1] + 16,
                        "deviceScaleFactor": 1, "mobile": False})
                    browser.screenshot(args.out / name)
                    browser.call("Emulation.clearDeviceMetricsOverride")
    for path in sorted(args.out.glob("*.png")):
        print(f"wrote {path} ({path.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
