"""The PII gate: find personal data with presidio-analyzer's pattern recognizers, fully offline.

What runs: presidio's `AnalyzerEngine` recognizers behind its no-op NLP engine (no spaCy model, no
network). Types (`SUPPORTED_ENTITIES`): EMAIL_ADDRESS, PHONE_NUMBER, CREDIT_CARD, IBAN_CODE, US_SSN,
IP_ADDRESS (v4 and v6), MAC_ADDRESS, CRYPTO (bitcoin addresses) and URL. URL is supported but not in
`DEFAULT_ENTITIES`: every link in a training set would fail the gate, and presidio's URL pattern also
fires on code such as `os.path` (`.pa` is a country TLD). Presidio's other spaCy-free recognizers
(US bank number, driver licence, passport, ITIN, ...) are bare digit-run patterns scored 0.01-0.4 that
flag most long numbers; they are left out.

Changes to presidio's stock recognizers, and why (measured on presidio-research's synthetic set,
`../shared/datasets/presidio_synth_pii`; tests/test_pii.py asserts the per-type numbers):
- EMAIL_ADDRESS: presidio validates the domain with the module-level `tldextract.extract`, which
  downloads the public-suffix list on first use. Ours uses a `TLDExtract(suffix_list_urls=(),
  cache_dir=None)`: the snapshot bundled with tldextract, no network and no cache writes.
- PHONE_NUMBER: presidio's `PhoneRecognizer` (python-phonenumbers, 8 regions) found 59% of the set's
  phone numbers (most non-US/UK formats missed), reported IPv4 addresses, SSNs, card numbers, ZIP codes
  and house numbers as phones, and is the slowest recognizer. It is replaced by a pattern recognizer
  for 7-15 digits in groups (separators space - . / and parenthesised area codes, an optional +
  prefix and x/ext extension) with a validator that rejects IPv4-shaped, date-shaped, decimal,
  ZIP+4, year/number-range and ISBN strings, bare digit runs that are not 10-11 digits long, bare
  10-digit runs starting with 1 (Unix timestamps), two groups whose last has under 4 digits (house
  numbers, postal codes such as 75534-030), and two space-separated numbers next to a street word
  ("370 3911 Fourth Avenue", "Apt. 675 62314": a house and a flat number).
- CREDIT_CARD: presidio's regex only knows 13-17-digit numbers starting 1/3/4/5/6, so it missed 23% of
  the set (19-digit Visa, 12-digit Maestro, 2-series Mastercard, 15-digit JCB). Ours takes any 12-19
  digits, plain or in groups of a 4-digit first group, Luhn-checked; bare 13-digit runs starting with 1
  (millisecond timestamps) and one repeated digit are rejected, as presidio does.
- IBAN_CODE: presidio's pattern is case-sensitive, so lower-case IBANs were missed; ours matches any
  case and validates the upper-cased value (mod-97 checksum and country format, as presidio does).
- IP_ADDRESS: presidio's IPv4 pattern also matches four numbers inside a longer dotted run (a version
  string such as 1.2.3.4.5.6); ours does not start or end next to another ".digit". Addresses that are
  not globally routable (loopback 127.0.0.1, private 10/8 and 192.168/16, link-local, documentation
  ranges, ...) are dropped: they name no one, and code and tutorials are full of them.
- Conflicts: a PHONE_NUMBER overlapping a result of another type (SSN, card number, IP, ...) is
  dropped, and so is a URL overlapping an email address (its domain).

Speed: a cheap prefilter decides which texts can hold PII at all: for each recognizer, a short regex
that every match of that recognizer contains (`_TRIGGERS`). A text that matches none is PII-free by
construction. A text that matches runs only the recognizers whose trigger matched, called directly
rather than through `AnalyzerEngine.analyze` (whose per-call overhead - recognizer lookup, empty spaCy
Doc, context pass - dominates on short texts). The results are the same as the engine's;
tests/test_pii.py checks both that and the prefilter's soundness. One core does 30-45k short texts/s
(scripts/bench_pii.py, docs/benchmarks.md), so there is no worker pool: each worker would pay the
seconds-long presidio import first.

presidio is imported on first use, not when this module is imported.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import re
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Optional

from data_checks.progress import progress

SUPPORTED_ENTITIES = ("EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "US_SSN", "IP_ADDRESS",
                      "MAC_ADDRESS", "CRYPTO", "URL")
DEFAULT_ENTITIES = tuple(e for e in SUPPORTED_ENTITIES if e != "URL")
# The no-op NLP engine gives no context boost, so scores are the patterns' own: 0.4 keeps every
# validated result (1.0), IPs and MACs (0.6), URLs (0.5), the medium SSN pattern (0.5) and phones (0.4),
# and drops presidio's "very weak" SSN patterns (0.05, any 9 digits) and the bare "::" IPv6 (0.1).
DEFAULT_SCORE_THRESHOLD = 0.4
EXCERPT_CONTEXT = 20  # characters of context kept on each side of a span in a report excerpt
LANGUAGE = "en"

# A necessary condition for each recognizer: every match of that type's recognizer contains a match of
# one of its triggers. Each is the recognizer's pattern with boundaries, repetitions beyond the minimum
# and validators dropped; they are compiled case-insensitively, as presidio compiles its patterns, and
# use \d where presidio has [0-9] (a superset). Every trigger starts with a fixed character set ('@',
# a digit, ':', '-', '.') so `re` scans for that character instead of trying each position; the
# character before it is checked with a look-behind.
_TRIGGERS: dict[str, tuple[str, ...]] = {
    "EMAIL_ADDRESS": (r"@\w",),  # ...[@]\w+...
    "PHONE_NUMBER": (r"\d(?:[ \-./()]{0,3}\d){6}",),  # _PHONE_PATTERN: 7+ digits, <= 3 separators apart
    # SSN1-5: \d{5}-\d{4}, \d{3}-\d{6}, \d{3}-\d{2}-\d{4}, \d{9}, \d{3}[- .]\d{2}[- .]\d{4}
    "US_SSN": (r"\d{3}[- .]?\d{2}[- .]?\d{4}",),
    "CREDIT_CARD": (r"\d(?:[ -]?\d){11}",),  # _CARD_PATTERN: (?:\d[ -]?){11,18}\d
    # [A-Z]{2}[0-9]{2}(?:[ -]?[A-Z0-9]{4}){2,6}
    "IBAN_CODE": (r"\d\d(?<=[a-z]{2}\d\d)[ -]?[a-z0-9]{4}[ -]?[a-z0-9]{4}",),
    # IPv4 (also inside the IPv4-mapped and -embedded forms); every IPv6 form has "::" or 8 full groups
    "IP_ADDRESS": (r"\d\.\d{1,3}\.\d{1,3}\.\d", r":(?::|(?<=[0-9a-f]:)[0-9a-f]{1,4}:)"),
    # [0-9A-F]{2}([:-])(?:[0-9A-F]{2}\1){4}[0-9A-F]{2}, [0-9A-F]{4}\.[0-9A-F]{4}\.[0-9A-F]{4}
    "MAC_ADDRESS": (r"[:-](?<=[0-9a-f]{2}[:-])[0-9a-f]{2}[:-]", r"\.(?<=[0-9a-f]{4}\.)[0-9a-f]{4}\."),
    "CRYPTO": (r"[13][a-z0-9]{25}",),  # (bc1|[13])[a-zA-HJ-NP-Z0-9]{25,59}
    "URL": (r"\.[a-z]{2}",),  # [a-z0-9.\-]{1,253}[.](?:com|...|ac|ad|...)
}

# Two space-separated numbers next to a street ("370 3911 Fourth Avenue", "Apt. 675 62314") are a
# house number and a flat or building number, not a phone.
_STREET_WORDS = ("street|st|avenue|ave|road|rd|drive|dr|lane|ln|close|place|pl|court|ct|way|boulevard|blvd|square|"
                 "sq|terrace|crescent|rue|highway|hwy|parkway|suite|apt")
_PHONE_PATTERN = (r"(?<![\w@+\-./])(?<!apt\. )(?<!apt )(?<!suite )"
                  rf"(?!\d+ \d+ (?:[^\W\d_][\w.'-]* ){{0,3}}(?:{_STREET_WORDS})\b)"
                  r"(?:\+ ?)?\(?\d(?:[ \-./()]{0,3}\d){6,}(?: ?(?:x|ext\.?|extension) ?\d{1,6})?(?![\w@]|[\-./]\d)")
_PHONE_EXTENSION = re.compile(r" ?(?:x|ext\.?|extension) ?\d{1,6}$", re.IGNORECASE)
_IPV4_SHAPE = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
_DATE_YMD = re.compile(r"(\d{4})([-./])(\d{1,2})\2(\d{1,2})(?:$| )")
_DATE_DMY = re.compile(r"(\d{1,2})([-./])(\d{1,2})\2(\d{4}|\d{2})(?:$| )")
_ZIP_PLUS_4 = re.compile(r"\d{5}-\d{4}")
_CARD_PATTERN = r"(?<![\w+\-./])(?:\d[ -]?){11,18}\d(?![\w@]|[\-./]\d)"


def _phone_is_invalid(text: str) -> bool:
    """True for a phone-pattern match that is not a phone number (see the module docstring)."""
    core = _PHONE_EXTENSION.sub("", text)
    groups = re.findall(r"\d+", core)
    digits = "".join(groups)
    if not 7 <= len(digits) <= 15 or core.count("(") != core.count(")"):
        return True
    separators = set(re.sub(r"[\d+]", "", core))
    if not separators:  # one bare run of digits
        if core.startswith("+"):
            return len(digits) < 8
        return not 10 <= len(digits) <= 11 or (len(digits) == 10 and digits[0] == "1")
    if _IPV4_SHAPE.fullmatch(core) or _ZIP_PLUS_4.fullmatch(core):
        return True
    if len(groups) == 2 and len(groups[1]) < 4:  # house numbers "5533 119", postal codes "75534-030"
        return True
    if sum(len(g) == 1 for g in groups) > 2:  # version strings, enumerations
        return True
    if separators == {"."} and len(groups) == 2:  # a decimal number
        return True
    if len(groups) == 2 and separators <= {"-", " "} and len(groups[0]) == len(groups[1]):
        first, second = int(groups[0]), int(groups[1])
        if separators == {"-"} and second > first:  # a range: pages 1234-1240
            return True
        if len(groups[0]) == 4 and 1800 <= first <= 2100 and 1800 <= second <= 2100:  # years 1990-2005
            return True
    match = _DATE_YMD.match(core)
    if match and 1 <= int(match[3]) <= 12 and 1 <= int(match[4]) <= 31:
        return True
    match = _DATE_DMY.match(core)
    if match:
        a, b = int(match[1]), int(match[3])
        if 1 <= a <= 31 and 1 <= b <= 31 and min(a, b) <= 12:
            return True
    if len(digits) == 13 and digits[:3] in ("978", "979") and _isbn13_ok(digits):
        return True
    return len(digits) == 10 and len(groups) == 4 and separators == {"-"} and _isbn10_ok(digits)


def _isbn13_ok(digits: str) -> bool:
    return sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(digits)) % 10 == 0


def _isbn10_ok(digits: str) -> bool:
    return sum(int(d) * (10 - i) for i, d in enumerate(digits)) % 11 == 0


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, d in enumerate(reversed(digits)):
        n = int(d)
        if i % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def _card_is_valid(text: str) -> bool:
    """12-19 digits, plain or grouped (one separator kind, a 4-digit first group), Luhn-valid."""
    groups = re.split(r"[ -]", text)
    digits = "".join(groups)
    if not (12 <= len(digits) <= 19 and digits.isdigit()) or len(set(digits)) == 1:
        return False
    if len(groups) == 1:
        if len(digits) == 13 and digits[0] == "1":  # a millisecond timestamp, not a card
            return False
    elif len({c for c in text if c in " -"}) > 1 or len(groups[0]) != 4 or any(
            not 3 <= len(g) <= 6 for g in groups[1:-1]) or not 1 <= len(groups[-1]) <= 6:
        return False
    return _luhn_ok(digits)


@dataclass
class PiiGateConfig:
    """Settings of the PII gate (`checks.pii`)."""

    data_leaves_trust_boundary: bool = True  # PII fails the gate only when the data leaves your control
    entities: list[str] = dataclasses.field(default_factory=lambda: list(DEFAULT_ENTITIES))
    score_threshold: float = DEFAULT_SCORE_THRESHOLD
    field: Optional[str] = None  # one record field to scan; None: the record's text (`record_text`)
    max_examples: int = 50

    def problems(self) -> list[str]:
        """Config mistakes, each naming its key."""
        found = []
        for name in self.entities:
            if name not in SUPPORTED_ENTITIES:
                found.append(f"checks.pii.entities: unknown entity {name!r} "
                             f"(supported: {', '.join(SUPPORTED_ENTITIES)})")
        if not self.entities:
            found.append("checks.pii.entities: is empty; list at least one entity type "
                         "(or leave 'pii' out of checks.run)")
        if not 0.0 <= self.score_threshold <= 1.0:
            found.append("checks.pii.score_threshold: must be between 0 and 1")
        if self.max_examples < 0:
            found.append("checks.pii.max_examples: must be 0 or more")
        if self.field is not None and not str(self.field).strip():
            found.append("checks.pii.field: must be a field name or null")
        return found


@dataclass
class PiiResult:
    """The gate's verdict. `by_type` counts records holding each type; `examples` are redacted."""

    passed: bool
    records_with_pii: int
    rate: float
    by_type: dict[str, int]
    examples: list[dict[str, Any]]
    data_leaves_trust_boundary: bool
    entities: list[str]

    @property
    def warning(self) -> bool:
        """PII was found but the gate passed, because the data stays inside the trust boundary."""
        return self.passed and self.records_with_pii > 0

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "records_with_pii": self.records_with_pii, "rate": self.rate,
                "by_type": dict(self.by_type), "examples": list(self.examples),
                "data_leaves_trust_boundary": self.data_leaves_trust_boundary, "entities": list(self.entities)}


