"""The last stage: the per-shard and per-partition outputs merged into the report one process writes, with the
same keys and, on the same data, the same numbers (tests/data_checks/test_distributed_gates.py compares them)."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from data_checks.dedup.clusters import clusters_of
from data_checks.dedup.config import DedupResult
from data_checks.gates import LENGTH_BINS, MAX_LISTED_SKIPPED
from data_checks.pii.config import PiiResult
from data_checks.pii.scan import _ordered
from data_checks.template import MAX_LISTED, TemplateResult


def exact_copies(stage: Any) -> tuple[dict[int, list[int]], np.ndarray]:
    """Every exact-text group (first record -> its records) and the sorted records that are not the first."""
    groups: dict[int, list[int]] = {}
    for e in range(stage.plan.exact_tasks):
        part = stage.load(f"exact/{e:03d}.npz")
        start = 0
        for size in part["sizes"].tolist():
            members = part["members"][start:start + size].tolist()
            groups[members[0]] = members
            start += size
    copies = np.array(sorted(x for members in groups.values() for x in members[1:]), dtype=np.int64)
    return groups, copies


def dedup_result(stage: Any) -> DedupResult:
    """As `NearDuplicateFinder._result`, from the exact groups and the verified pairs of every task."""
    plan = stage.plan
    n = int(stage.offsets()[-1])
    exact, _ = exact_copies(stage)
    verified = stage.verified_pairs()
    verified.sort()
    clusters = clusters_of(verified, exact)
    near_extra = sum(len(c) - 1 for c in clusters)
    exact_extra = sum(len(m) - 1 for m in exact.values())
    pairs = verified + [(rep, other, 1.0) for rep, members in exact.items() for other in members[1:]]
    pairs.sort()
    config = plan.dedup
    near_rate = near_extra / n if n else 0.0
    passed = near_rate < config.max_rate
    found, across = None, []
    if plan.against is not None:
        from data_checks.distributed.against import contamination

        found, across = contamination(stage)
        passed = passed and not (config.fail_on_contamination and found["contaminated"])
    return DedupResult(passed, near_rate, exact_extra / n if n else 0.0, clusters, config.threshold,
                       config.num_perm, plan.bands, plan.rows, config.max_rate, found, n, pairs, across)


def pii_result(stage: Any) -> PiiResult:
    """As `PiiScan.result` over every record: counts added up, examples in record order, the first
    `max_examples` of each kind (high, low, placeholder)."""
    from data_checks.pii.scanner import scanner

    plan, config = stage.plan, stage.plan.pii
    offsets = stage.offsets()
    by_type: dict[str, int] = {}
    by_confidence: dict[str, dict[str, int]] = {}
    placeholders: dict[str, int] = {}
    examples: list[dict[str, Any]] = []
    shown: dict[str, int] = {}
    records_with_pii = 0

    def add(into: dict[str, int], counts: dict[str, int]) -> None:
        for key, value in counts.items():
            into[key] = into.get(key, 0) + value

    for shard in plan.shards:
        part = stage.read_json(f"sketch/{shard.index:05d}/pii.json")
        records_with_pii += part["records_with_pii"]
        add(by_type, part["by_type"])
        add(placeholders, part["placeholders"])
        for confidence, counts in part["by_confidence"].items():
            add(by_confidence.setdefault(confidence, {}), counts)
        for example in part["examples"]:
            kind = "placeholder" if example.get("placeholder") else example["confidence"]
            if shown.get(kind, 0) < config.max_examples:
                shown[kind] = shown.get(kind, 0) + 1
                examples.append({**example, "record": example["record"] + int(offsets[shard.index])})
    n = int(offsets[-1])
    passed = records_with_pii == 0 or not config.data_leaves_trust_boundary
    return PiiResult(passed, records_with_pii, records_with_pii / n if n else 0.0, _ordered(by_type), examples,
                     config.data_leaves_trust_boundary, list(scanner(config).entities),
                     {c: _ordered(v) for c, v in by_confidence.items()}, _ordered(placeholders),
                     config.fail_on_confidence, config.count_placeholders)


def line_offsets(stage: Any) -> list[int]:
    """The lines of the file before each shard's first line (each shard numbers its lines from 1)."""
    return [0, *itertools.accumulate(m["lines"] for m in stage.metas()[:-1])]


