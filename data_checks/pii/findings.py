"""From recognizer spans to findings: the context rules, a confidence, and the placeholder check.

A finding is `high` confidence when its type validates itself or its context says what it is (an email
address, a Luhn-valid card, an IBAN with its checksum, a dashed SSN, a phone number next to a phone word)
and `low` otherwise (a phone-shaped number with no phone word, IP and MAC addresses, bitcoin addresses,
URLs). `checks.pii.fail_on_confidence` decides which fail the gate; placeholders (`placeholders.py`) are
reported apart and fail it only with `checks.pii.count_placeholders=true`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

from data_checks.pii.context import TextContext, email_not_pii, ip_not_pii, phone_not_pii, trim_email
from data_checks.pii.placeholders import placeholder_reason

CONFIDENCES = ("high", "low")
ALWAYS_HIGH = {"EMAIL_ADDRESS", "CREDIT_CARD", "IBAN_CODE"}


@dataclass(frozen=True)
class Finding:
    """One PII span: where, what type, how sure, and why it is a known-fake value (if it is one)."""

    start: int
    end: int
    type: str
    confidence: str
    placeholder: Optional[str] = None

    @property
    def span(self) -> tuple[int, int, str]:
        return (self.start, self.end, self.type)


@dataclass(frozen=True)
class Dropped:
    """A recognizer's match that the context rules say is not PII, and which rule said so."""

    start: int
    end: int
    type: str
    reason: str


def _confidence(kind: str, value: str, context: TextContext, start: int, end: int) -> str:
    if kind in ALWAYS_HIGH:
        return "high"
    if kind == "PHONE_NUMBER":
        return "high" if context.phone_context(start, end) else "low"
    if kind == "US_SSN":  # the dashed form, or any form next to "SSN" / "social security"
        return "high" if "-" in value or _SSN_WORD.search(context.before(start)) else "low"
    return "low"


_SSN_WORD = re.compile(r"\b(?:ssn|social security)\b", re.IGNORECASE)


def _not_pii(kind: str, context: TextContext, start: int, end: int) -> Optional[str]:
    if kind == "PHONE_NUMBER":
        return phone_not_pii(context, start, end)
    if kind == "IP_ADDRESS":
        return ip_not_pii(context, start, end)
    if kind == "EMAIL_ADDRESS":
        return email_not_pii(context, start, end)
    return None


def classify(text: str, spans: Sequence[tuple[int, int, str]],
             dropped: Optional[list[Dropped]] = None) -> list[Finding]:
    """The findings among `spans` (sorted by position); what the context rules drop goes to `dropped`."""
    if not spans:
        return []
    context = TextContext(text)
    findings = []
    for start, end, kind in spans:
        if kind == "EMAIL_ADDRESS":
            start = trim_email(text, start, end)
        elif kind == "PHONE_NUMBER":
            start = _trim_enumerator(text, start, end)
        reason = _not_pii(kind, context, start, end)
        if reason is not None:
            if dropped is not None:
                dropped.append(Dropped(start, end, kind, reason))
            continue
        value = text[start:end]
        findings.append(Finding(start, end, kind, _confidence(kind, value, context, start, end),
                                placeholder_reason(kind, value)))
    return findings


def _trim_enumerator(text: str, start: int, end: int) -> int:
    """Skip a list number in front of a phone ("1. (789) 432-1089" at the start of a line)."""
    at_line_start = start == 0 or text[start - 1] in "\n\t "
    match = re.match(r"\d{1,2}[.)]\s+(?=[(+]?\d)", text[start:end])
    return start + match.end() if match and at_line_start else start
