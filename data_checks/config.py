"""Configuration of the gates; the schema behind `conf/checks/*.yaml` (plain dataclasses, no Hydra needed)."""

from __future__ import annotations

from dataclasses import dataclass, field

AVAILABLE_GATES = ("template",)


@dataclass
class TemplateGateConfig:
    """Fail when more than this fraction of records break the format or the chat template."""

    max_violation_rate: float = 0.0


@dataclass
class ChecksConfig:
    """Which gates run (`run`) and which of them stop training when they fail (`fail_on`)."""

    enabled: bool = True
    run: list[str] = field(default_factory=lambda: ["template"])
    fail_on: list[str] = field(default_factory=lambda: ["template"])
    template: TemplateGateConfig = field(default_factory=TemplateGateConfig)

    def problems(self) -> list[str]:
        """Config mistakes, each naming its key."""
        found = []
        for key in ("run", "fail_on"):
            for name in getattr(self, key):
                if name not in AVAILABLE_GATES:
                    found.append(f"checks.{key}: unknown gate {name!r} (available: {', '.join(AVAILABLE_GATES)})")
        for name in self.fail_on:
            if name in AVAILABLE_GATES and name not in self.run:
                found.append(f"checks.fail_on: gate {name!r} is not in checks.run, so it cannot fail")
        if not 0.0 <= self.template.max_violation_rate <= 1.0:
            found.append("checks.template.max_violation_rate: must be between 0 and 1")
        return found
