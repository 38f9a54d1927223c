"""Run the configured gates over loaded records and assemble the one report format."""

from __future__ import annotations

from typing import Any

from data_checks.agreement import compute_agreement, judgements_from_records
from data_checks.config import ChecksConfig
from data_checks.dedup import find_near_duplicates
from data_checks.formats import record_text
from data_checks.pii import scan_pii
from data_checks.records import LoadedData
from data_checks.template import check_template

ANNOTATION_FORMAT = "classification"  # rows of judgements: only the agreement gate applies
LENGTH_BINS = 20


def _length_histogram(texts: list[str]) -> dict[str, Any]:
    import numpy as np

    words = np.array([len(t.split()) for t in texts], dtype=np.int64)
    if not len(words):
        return {"unit": "words", "bin_edges": [], "counts": [], "mean": 0.0, "max": 0}
    counts, edges = np.histogram(words, bins=min(LENGTH_BINS, max(1, int(words.max()) + 1)))
    return {"unit": "words", "bin_edges": [float(e) for e in edges], "counts": [int(c) for c in counts],
            "mean": float(words.mean()), "max": int(words.max())}


def gate_results(data: LoadedData, fmt: str, config: ChecksConfig, tokenizer: Any = None,
                 against: LoadedData | None = None, max_length: int | None = None
                 ) -> tuple[dict[str, Any], dict[str, str]]:
    """Each gate's result object (full, uncapped), and the gates in `config.run` that do not apply to `fmt`."""
    results: dict[str, Any] = {}
    not_applicable: dict[str, str] = {}
    annotations = fmt == ANNOTATION_FORMAT
    texts = None if annotations else [record_text(r, fmt) for r in data.records]

    def gate_texts(dataset: LoadedData, field: str | None) -> list[str]:
        if field is None and dataset is data and texts is not None:
            return texts
        return [record_text(r, fmt, field) for r in dataset.records]

    for name in config.run:
        if annotations != (name == "agreement"):
            not_applicable[name] = ("applies to annotation data (--format classification)" if name == "agreement"
                                    else "does not apply to annotation data")
        elif name == "template":
            results[name] = check_template(data, fmt, tokenizer=tokenizer,
                                           max_violation_rate=config.template.max_violation_rate,
                                           max_length=max_length)
        elif name == "dedup":
            other = gate_texts(against, config.dedup.field) if against is not None else None
            results[name] = find_near_duplicates(gate_texts(data, config.dedup.field), config.dedup, other)
        elif name == "pii":
            results[name] = scan_pii(gate_texts(data, config.pii.field), config.pii)
        elif name == "agreement":
            judgements = judgements_from_records(data.records, data.lines, data.path, config.agreement)
            results[name] = compute_agreement(judgements, config.agreement)
    return results, not_applicable


def build_report(data: LoadedData, fmt: str, config: ChecksConfig, results: dict[str, Any],
                 not_applicable: dict[str, str], against: LoadedData | None = None) -> dict[str, Any]:
    """The one report format: `passed` is false when a gate named in `config.fail_on` failed."""
    checks = {name: result.to_dict() for name, result in results.items()}
    report: dict[str, Any] = {
        "passed": all(checks[name]["passed"] for name in config.fail_on if name in checks),
        "records": len(data), "format": fmt, "sources": [data.path], "fail_on": list(config.fail_on),
        "checks": checks,
    }
    if not_applicable:
        report["not_applicable"] = not_applicable
    if against is not None:
        report["against"] = against.path
    if "skipped_invalid" in data.extra:
        report["skipped_invalid"] = {"count": len(data.extra["skipped_invalid"]),
                                     "lines": data.extra["skipped_invalid"][:100]}
    if fmt != ANNOTATION_FORMAT:
        report["lengths"] = _length_histogram([record_text(r, fmt) for r in data.records])
    return report


def run_gates(data: LoadedData, fmt: str, config: ChecksConfig, tokenizer: Any = None,
              against: LoadedData | None = None, max_length: int | None = None) -> dict[str, Any]:
    """Run every gate in `config.run` that applies to `fmt` on `data`; return the report.

    `against` (optional) is a second dataset, e.g. the eval split, checked for near-duplicates
    of `data` (contamination). Gates not in `config.fail_on` are reported but stop nothing.
    """
    results, not_applicable = gate_results(data, fmt, config, tokenizer, against, max_length)
    return build_report(data, fmt, config, results, not_applicable, against)