@contextlib.contextmanager
def _without_ml_frameworks() -> Iterator[None]:
    """Import presidio as if torch and transformers were absent (when they are not loaded yet).

    presidio (through spaCy/thinc and its optional NLP engines) imports them when installed, which
    costs seconds and breaks the promise that data_checks runs without them; the pattern recognizers
    used here need neither. A `None` entry in sys.modules makes their import fail, which presidio handles.
    """
    blocked = [name for name in ("torch", "transformers") if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        for name in blocked:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]


class _Presidio:
    """presidio's engine and our recognizers, built once per process (presidio imports take seconds)."""

    def __init__(self) -> None:
        with _without_ml_frameworks():
            try:
                import tldextract
                from presidio_analyzer import AnalyzerEngine, Pattern, PatternRecognizer, RecognizerRegistry
            except ImportError as exc:
                raise ImportError(f"the PII gate needs presidio-analyzer ({exc}); "
                                  "install it with: pip install presidio-analyzer") from exc
            from presidio_analyzer.entity_recognizer import EntityRecognizer
            from presidio_analyzer.nlp_engine import NoOpNlpEngine
        from presidio_analyzer.predefined_recognizers import (
            CreditCardRecognizer,
            CryptoRecognizer,
            EmailRecognizer,
            IbanRecognizer,
            IpRecognizer,
            MacAddressRecognizer,
            PhoneRecognizer,
            UrlRecognizer,
            UsSsnRecognizer,
        )

        # The public-suffix snapshot bundled with tldextract; no URLs means no download is ever tried.
        suffixes = tldextract.TLDExtract(cache_dir=None, suffix_list_urls=(), fallback_to_snapshot=True)

        class OfflineEmailRecognizer(EmailRecognizer):
            def validate_result(self, pattern_text: str) -> bool:
                return suffixes(pattern_text).fqdn != ""

        class AnyCaseIbanRecognizer(IbanRecognizer):
            def __init__(self) -> None:
                import regex

                super().__init__(regex_flags=regex.DOTALL | regex.MULTILINE | regex.IGNORECASE)

            def validate_result(self, pattern_text: str) -> Optional[bool]:
                return super().validate_result(pattern_text.upper())

        class GroupedPhoneRecognizer(PatternRecognizer):
            def __init__(self) -> None:
                super().__init__(supported_entity="PHONE_NUMBER", name="GroupedPhoneRecognizer",
                                 patterns=[Pattern("Phone (digit groups)", _PHONE_PATTERN, PhoneRecognizer.SCORE)],
                                 context=PhoneRecognizer.CONTEXT)

            def invalidate_result(self, pattern_text: str) -> bool:
                return _phone_is_invalid(pattern_text)

        class LuhnCardRecognizer(CreditCardRecognizer):
            def __init__(self) -> None:
                super().__init__(patterns=[Pattern("Card number (12-19 digits)", _CARD_PATTERN, 0.3)])

            def validate_result(self, pattern_text: str) -> bool:
                return _card_is_valid(pattern_text)

        class PublicIpRecognizer(IpRecognizer):
            def __init__(self) -> None:
                patterns = [Pattern(p.name, rf"(?<!\d\.){p.regex}(?!\.\d)" if p.name == "IPv4" else p.regex, p.score)
                            for p in IpRecognizer.PATTERNS]
                super().__init__(patterns=patterns)

            def invalidate_result(self, pattern_text: str) -> bool:
                try:
                    return not ipaddress.ip_interface(pattern_text).ip.is_global
                except ValueError:
                    return True

        self.recognizers = {"EMAIL_ADDRESS": OfflineEmailRecognizer(), "PHONE_NUMBER": GroupedPhoneRecognizer(),
                            "CREDIT_CARD": LuhnCardRecognizer(), "IBAN_CODE": AnyCaseIbanRecognizer(),
                            "US_SSN": UsSsnRecognizer(), "IP_ADDRESS": PublicIpRecognizer(),
                            "MAC_ADDRESS": MacAddressRecognizer(), "CRYPTO": CryptoRecognizer(),
                            "URL": UrlRecognizer()}
        nlp_engine = NoOpNlpEngine(models=[{"lang_code": LANGUAGE, "model_name": "no_op"}])
        nlp_engine.load()
        registry = RecognizerRegistry(supported_languages=[LANGUAGE])
        for recognizer in self.recognizers.values():
            registry.add_recognizer(recognizer)
        self.engine = AnalyzerEngine(registry=registry, nlp_engine=nlp_engine, supported_languages=[LANGUAGE])
        self.artifacts = nlp_engine.process_text("", LANGUAGE)  # the (empty) artifacts every text gets
        self.remove_duplicates = EntityRecognizer.remove_duplicates


