"""Configuration of the gates; the schema behind `gatetune/conf/checks/*.yaml` (plain dataclasses, no Hydra needed).

Each gate's own settings live beside its code (`DedupGateConfig` in dedup/config.py, ...) and are
gathered here into `ChecksConfig`, the node `checks` of the training config and of
`data-checks --config FILE`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from data_checks.agreement import AgreementGateConfig
from data_checks.dedup import DedupGateConfig
from data_checks.pii import PiiGateConfig
from data_checks.registry import GATES

AVAILABLE_GATES = tuple(GATES)
ENGINES = ("local", "slurm", "ray")  # data_checks/distributed/: where `checks.engine` runs the gates' stages
DEFAULT_GATES = ["template", "dedup", "pii"]  # agreement needs annotation data: `--format classification`


@dataclass
class TemplateGateConfig:
    """Fail when more than this fraction of records break the format or the chat template."""

    max_violation_rate: float = 0.0


@dataclass
class ChecksConfig:
    """Which gates run (`run`) and which of them stop training when they fail (`fail_on`)."""

    enabled: bool = True
    run: list[str] = field(default_factory=lambda: list(DEFAULT_GATES))
    fail_on: list[str] = field(default_factory=lambda: list(DEFAULT_GATES))
    template: TemplateGateConfig = field(default_factory=TemplateGateConfig)
    dedup: DedupGateConfig = field(default_factory=DedupGateConfig)
    pii: PiiGateConfig = field(default_factory=PiiGateConfig)
    agreement: AgreementGateConfig = field(default_factory=AgreementGateConfig)
    # train.py only (data-checks has --engine): the dedup and pii gates of a run as stages on a distributed engine
    # (docs/distributed_gates.md), for training data too large for one process's gates; null: in this process.
    engine: Optional[str] = None  # local | slurm | ray
    engine_workers: int = 2  # tasks at a time
    engine_workdir: Optional[str] = None  # the stages' files; default: <run dir>/data_checks_work (reused on resume)
    engine_slurm: dict[str, Any] = field(default_factory=dict)  # with engine=slurm: partition, time, cpus_per_task, ...

    def problems(self) -> list[str]:
        """Config mistakes, each naming its key."""
        found = []
        for key in ("run", "fail_on"):
            for name in getattr(self, key):
                if name not in GATES:
                    found.append(f"checks.{key}: unknown gate {name!r} (available: {', '.join(GATES)})")
        for name in self.fail_on:
            if name in GATES and name not in self.run:
                found.append(f"checks.fail_on: gate {name!r} is not in checks.run, so it cannot fail")
        if not 0.0 <= self.template.max_violation_rate <= 1.0:
            found.append("checks.template.max_violation_rate: must be between 0 and 1")
        for gate in (self.dedup, self.pii, self.agreement):
            found.extend(gate.problems())
        if self.engine is not None and self.engine not in ENGINES:
            found.append(f"checks.engine: {self.engine!r} is not one of {', '.join(ENGINES)} "
                         "(or null: in this process)")
        if self.engine_workers < 1:
            found.append(f"checks.engine_workers: must be at least 1, got {self.engine_workers}")
        if self.engine_slurm and self.engine != "slurm":
            found.append("checks.engine_slurm: only with checks.engine=slurm")
        return found


def load_checks_config(path: str) -> ChecksConfig:
    """A `gatetune/conf/checks/*.yaml` file as a ChecksConfig; unknown keys and wrong types fail with the key's name."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from data_checks.errors import DataError

    try:
        merged = OmegaConf.merge(OmegaConf.structured(ChecksConfig), OmegaConf.load(path))
        return OmegaConf.to_object(merged)
    except OSError as exc:
        raise DataError(path, None, f"cannot read the config: {exc.strerror}") from None
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None)
        raise DataError(path, None, f"{'checks.' + key + ': ' if key else ''}{str(exc).splitlines()[0]}") from None
