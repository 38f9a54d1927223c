"""The cross-run regression gate: every metric this run shares with a baseline run may drop at most
`eval.max_drop_points` points (0.05 on a 0-1 metric for 5 points)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gatetune.errors import UserError

# Summary keys compared besides the task metrics: higher is better for each.
COMPARED_STATS = ("stop_rate",)


def read_baseline(path: str) -> tuple[dict[str, Any], str]:
    """A baseline's summary: `path` is a run directory or its summary.json (or a gatetune-eval eval.json)."""
    where = Path(path).expanduser()
    if where.is_dir():
        names = ("summary.json", "eval.json")
        where = next((where / n for n in names if (where / n).is_file()), where / names[0])
    try:
        summary = json.loads(where.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"eval.baseline: cannot read {where}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise UserError(f"eval.baseline: {where} is not JSON: {exc}") from None
    evaluation = summary.get("eval") if "eval" in summary else summary
    if not isinstance(evaluation, dict) or "tuned" not in evaluation:
        raise UserError(f"eval.baseline: {where} holds no evaluation (run it with eval on, or gatetune-eval)")
    return evaluation, str(where)


def compared_values(evaluation: dict[str, Any]) -> dict[str, float]:
    values = {k: v for k, v in evaluation["tuned"].items() if isinstance(v, (int, float))}
    values.update({k: evaluation[k] for k in COMPARED_STATS if isinstance(evaluation.get(k), (int, float))})
    return values


def regression_check(evaluation: dict[str, Any], baseline_path: str, max_drop_points: float) -> dict[str, Any]:
    """`passed`, and for every shared metric both values and the drop in points (100 x on a 0-1 metric)."""
    baseline, where = read_baseline(baseline_path)
    now, before = compared_values(evaluation), compared_values(baseline)
    shared = sorted(now.keys() & before.keys())
    if not shared:
        raise UserError(f"eval.baseline: {where} shares no metric with this run (it has "
                        f"{', '.join(sorted(before)) or 'none'}; this run {', '.join(sorted(now)) or 'none'})")
    rows = [{"metric": k, "baseline": before[k], "value": now[k], "drop_points": round(100 * (before[k] - now[k]), 4)}
            for k in shared]
    failed = [r for r in rows if r["drop_points"] > max_drop_points]
    return {"passed": not failed, "baseline": where, "max_drop_points": max_drop_points, "metrics": rows,
            "failed": [r["metric"] for r in failed]}


def regression_message(check: dict[str, Any]) -> str:
    parts = [f"{r['metric']} {r['value']:.4f} vs {r['baseline']:.4f} ({r['drop_points']:+.1f} points)"
             for r in check["metrics"] if r["metric"] in check["failed"]]
    return (f"regression against {check['baseline']}: " + "; ".join(parts)
            + f" (more than eval.max_drop_points={check['max_drop_points']:g} below the baseline)")
