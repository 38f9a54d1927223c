"""Pieces of the HTML report that every gate's section uses: tables of facts, verdicts, embedded plots.

matplotlib is imported only here, on first use; without it `image` says so and the tables remain.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable
from typing import Any


def png(draw: Callable[[Any], None], size: tuple[float, float] = (6.5, 3.4)) -> str | None:
    """`draw(ax)` on a fresh figure of `size` inches, as base64 PNG; None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=size)
    draw(ax)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def image(encoded: str | None, alt: str) -> str:
    """An <img> of a `png(...)`, or a note saying matplotlib is needed."""
    if encoded is None:
        return f"<p><em>{html.escape(alt)}: install matplotlib for plots.</em></p>"
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{encoded}">'


def verdict(passed: bool) -> str:
    return '<span class="pass">pass</span>' if passed else '<span class="fail">FAIL</span>'


def facts_table(pairs: list[tuple[str, Any]]) -> str:
    """A two-column table, one row per (name, value)."""
    return "<table>" + "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
                               for k, v in pairs) + "</table>"


def table(header: list[str], rows: list[list[Any]]) -> str:
    """A table with a header row; cells are escaped, except those already wrapped as `Markup`."""
    if not rows:
        return ""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_cell(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


class Markup(str):
    """A cell's HTML, already escaped (e.g. `<code>...</code>`)."""


def _cell(value: Any) -> str:
    return value if isinstance(value, Markup) else html.escape(str(value))
