"""Every gate `checks.run` can name, in the order they appear in the report. A new gate is one line here."""

from __future__ import annotations

from data_checks import template
from data_checks.agreement import spec as agreement
from data_checks.dedup import spec as dedup
from data_checks.gate import GateSpec
from data_checks.pii import spec as pii

GATES: dict[str, GateSpec] = {spec.name: spec for spec in (
    template.GATE,
    dedup.GATE,
    pii.GATE,
    agreement.GATE,
)}
