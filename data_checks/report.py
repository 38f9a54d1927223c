"""One report format for every gate: JSON on disk (written atomically) and a table for people."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from data_checks.registry import GATES


def write_text_atomic(path: str | os.PathLike[str], chunks: Iterable[str]) -> Path:
    """Write `chunks` to a temporary file beside `path`, then rename it into place.

    A reader never sees a half-written file, and a failure leaves any previous file untouched.
    The file gets the permissions a plain open() would give (mkstemp's are 0600).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for chunk in chunks:
                f.write(chunk)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def write_jsonl_atomic(path: str | os.PathLike[str], rows: Iterable[Any]) -> Path:
    """`rows` as JSON Lines (UTF-8, one object a line), written atomically; `rows` may be a generator."""
    return write_text_atomic(path, (json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def write_json_atomic(path: str | os.PathLike[str], value: Any) -> Path:
    """`value` as indented JSON, written atomically."""
    return write_text_atomic(path, [json.dumps(value, indent=2, ensure_ascii=False), "\n"])


def _detail(name: str, result: dict[str, Any]) -> str:
    return GATES[name].summary(result) if name in GATES else ""


def summary_table(report: dict[str, Any]) -> str:
    """A short human table: one row per gate (per dataset) with its verdict and headline numbers."""
    rows = [("gate", "result", "detail")]
    for dataset in report.get("datasets", [report]):
        prefix = f"{dataset['sources'][0]}: " if "datasets" in report else ""
        for name, result in dataset["checks"].items():
            rows.append((prefix + name, "pass" if result["passed"] else "FAIL", _detail(name, result)))
        for name, reason in dataset.get("not_applicable", {}).items():
            rows.append((prefix + name, "n/a", reason))
    widths = [max(len(r[i]) for r in rows) for i in range(2)]
    lines = [f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c}".rstrip() for a, b, c in rows]
    skipped = sum(d.get("skipped_invalid", {}).get("count", 0) for d in report.get("datasets", [report]))
    if skipped:
        lines.append(f"{skipped} unparseable lines skipped (--skip-invalid)")
    verdict = "all gates passed" if report["passed"] else "a gate failed"
    lines.append(f"{report['records']} records from {', '.join(report['sources'])}: {verdict}")
    return "\n".join(lines)
