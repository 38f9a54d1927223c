"""`deploy_ready` and its reasons, the last thing a run's summary says."""

from __future__ import annotations

from typing import Any

from gatetune.evaluation.config import EvalConfig


def improvement(metrics: dict[str, Any] | None, greater_is_better: bool) -> dict[str, Any] | None:
    """Whether the best checkpoint beats the step-0 evaluation (the base, for LoRA): the restored and exported
    model is the best of the later evaluations, which can be worse than the start."""
    if not metrics or metrics.get("eval_metric_initial") is None or metrics.get("eval_metric_best") is None:
        return None
    initial, best = metrics["eval_metric_initial"], metrics["eval_metric_best"]
    better = best > initial if greater_is_better else best < initial
    return {"improved": better, "initial": initial, "best": best, "metric": metrics.get("eval_metric")}


def deploy_decision(summary: dict[str, Any], config: EvalConfig) -> dict[str, Any]:
    """Each check with its verdict; ready only when all pass."""
    reasons: list[dict[str, Any]] = []

    def check(name: str, passed: bool, detail: str) -> None:
        reasons.append({"check": name, "passed": passed, "detail": detail})

    gates = summary.get("gates")
    check("data_gates", bool(gates and gates.get("passed")),
          "passed" if gates and gates.get("passed") else "did not run (checks.enabled=false)" if gates is None
          else "failed")
    trend = summary.get("improvement")
    if trend is not None:
        check("improved", trend["improved"], f"{trend['metric']} {trend['initial']:.4f} at step 0 -> "
              f"{trend['best']:.4f} best" + ("" if trend["improved"] else ": training made it worse; the export is "
                                             "no better than where it started"))
    evaluation = summary.get("eval")
    if evaluation is None:
        check("evaluation", False, "no generation-based evaluation ran (eval=off or no prompts in the eval data)")
    else:
        rate = evaluation.get("stop_rate")
        check("stop_rate", rate is not None and rate >= config.min_stop_rate,
              f"{rate:.2f} of generations ended with an end-of-turn token (eval.min_stop_rate="
              f"{config.min_stop_rate:g})" if rate is not None else "no generations")
        regression = evaluation.get("regression")
        if regression is not None:
            check("no_regression", regression["passed"], "no metric dropped more than "
                  f"{regression['max_drop_points']:g} points below {regression['baseline']}" if regression["passed"]
                  else f"dropped: {', '.join(regression['failed'])} (against {regression['baseline']})")
    served = summary.get("served_check")
    if served is not None:
        check("served_check", bool(served.get("passed")), str(served.get("detail", "")))
    return {"deploy_ready": all(r["passed"] for r in reasons), "reasons": reasons}
