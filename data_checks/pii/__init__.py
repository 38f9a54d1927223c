"""The PII gate: find personal data with presidio-analyzer's pattern recognizers, fully offline.

What runs: presidio's recognizers behind its no-op NLP engine (no spaCy model, no network), for the types
in `SUPPORTED_ENTITIES`: EMAIL_ADDRESS, PHONE_NUMBER, CREDIT_CARD, IBAN_CODE, US_SSN, IP_ADDRESS (v4 and
v6), MAC_ADDRESS, CRYPTO (bitcoin addresses) and URL (off by default: `DEFAULT_ENTITIES`). presidio is
imported on first use, not when this package is imported.

The package, one concern a module:

- `config`       PiiGateConfig (`checks.pii`), PiiResult, the entity types and defaults;
- `patterns`     the phone and card patterns and validators (plain Python, no presidio);
- `recognizers`  one class per type where ours differs from presidio's, each docstring saying how and
                 why (measured on presidio-research's synthetic set); importing it imports presidio;
- `loading`      importing presidio without torch and transformers;
- `engine`       presidio's AnalyzerEngine and the recognizers, built once per process;
- `prefilter`    a cheap trigger regex per recognizer, so most texts never reach presidio;
- `context`      what a match really is, read from its surroundings (code, URLs, arithmetic, tables, ...);
- `placeholders` known-fake values (example.com, 555-01xx, test cards), reported apart;
- `findings`     recognizer spans to findings: context rules, confidence (high/low), placeholders;
- `scanner`      one text's findings: prefilter, recognizers, cross-type conflicts, `findings` (`find_pii`);
- `redact`       `<TYPE>` placeholders for whole texts and report excerpts;
- `scan`         the gate over a dataset (`PiiScan`, `scan_pii`).
"""

from data_checks.pii.config import (
    DEFAULT_ENTITIES,
    DEFAULT_SCORE_THRESHOLD,
    EXCERPT_CONTEXT,
    LANGUAGE,
    SUPPORTED_ENTITIES,
    PiiGateConfig,
    PiiResult,
)
from data_checks.pii.engine import analyzer_engine
from data_checks.pii.engine import presidio as _presidio  # the old private names: tests and scripts/bench_pii.py
from data_checks.pii.findings import Finding
from data_checks.pii.redact import excerpt, redact, redact_record
from data_checks.pii.scan import PiiScan, scan_pii
from data_checks.pii.scanner import find_pii, pii_findings
from data_checks.pii.scanner import scanner as _scanner

__all__ = ["DEFAULT_ENTITIES", "DEFAULT_SCORE_THRESHOLD", "EXCERPT_CONTEXT", "LANGUAGE", "SUPPORTED_ENTITIES",
           "Finding", "PiiGateConfig", "PiiResult", "PiiScan", "analyzer_engine", "excerpt", "find_pii",
           "pii_findings", "redact", "redact_record", "scan_pii",
           "_presidio", "_scanner"]
