"""One report format for every gate: JSON on disk (written atomically) and a table for people."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_json_atomic(path: str | os.PathLike[str], value: Any) -> Path:
    """Write `value` as JSON to a temporary file beside `path`, then rename it into place."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(value, f, indent=2, ensure_ascii=False)
            f.write("\n")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes the file 0600; give it what open() would
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def summary_table(report: dict[str, Any]) -> str:
    """A short human table: one row per gate with its verdict and headline number."""
    rows = [("gate", "result", "detail")]
    for name, result in report["checks"].items():
        if name == "template":
            detail = f"{len(result['violations'])} listed, violation rate {result['violation_rate']:.2%}"
            if result["violations"]:
                first = result["violations"][0]
                detail += f"; first: line {first['line']}: {first['problem']}"
        else:
            detail = ""
        rows.append((name, "pass" if result["passed"] else "FAIL", detail))
    widths = [max(len(r[i]) for r in rows) for i in range(2)]
    lines = [f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c}" for a, b, c in rows]
    verdict = "all gates passed" if report["passed"] else "a gate failed"
    lines.append(f"{report['records']} records from {', '.join(report['sources'])}: {verdict}")
    return "\n".join(lines)
