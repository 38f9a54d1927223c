"""What a distributed gate run is: its inputs, settings and task counts, fixed when it starts and kept in the
work directory (`plan.json`), so that a rerun continues the same run or says why it cannot.

The work directory holds one folder per stage; each task writes only its own files, and datatrove's
completion markers (`logs/<stage>/completions/`) say which tasks finished:

    sketch/S/exact.bin bands.bin  words.npz  pii.json  template.json  skipped.json  meta.json   per shard S
                           (exact.bin: a section per exact task E, bands.bin one per band B and key range H,
                           each `.bounds` beside it: a task reads its own section of each shard's file)
    exact/E.npz            groups of records with the same normalised text (key range E)
    bands/B-H-V.npy        candidate pairs of band B, key range H, for verification task V
    needed/V-pairs.npy     verify task V's candidate pairs, each once
    needed/V.i64  V-cuts.i64   the records they name (raw int64, sorted) and where each shard's start in it
    fetched/S.bin          shard S's texts of those records, a section per verify task (and its .bounds)
    verified/V.npy         candidate pairs whose exact Jaccard reaches the threshold
    report.json            the gate report, the same shape as one process's
    clean/dropped.npy      with --write-clean: the records the clean copy leaves out (all but the first of a cluster)
    clean/S.jsonl          shard S's records that the clean copy keeps (redacted with --redact-pii), in order
    with --against:  sketch-against/A/bands.bin, meta.json (its shard A's band keys); bands/B-H-V-x.npy,
                     needed/V-pairs-x.npy, needed/V-x.i64, fetched-against/A.bin and verified/V-x.npy (pairs of a
                     record of the data and one of `against`)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any

from data_checks.config import TemplateGateConfig
from data_checks.dedup.config import DedupGateConfig
from data_checks.dedup.lsh import choose_bands
from data_checks.distributed.shards import Shard
from data_checks.pii.config import PiiGateConfig

PLAN = "plan.json"
DISTRIBUTED_GATES = ("template", "dedup", "pii")


@dataclass
class Against:
    """The second dataset (`--against`, e.g. the eval split) whose records are checked for near-duplicates in the
    first (contamination), cut into shards like the first."""

    source: str
    label: str
    size: int
    mtime_ns: int
    shards: list[Shard]

    def to_dict(self) -> dict[str, Any]:
        return {**{k: getattr(self, k) for k in ("source", "label", "size", "mtime_ns")},
                "shards": [s.to_dict() for s in self.shards]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Against:
        return cls(**{**data, "shards": [Shard(**s) for s in data["shards"]]})


@dataclass
class Plan:
    """One distributed run. `hash_ranges` splits each band's keys (bounds a band task's memory); `exact_tasks`
    and `verify_tasks` are the task counts of those stages."""

    source: str  # the file, absolute
    label: str  # the file as the report names it (as given)
    size: int
    mtime_ns: int
    fmt: str
    gates: list[str]
    fail_on: list[str]
    dedup: DedupGateConfig
    pii: PiiGateConfig
    template: TemplateGateConfig
    shards: list[Shard]
    exact_tasks: int
    verify_tasks: int
    hash_ranges: int
    skip_invalid: bool = False  # unparseable lines counted and left out (`--skip-invalid`), as in one process
    clean: bool = False  # the clean copy's stage runs (`--write-clean`): one record per cluster
    redact_pii: bool = False  # and in it the PII that counts is redacted (`--redact-pii`)
    against: Against | None = None
    # with --tokenizer: {"tokenizer", "template", "template_kwargs", "max_length"}: each record is rendered
    rendering: dict[str, Any] | None = None
    bands: int = field(init=False)
    rows: int = field(init=False)

    def __post_init__(self) -> None:
        self.bands, self.rows = choose_bands(self.dedup.threshold, self.dedup.num_perm)

    @property
    def band_tasks(self) -> int:
        return self.bands * self.hash_ranges

    @property
    def sketch_tasks(self) -> int:
        """One per shard of the data, then one per shard of `against`."""
        return len(self.shards) + (len(self.against.shards) if self.against is not None else 0)

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["dedup"], data["pii"] = dataclasses.asdict(self.dedup), dataclasses.asdict(self.pii)
        data["template"] = dataclasses.asdict(self.template)
        data["against"] = self.against.to_dict() if self.against is not None else None
        data["shards"] = [s.to_dict() for s in self.shards]
        return data

    def fingerprint(self) -> str:
        """What must not change under a run that continues in the same work directory."""
        text = json.dumps(self.to_dict(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Plan:
        values = {k: v for k, v in data.items() if k not in ("bands", "rows")}
        values["dedup"], values["pii"] = DedupGateConfig(**data["dedup"]), PiiGateConfig(**data["pii"])
        values["template"] = TemplateGateConfig(**data["template"])
        values["against"] = Against.from_dict(data["against"]) if data.get("against") else None
        values["shards"] = [Shard(**s) for s in data["shards"]]
        return cls(**values)


def source_state(path: str) -> tuple[int, int]:
    stat = os.stat(path)
    return stat.st_size, stat.st_mtime_ns
