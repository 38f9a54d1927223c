"""Run the configured gates over loaded records and assemble the report."""

from __future__ import annotations

from typing import Any

from data_checks.config import ChecksConfig
from data_checks.records import LoadedData
from data_checks.template import check_template


def run_gates(data: LoadedData, fmt: str, config: ChecksConfig, tokenizer: Any = None,
              against: LoadedData | None = None, max_length: int | None = None) -> dict[str, Any]:
    """Run every gate in `config.run` on `data` (records of format `fmt`).

    The report's `passed` is false when a gate named in `config.fail_on` failed;
    the other gates are reported but do not stop anything.
    """
    checks: dict[str, Any] = {}
    if "template" in config.run:
        checks["template"] = check_template(
            data, fmt, tokenizer=tokenizer, max_violation_rate=config.template.max_violation_rate,
            max_length=max_length).to_dict()
    passed = all(checks[name]["passed"] for name in config.fail_on if name in checks)
    return {"passed": passed, "records": len(data), "format": fmt, "sources": [data.path],
            "fail_on": list(config.fail_on), "checks": checks}
