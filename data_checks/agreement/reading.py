"""Reading judgements from records, long or wide format (see `AgreementGateConfig`), checking each row
against the rules of `rules.py` and naming the file, line and field or column of a row that breaks one."""

from __future__ import annotations

from typing import Any

from data_checks.agreement.config import AgreementGateConfig, Judgement
from data_checks.agreement.rules import CheckedJudgements, NotScalar, cell_labels, cell_text, not_numeric
from data_checks.errors import DataError
from data_checks.progress import progress


def _fields_seen(names: list[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:20])
    return shown + (f" and {len(names) - 20} more" if len(names) > 20 else "")


class JudgementReader:
    """`judgements_from_records` fed one record at a time (`add`), then `judgements()`.

    The errors are those of reading every record first: a field or column that no record has is
    reported (at the end) before the first bad row, so a bad row is remembered, not raised, and
    `add` after it only notes which fields occur.
    """

    SAMPLE = 50  # records whose field names an error message lists

    def __init__(self, path: str, config: AgreementGateConfig) -> None:
        self.path, self.config = path, config
        if config.annotator_columns:
            # Each column with the annotator name it gives (comparable text, as every value is).
            self.columns = [(name, cell_text(name)) for name in dict.fromkeys(config.annotator_columns)]
            for name, annotator in self.columns:
                if annotator is None:
                    raise DataError(path, None, f"checks.agreement.annotator_columns: {name!r} is not a column name")
            self.required = [(name, None) for name, _ in self.columns]
        else:
            self.roles = (("item", config.item_field), ("annotator", config.annotator_field),
                          ("label", config.label_field))
            self.required = [(name, role) for role, name in self.roles]
        self.missing = {name for name, _ in self.required}  # fields no record has had yet
        self.fields: dict[str, None] = {}  # the field names of the first SAMPLE records, in order
        self.sampled = 0
        self.error: DataError | None = None
        self.first_line: dict[tuple[str, str], int] = {}
        self._judgements: list[Judgement] = []

    def add(self, record: dict[str, Any], line: int) -> None:
        if self.sampled < self.SAMPLE:
            self.sampled += 1
            self.fields.update(dict.fromkeys(record))
        if self.missing:
            self.missing.difference_update([name for name in self.missing if name in record])
        if self.error is not None:
            return
        try:
            if self.config.annotator_columns:
                self._add_wide(record, line)
            else:
                self._add_long(record, line)
        except DataError as exc:
            self.error = exc

    def judgements(self) -> CheckedJudgements:
        """The judgements read, in record order; raises the reading's first error."""
        for name, role in self.required:
            if name not in self.missing:
                continue
            fields = _fields_seen(list(self.fields))
            if role is None:
                raise DataError(self.path, None, f"annotator column {name!r} is in no record "
                                                 f"(checks.agreement.annotator_columns); columns: {fields}")
            raise DataError(self.path, None, f"no record has the {role} field {name!r} "
                                             f"(checks.agreement.{role}_field); fields: {fields}")
        if self.error is not None:
            raise self.error
        return CheckedJudgements(self._judgements, numeric=bool(self.config.weights))

    def _check_numeric(self, label: str | None, line: int, where: str) -> None:
        problem = not_numeric(label, self.config.weights)
        if problem:
            raise DataError(self.path, line, f"{where}: {problem}")

    def _add_long(self, record: dict[str, Any], line: int) -> None:
        path, config = self.path, self.config
        values = []
        for role, name in self.roles:
            try:
                values.append(cell_text(record.get(name)))
            except NotScalar as exc:
                raise DataError(path, line, f"field {name!r} (the {role}) must be a single value, "
                                            f"got a {exc}") from None
            if values[-1] is None and role != "label":
                raise DataError(path, line, f"field {name!r} (the {role}) is missing or empty")
        item, annotator, label = values
        self._check_numeric(label, line, f"field {config.label_field!r}")
        if label is not None and config.multiple_labels == "error":
            earlier = self.first_line.setdefault((item, annotator), line)
            if earlier != line:
                raise DataError(path, line, f"annotator {annotator!r} labels item {item!r} again (first at line "
                                            f"{earlier}); set checks.agreement.multiple_labels to 'first' or "
                                            "'majority' to keep one label per annotator and item")
        self._judgements.append((item, annotator, label))

    def _add_wide(self, record: dict[str, Any], line: int) -> None:
        path, config = self.path, self.config
        item = cell_text(f"{path}:{line}")
        for name, annotator in self.columns:
            raw = record.get(name)
            try:
                labels = cell_labels(raw)
            except NotScalar as exc:
                raise DataError(path, line, f"column {name!r}: a label must be a single value, got a {exc}") from None
            if len(labels) > 1 and config.multiple_labels == "error":
                raise DataError(path, line, f"column {name!r}: {raw!r} holds {len(labels)} labels (the annotator "
                                            "labelled this item more than once); set "
                                            "checks.agreement.multiple_labels to 'first' or 'majority' to use one")
            for label in labels:
                self._check_numeric(label, line, f"column {name!r}")
                self._judgements.append((item, annotator, label))
            if not labels:
                self._judgements.append((item, annotator, None))


def judgements_from_records(records: list[dict[str, Any]], lines: list[int], path: str,
                            config: AgreementGateConfig) -> CheckedJudgements:
    """Turn records (long or wide format, see `AgreementGateConfig`) into (item, annotator, label) triples.

    Raises `DataError(path, line, ...)` naming the field or column of a bad row: a missing item or
    annotator, a list or object where one label belongs, a non-numeric label when `weights` is set, and,
    under `multiple_labels: error`, an annotator labelling an item more than once.
    """
    reader = JudgementReader(path, config)
    for record, line in progress(list(zip(records, lines, strict=True)), desc="agreement: reading labels"):
        reader.add(record, line)
    return reader.judgements()
