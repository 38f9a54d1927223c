"""The HTML report: one self-contained page (plots embedded as PNG) per data-checks run.

Plots: record length histogram, near-duplicate cluster sizes, PII counts by type, and the label
confusion matrix of the agreement gate. matplotlib is imported only here; without it the page
still carries every table.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

from data_checks.report import write_text_atomic

_STYLE = """body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}
.pass{color:#17702b;font-weight:bold}.fail{color:#b00020;font-weight:bold}code{background:#f4f4f4}
img{max-width:100%}"""


def _png(draw: Any) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    draw(ax)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _img(encoded: str | None, alt: str) -> str:
    if encoded is None:
        return f"<p><em>{html.escape(alt)}: install matplotlib for plots.</em></p>"
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{encoded}">'


def _verdict(passed: bool) -> str:
    return '<span class="pass">pass</span>' if passed else '<span class="fail">FAIL</span>'


def _rows(pairs: list[tuple[str, Any]]) -> str:
    return "<table>" + "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
                               for k, v in pairs) + "</table>"


def _lengths_section(report: dict[str, Any]) -> str:
    lengths = report.get("lengths")
    if not lengths or not lengths["counts"]:
        return ""
    edges, counts = lengths["bin_edges"], lengths["counts"]

    def draw(ax: Any) -> None:
        ax.bar(edges[:-1], counts, width=[b - a for a, b in zip(edges, edges[1:], strict=False)], align="edge")
        ax.set_xlabel(f"record length ({lengths['unit']})")
        ax.set_ylabel("records")

    return ("<h2>Record lengths</h2>" + _rows([("mean", f"{lengths['mean']:.1f}"), ("max", lengths["max"])])
            + _img(_png(draw), "length histogram"))


def _template_section(result: dict[str, Any]) -> str:
    rows = "".join(f"<tr><td>{v['record']}</td><td>{v['line']}</td><td>{html.escape(v['problem'])}</td></tr>"
                   for v in result["violations"][:50])
    facts = [("violation rate", f"{result['violation_rate']:.2%}"), ("allowed", f"{result['max_violation_rate']:.2%}")]
    if result.get("truncation_rate") is not None:
        facts.append((f"longer than {result['max_length']} tokens", f"{result['truncation_rate']:.2%}"))
    table = f"<table><tr><th>record</th><th>line</th><th>problem</th></tr>{rows}</table>" if rows else ""
    return _rows(facts) + table


def _dedup_section(result: dict[str, Any]) -> str:
    sizes = Counter(len(c) for c in result["clusters"])
    facts = [("near-duplicate rate", f"{result['near_duplicate_rate']:.2%}"),
             ("exact-duplicate rate", f"{result['exact_duplicate_rate']:.2%}"),
             ("threshold (Jaccard)", result["threshold"]), ("bands x rows", f"{result['bands']} x {result['rows']}"),
             ("clusters listed", len(result["clusters"]))]
    if result.get("contamination"):
        c = result["contamination"]
        facts.append(("contaminated eval records", f"{c['contaminated']} of {c['records']}"))

    def draw(ax: Any) -> None:
        ax.bar([str(s) for s in sorted(sizes)], [sizes[s] for s in sorted(sizes)])
        ax.set_xlabel("cluster size (records)")
        ax.set_ylabel("clusters")

    return _rows(facts) + (_img(_png(draw), "duplicate cluster sizes") if sizes else "")


def _pii_section(result: dict[str, Any]) -> str:
    by_type = result["by_type"]
    examples = "".join(f"<tr><td>{e['record']}</td><td>{html.escape(e['type'])}</td>"
                       f"<td><code>{html.escape(e['excerpt'])}</code></td></tr>" for e in result["examples"][:50])

    def draw(ax: Any) -> None:
        names = sorted(by_type, key=by_type.get, reverse=True)
        ax.barh(names, [by_type[n] for n in names])
        ax.set_xlabel("occurrences")

    facts = [("records with PII", result["records_with_pii"]),
             ("data leaves trust boundary", result["data_leaves_trust_boundary"])]
    table = f"<table><tr><th>record</th><th>type</th><th>excerpt (redacted)</th></tr>{examples}</table>"
    return _rows(facts) + (_img(_png(draw), "PII by type") if by_type else "") + (table if examples else "")


def _agreement_section(result: dict[str, Any]) -> str:
    kappa = result["kappa"]
    facts = [("method", result["method"]), ("kappa", "undefined" if kappa is None else f"{kappa:.4f}"),
             ("minimum", result["min_kappa"]), ("annotators", len(result["annotators"])),
             ("items", result["items"]), ("skipped items", result["skipped_items"])]
    if result.get("undefined_reason"):
        facts.append(("why undefined", result["undefined_reason"]))
    labels, confusion = result.get("labels") or [], result.get("confusion") or []

    def draw(ax: Any) -> None:
        ax.imshow(confusion, cmap="Blues")
        ax.set_xticks(range(len(labels)), labels)
        ax.set_yticks(range(len(labels)), labels)
        for i, row in enumerate(confusion):
            for j, value in enumerate(row):
                ax.text(j, i, str(value), ha="center", va="center", fontsize=8)
        ax.set_xlabel("label (second annotator)")
        ax.set_ylabel("label (first annotator)")

    return _rows(facts) + (_img(_png(draw), "agreement confusion matrix") if confusion else "")


SECTIONS = {"template": _template_section, "dedup": _dedup_section, "pii": _pii_section,
            "agreement": _agreement_section}


def render_html(report: dict[str, Any]) -> str:
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>data-checks report</title>"
             f"<style>{_STYLE}</style></head><body><h1>data-checks: {_verdict(report['passed'])}</h1>",
             _rows([("sources", ", ".join(report["sources"])), ("records", report["records"]),
                    ("format", report.get("format", "")), ("gates that stop", ", ".join(report.get("fail_on", [])))])]
    for dataset in report.get("datasets", [report]):
        if "datasets" in report:
            parts.append(f"<h2>{html.escape(', '.join(dataset['sources']))}</h2>")
        parts.append(_lengths_section(dataset))
        for name, result in dataset["checks"].items():
            parts.append(f"<h2>{html.escape(name)}: {_verdict(result['passed'])}</h2>")
            section = SECTIONS.get(name)
            parts.append(section(result) if section else f"<pre>{html.escape(json.dumps(result))}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_html_report(report: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Render `report` and write it atomically to `path`."""
    return write_text_atomic(path, [render_html(report)])
