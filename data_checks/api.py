"""`check(path, ...)`: the data gates on one file from Python, with the command line's config handling.

The report is the one `data-checks PATH --json` writes. As on the command line, every gate that runs
decides `report["passed"]`; `overrides` are checked against the schema like a `--config` file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Optional

from data_checks.config import ChecksConfig, load_checks_config
from data_checks.errors import DataError
from data_checks.gate import ANNOTATION_FORMAT
from data_checks.gates import run_gates_streamed


def checks_config(config: Optional[os.PathLike[str] | str] = None,
                  overrides: Optional[Mapping[str, Any]] = None, fmt: str = "auto") -> ChecksConfig:
    """A checks YAML (or the defaults) with `overrides` merged in (`{"pii": {"fail_on_confidence": "low"}}`,
    `{"run": ["dedup"]}`); unknown keys and wrong types raise DataError naming the key."""
    base = load_checks_config(os.fspath(config)) if config is not None else ChecksConfig()
    if overrides:
        from omegaconf import OmegaConf
        from omegaconf.errors import OmegaConfBaseException

        try:
            base = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(base), dict(overrides)))
        except OmegaConfBaseException as exc:
            key = getattr(exc, "full_key", None)
            raise DataError("overrides", None, f"{'checks.' + key + ': ' if key else ''}"
                                               f"{str(exc).splitlines()[0]}") from None
    if fmt == ANNOTATION_FORMAT and not (overrides and "run" in overrides):
        base.run = ["agreement"]
    base.fail_on = list(base.run)
    problems = base.problems()
    if problems:
        raise DataError(os.fspath(config) if config is not None else "overrides", None, problems[0])
    return base


def check(path: os.PathLike[str] | str, fmt: str = "auto", config: Optional[os.PathLike[str] | str] = None,
          overrides: Optional[Mapping[str, Any]] = None, against: Optional[os.PathLike[str] | str] = None,
          skip_invalid: bool = False) -> dict[str, Any]:
    """The gates' report on `path` (read one record at a time): `report["passed"]`, `report["checks"][gate]`."""
    return run_gates_streamed(path, fmt, checks_config(config, overrides, fmt), against=against,
                              skip_invalid=skip_invalid)
