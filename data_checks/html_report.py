"""The HTML report: one self-contained page (plots embedded as PNG) per data-checks run.

The page has the record length histogram and one section per gate, each drawn by its spec's
`html_section` (data_checks/registry.py). matplotlib is imported only to draw (html_parts.png);
without it the page still carries every table.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import Any

from data_checks.html_parts import facts_table, image, png, verdict
from data_checks.registry import GATES
from data_checks.report import write_text_atomic

_STYLE = """body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}
.pass{color:#17702b;font-weight:bold}.fail{color:#b00020;font-weight:bold}code{background:#f4f4f4}
img{max-width:100%}"""


def _lengths_section(report: dict[str, Any]) -> str:
    lengths = report.get("lengths")
    if not lengths or not lengths["counts"]:
        return ""
    edges, counts = lengths["bin_edges"], lengths["counts"]

    def draw(ax: Any) -> None:
        ax.bar(edges[:-1], counts, width=[b - a for a, b in zip(edges, edges[1:], strict=False)], align="edge")
        ax.set_xlabel(f"record length ({lengths['unit']})")
        ax.set_ylabel("records")

    return ("<h2>Record lengths</h2>" + facts_table([("mean", f"{lengths['mean']:.1f}"), ("max", lengths["max"])])
            + image(png(draw), "length histogram"))


def render_html(report: dict[str, Any]) -> str:
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>data-checks report</title>"
             f"<style>{_STYLE}</style></head><body><h1>data-checks: {verdict(report['passed'])}</h1>",
             facts_table([("sources", ", ".join(report["sources"])), ("records", report["records"]),
                         ("format", report.get("format", "")),
                         ("gates that stop", ", ".join(report.get("fail_on", [])))])]
    for dataset in report.get("datasets", [report]):
        if "datasets" in report:
            parts.append(f"<h2>{html.escape(', '.join(dataset['sources']))}</h2>")
        parts.append(_lengths_section(dataset))
        for name, result in dataset["checks"].items():
            parts.append(f"<h2>{html.escape(name)}: {verdict(result['passed'])}</h2>")
            spec = GATES.get(name)
            parts.append(spec.html_section(result) if spec else f"<pre>{html.escape(json.dumps(result))}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_html_report(report: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Render `report` and write it atomically to `path`."""
    return write_text_atomic(path, [render_html(report)])