_PRESIDIO: Optional[_Presidio] = None
_LOCK = threading.Lock()


def _presidio() -> _Presidio:
    global _PRESIDIO
    with _LOCK:
        if _PRESIDIO is None:
            _PRESIDIO = _Presidio()
        return _PRESIDIO


def analyzer_engine() -> Any:
    """presidio's `AnalyzerEngine` (no-op NLP engine) holding exactly the recognizers this gate uses."""
    return _presidio().engine


def _resolve(results: list[Any]) -> list[tuple[int, int, str]]:
    """(start, end, type) sorted by position, after the cross-type conflict rules of the module docstring."""
    def overlaps(a: Any, types: Any) -> bool:
        return any(b.entity_type in types and b.start < a.end and a.start < b.end for b in results)

    kept = []
    for r in results:
        if r.entity_type == "PHONE_NUMBER" and overlaps(r, set(SUPPORTED_ENTITIES) - {"PHONE_NUMBER"}):
            continue
        if r.entity_type == "URL" and overlaps(r, {"EMAIL_ADDRESS"}):
            continue
        kept.append((r.start, r.end, r.entity_type))
    return sorted(set(kept))


class _Scanner:
    """The prefilter and the recognizers for one choice of entities and threshold."""

    def __init__(self, entities: Sequence[str], score_threshold: float) -> None:
        unknown = [e for e in entities if e not in SUPPORTED_ENTITIES]
        if unknown:
            raise ValueError(f"unknown PII entity {unknown[0]!r} (supported: {', '.join(SUPPORTED_ENTITIES)})")
        self.entities = [e for e in SUPPORTED_ENTITIES if e in set(entities)]
        self.threshold = score_threshold
        gated: dict[str, list[str]] = {}
        for entity in self.entities:
            for trigger in _TRIGGERS[entity]:
                gated.setdefault(trigger, []).append(entity)
        self.triggers = [(re.compile(t, re.IGNORECASE), tuple(group)) for t, group in gated.items()]
        self._presidio: Optional[_Presidio] = None

    def might_have_pii(self, text: str) -> bool:
        """The prefilter: False only for a text no enabled recognizer can match."""
        return any(trigger.search(text) for trigger, _ in self.triggers)

    def find(self, text: str) -> list[tuple[int, int, str]]:
        todo: list[str] = []
        for trigger, group in self.triggers:
            if trigger.search(text):
                todo.extend(e for e in group if e not in todo)
        if not todo:
            return []
        presidio = self._presidio or _presidio()
        self._presidio = presidio
        results = []
        for entity in todo:
            found = presidio.recognizers[entity].analyze(text, [entity], presidio.artifacts)
            results.extend(r for r in found if r.score >= self.threshold)
        return _resolve(presidio.remove_duplicates(results)) if results else []

    def find_with_engine(self, text: str) -> list[tuple[int, int, str]]:
        """The same answer through `AnalyzerEngine.analyze`, with no prefilter (slow; for tests and benchmarks)."""
        results = analyzer_engine().analyze(text, LANGUAGE, entities=list(self.entities),
                                            score_threshold=self.threshold)
        return _resolve(results)


