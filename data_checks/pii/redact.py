"""Replacing PII spans by `<TYPE>` placeholders: whole texts (`redact`) and report excerpts (`excerpt`)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Optional

from data_checks.pii.config import EXCERPT_CONTEXT, PiiGateConfig
from data_checks.pii.scanner import Span, scanner


def _replace(text: str, spans: Sequence[Span], start: int, end: int, squash: bool) -> str:
    """text[start:end] with each span replaced by <TYPE> (overlapping spans merged into the first)."""
    parts, cursor = [], start
    for s, e, kind in sorted(spans):
        if e <= cursor or s >= end:
            continue
        if s >= cursor:
            parts.append(text[cursor:s])
            parts.append(f"<{kind}>")
        cursor = max(cursor, e)
    parts.append(text[cursor:end])
    if squash:  # one line in a report: runs of whitespace outside placeholders become one space
        return re.sub(r"\s+", " ", "".join(parts))
    return "".join(parts)


def redact(text: str, config: Optional[PiiGateConfig] = None, spans: Optional[Sequence[Span]] = None) -> str:
    """`text` with each finding that counts under `config` (`PiiGateConfig.counts`: by default the
    high-confidence ones that are not placeholders) replaced by `<TYPE>` (e.g. `<EMAIL_ADDRESS>`);
    `spans` replaces exactly those spans instead."""
    if spans is None:
        config = config or PiiGateConfig()
        spans = [f.span for f in scanner(config).findings(text) if config.counts(f.confidence, f.placeholder)]
    return _replace(text, spans, 0, len(text), squash=False) if spans else text


def redact_record(value: Any, config: Optional[PiiGateConfig] = None) -> Any:
    """`value` (a record, or any JSON value) with `redact` applied to every string inside it."""
    if isinstance(value, str):
        return redact(value, config)
    if isinstance(value, list):
        return [redact_record(v, config) for v in value]
    if isinstance(value, dict):
        return {k: redact_record(v, config) for k, v in value.items()}
    return value


def excerpt(text: str, spans: Sequence[Span], span: Span, context: int = EXCERPT_CONTEXT) -> str:
    """About `context` characters either side of `span`, every PII span in that window redacted.

    The window is trimmed to whole words, then widened to whole spans, so a span at its edge is never
    cut into a raw fragment: `... contact me at <EMAIL_ADDRESS> tomorrow ...`.
    """
    start, end = max(0, span[0] - context), min(len(text), span[1] + context)
    if start > 0 and not text[start - 1].isspace():
        gap = re.search(r"\s", text[start:span[0]])
        start = start + gap.end() if gap else start
    if end < len(text) and not text[end].isspace():
        gaps = [m.start() for m in re.finditer(r"\s", text[span[1]:end])]
        end = span[1] + gaps[-1] if gaps else end
    widened = True
    while widened:
        widened = False
        for s, e, _ in spans:
            if s < end and e > start and (s < start or e > end):
                start, end, widened = min(start, s), max(end, e), True
    body = _replace(text, spans, start, end, squash=True).strip()
    return f"{'... ' if start > 0 else ''}{body}{' ...' if end < len(text) else ''}"
