"""Scoring a PII finder against hand-labelled texts (`tests/data/pii_realtext/texts.jsonl` and the like).

A labelled text is `{"id", "source", "text", "spans": [{"start", "end", "type", "label", "note"?}]}` with
`label` one of `pii` (a real value of that type), `placeholder` (a known-fake one: john@example.com,
(123) 456-7890) and `not_pii` (something a recognizer took for that type: arithmetic, a version, a year).
A prediction matches a labelled span of the same type when the two overlap.

Two views are scored per type:
- `pii`: findings that are not placeholders against the `pii` spans (a finding on a placeholder is a false
  positive, a real value reported as a placeholder is a miss);
- `detection`: every finding against `pii` and `placeholder` spans together (any value of the type), the
  view in which a finder without a placeholder notion (plain presidio) can be compared.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

Prediction = tuple[int, int, str, bool]  # (start, end, type, is_placeholder)


@dataclass
class Tally:
    """Matched and total counts of one type in one view."""

    predicted: int = 0
    predicted_matched: int = 0
    truth: int = 0
    truth_found: int = 0
    false_positives: list[dict[str, Any]] = field(default_factory=list)
    misses: list[dict[str, Any]] = field(default_factory=list)

    @property
    def precision(self) -> Optional[float]:
        return self.predicted_matched / self.predicted if self.predicted else None

    @property
    def recall(self) -> Optional[float]:
        return self.truth_found / self.truth if self.truth else None


def load_labelled(path: Path) -> list[dict[str, Any]]:
    """The labelled texts of a JSONL file."""
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def score(texts: Iterable[dict[str, Any]], predict: Callable[[str], list[Prediction]],
          types: Iterable[str]) -> dict[str, dict[str, Tally]]:
    """Per view (`pii`, `detection`) and type, the tallies of `predict` on the labelled `texts`."""
    types = list(types)
    views: dict[str, dict[str, Tally]] = {"pii": {t: Tally() for t in types},
                                          "detection": {t: Tally() for t in types}}
    for record in texts:
        text = record["text"]
        predictions = [p for p in predict(text) if p[2] in types]
        for view, tallies in views.items():
            truth_labels = {"pii"} if view == "pii" else {"pii", "placeholder"}
            for kind in types:
                tally = tallies[kind]
                truth = [(s["start"], s["end"]) for s in record["spans"]
                         if s["type"] == kind and s["label"] in truth_labels]
                found = [(s, e) for s, e, k, placeholder in predictions
                         if k == kind and (view == "detection" or not placeholder)]
                tally.truth += len(truth)
                tally.predicted += len(found)
                for span in found:
                    if any(_overlaps(span, t) for t in truth):
                        tally.predicted_matched += 1
                    else:
                        tally.false_positives.append({"id": record["id"], "value": text[span[0]:span[1]]})
                for span in truth:
                    if any(_overlaps(span, f) for f in found):
                        tally.truth_found += 1
                    else:
                        tally.misses.append({"id": record["id"], "value": text[span[0]:span[1]]})
    return views