_SCANNERS: dict[tuple[tuple[str, ...], float], _Scanner] = {}


def _scanner(config: Optional[PiiGateConfig]) -> _Scanner:
    config = config or PiiGateConfig()
    key = (tuple(config.entities), float(config.score_threshold))
    if key not in _SCANNERS:
        _SCANNERS[key] = _Scanner(*key)
    return _SCANNERS[key]


def find_pii(text: str, config: Optional[PiiGateConfig] = None) -> list[tuple[int, int, str]]:
    """Every PII span in `text` as (start, end, entity type), sorted by position."""
    return _scanner(config).find(text)


def _replace(text: str, spans: Sequence[tuple[int, int, str]], start: int, end: int, squash: bool) -> str:
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


def redact(text: str, config: Optional[PiiGateConfig] = None,
           spans: Optional[Sequence[tuple[int, int, str]]] = None) -> str:
    """`text` with every PII span replaced by `<TYPE>` (e.g. `<EMAIL_ADDRESS>`); pass `spans` from
    `find_pii` to avoid scanning twice."""
    if spans is None:
        spans = find_pii(text, config)
    return _replace(text, spans, 0, len(text), squash=False) if spans else text


def excerpt(text: str, spans: Sequence[tuple[int, int, str]], span: tuple[int, int, str],
            context: int = EXCERPT_CONTEXT) -> str:
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