def skipped_lines(stage: Any) -> dict[str, Any]:
    """The report's `skipped_invalid`, as one process gives it: every unparseable line counted, the first
    MAX_LISTED_SKIPPED listed with their line in the whole file."""
    count, lines = 0, []
    for shard, lines_before in zip(stage.plan.shards, line_offsets(stage), strict=True):
        part = stage.read_json(f"sketch/{shard.index:05d}/skipped.json")
        count += part["count"]
        lines += [{**entry, "line": entry["line"] + lines_before}
                  for entry in part["lines"][:MAX_LISTED_SKIPPED - len(lines)]]
    return {"count": count, "lines": lines}


def template_result(stage: Any) -> TemplateResult:
    """As `TemplateCheck.result` over every record: violations counted, the first `MAX_LISTED` listed with the
    record's index and line in the whole file (each shard numbers its own from 0 and from its first line)."""
    plan = stage.plan
    offsets = stage.offsets()
    checked = count = truncated = 0
    violations: list[dict[str, Any]] = []
    notes: dict[str, int] = {}
    for shard, lines_before in zip(plan.shards, line_offsets(stage), strict=True):
        part = stage.read_json(f"sketch/{shard.index:05d}/template.json")
        checked, count, truncated = checked + part["checked"], count + part["count"], truncated + part["truncated"]
        for note, records in part["notes"].items():
            notes[note] = notes.get(note, 0) + records
        for violation in part["violations"][:MAX_LISTED - len(violations)]:
            violations.append({**violation, "record": violation["record"] + int(offsets[shard.index]),
                               "line": violation["line"] + lines_before})
    rate = count / checked if checked else 0.0
    limit = plan.template.max_violation_rate
    max_length = (plan.rendering or {}).get("max_length")
    measured = max_length is not None  # as TemplateCheck.result: with a tokenizer and a length limit
    return TemplateResult(rate <= limit, plan.fmt, checked, rate, limit, violations, truncated if measured else None,
                          truncated / checked if measured and checked else None, max_length if measured else None,
                          notes)


def length_histogram(stage: Any) -> dict[str, Any]:
    """`gates._length_histogram` of every record's length in words: the same bins (the global minimum and maximum,
    from each shard's meta.json, decide them) and counts, one shard's lengths in memory at a time."""
    metas = [m for m in stage.metas() if m["records"]]
    total = sum(m["records"] for m in metas)
    if not total:
        return {"unit": "words", "bin_edges": [], "counts": [], "mean": 0.0, "max": 0}
    low, top = min(m["words_min"] for m in metas), max(m["words_max"] for m in metas)
    bins = min(LENGTH_BINS, max(1, top + 1))
    edges = np.histogram_bin_edges(np.array([low, top]), bins=bins)
    counts = np.zeros(len(edges) - 1, dtype=np.int64)
    for s in stage.plan.shards:
        words = stage.load(f"sketch/{s.index:05d}/words.npz")["words"].astype(np.int64)
        if len(words):
            counts += np.histogram(words, bins=edges)[0]
    mean = sum(m["words_sum"] for m in metas) / total
    return {"unit": "words", "bin_edges": [float(e) for e in edges], "counts": [int(c) for c in counts],
            "mean": float(mean), "max": top}


def build_report(stage: Any) -> tuple[dict[str, Any], DedupResult | None]:
    """The report, and the near-duplicate gate's full result (every cluster, for the clean copy) if it ran."""
    plan = stage.plan
    results: dict[str, Any] = {}
    dedup = None
    if "template" in plan.gates:
        results["template"] = template_result(stage).to_dict()
    if "dedup" in plan.gates:
        dedup = dedup_result(stage)
        results["dedup"] = dedup.to_dict()
    if "pii" in plan.gates:
        results["pii"] = pii_result(stage).to_dict()
    checks = {name: results[name] for name in plan.gates}
    report = {"passed": all(checks[name]["passed"] for name in plan.fail_on if name in checks),
              "records": int(stage.offsets()[-1]), "format": plan.fmt, "sources": [plan.label],
              "fail_on": list(plan.fail_on), "checks": checks, "lengths": length_histogram(stage)}
    if plan.against is not None:
        report["against"] = plan.against.label
    if plan.skip_invalid:
        report["skipped_invalid"] = skipped_lines(stage)
    return report, dedup
