"""What a gate is: the `Gate` protocol every gate implements and the `GateSpec` the registry lists.

A gate is fed every record once, in order (`add`), and then gives its result (`result`). The pipeline
(`data_checks.gates`) starts one `Gate` per name in `checks.run` that applies to the data's format, feeds
them all in one pass over the records, and asks each for its result; the report takes `result.to_dict()`,
the terminal table `spec.summary(...)` and the HTML page `spec.html_section(...)`. Adding a gate is one
package (its config dataclass, its `Gate`, its `GATE = GateSpec(...)`), one line in
`data_checks/registry.py` and its settings node in `ChecksConfig` (docs/ARCHITECTURE.md, "Add a gate").
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

ANNOTATION_FORMAT = "classification"  # rows of judgements: only gates with `annotation_data=True` apply


class GateResult(Protocol):
    """A gate's full (uncapped) result: `passed` and the JSON-ready `to_dict()` of the report."""

    passed: bool

    def to_dict(self) -> dict[str, Any]: ...


class Gate(Protocol):
    """One run of a gate over one dataset. Keeps what it needs to decide, never the records."""

    def add(self, record: dict[str, Any], line: int, text: str | None) -> None:
        """Take one record (`line`: where it is in its file; `text`: the record's text as the format
        defines it, `data_checks.formats.record_text`, or None for annotation data)."""

    def result(self, against: Iterator[dict[str, Any]] | None) -> GateResult:
        """The verdict once every record was added. `against` (only for specs with `reads_against`) are
        the records of a second dataset, e.g. the eval split, when one was given."""


@dataclass(frozen=True)
class GateContext:
    """What a gate may read when it starts: the source's label, the resolved format, the whole `checks`
    config (`ChecksConfig`; each gate reads its own node), the tokenizer and length limit of training, and
    what training's tokenisation already found per record (`encoded`, `data_checks.template.RecordEncoding`s in
    record order), which the template gate reads instead of rendering each chat again."""

    path: str
    fmt: str
    config: Any
    tokenizer: Any = None
    max_length: int | None = None
    encoded: Any = None


@dataclass(frozen=True)
class GateSpec:
    """A gate as the registry knows it.

    `start` builds the `Gate` for one run; `summary` is its one-line detail in the terminal table and
    `html_section` its section of the HTML page (both read the result's `to_dict()`). A gate applies to
    annotation data only (`annotation_data=True`) or to every other format; `reads_against` says it
    compares the data with a second dataset.
    """

    name: str
    start: Callable[[GateContext], Gate]
    summary: Callable[[dict[str, Any]], str]
    html_section: Callable[[dict[str, Any]], str]
    annotation_data: bool = False
    reads_against: bool = False

    def applies_to(self, fmt: str) -> bool:
        return (fmt == ANNOTATION_FORMAT) == self.annotation_data

    def not_applicable_reason(self) -> str:
        if self.annotation_data:
            return "applies to annotation data (--format classification)"
        return "does not apply to annotation data"