class PiiScan:
    """The PII gate fed one text at a time (`add`), then `result()`; keeps counts and the first
    `max_examples` redacted excerpts, never the texts."""

    def __init__(self, config: PiiGateConfig) -> None:
        self.config = config
        self.scanner = _scanner(config)
        _presidio()  # load presidio now, even when no text gets past the prefilter: a missing install fails every run
        self.by_type: dict[str, int] = {}
        self.examples: list[dict[str, Any]] = []
        self.records = self.records_with_pii = 0

    def add(self, text: Any) -> None:
        index = self.records
        self.records += 1
        if not isinstance(text, str):
            text = "" if text is None else str(text)
        spans = self.scanner.find(text)
        if not spans:
            return
        self.records_with_pii += 1
        seen = set()
        for span in spans:
            kind = span[2]
            if kind in seen:
                continue
            seen.add(kind)
            self.by_type[kind] = self.by_type.get(kind, 0) + 1
            if len(self.examples) < self.config.max_examples:
                self.examples.append({"record": index, "type": kind, "excerpt": excerpt(text, spans, span)})

    def result(self) -> PiiResult:
        config = self.config
        rate = self.records_with_pii / self.records if self.records else 0.0
        passed = self.records_with_pii == 0 or not config.data_leaves_trust_boundary
        by_type = {k: self.by_type[k] for k in SUPPORTED_ENTITIES if k in self.by_type}
        return PiiResult(passed, self.records_with_pii, rate, by_type, self.examples, config.data_leaves_trust_boundary,
                         list(self.scanner.entities))


def scan_pii(texts: Sequence[str], config: PiiGateConfig) -> PiiResult:
    """Scan one text per record; fail when any holds PII and the data leaves the trust boundary."""
    scan = PiiScan(config)
    for text in progress(texts, desc="PII scan"):
        scan.add(text)
    return scan.result()
