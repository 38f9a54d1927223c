"""The recognizers the PII gate runs, one class per entity type where ours differs from presidio's stock one.

Importing this module imports presidio (seconds); `engine.py` does so on first use. Each class below is
presidio's recognizer with one change, and its docstring says which and why, measured on
presidio-research's synthetic set (`../shared/datasets/presidio_synth_pii`; tests/data_checks/test_pii.py asserts the
per-type numbers). US_SSN, MAC_ADDRESS, CRYPTO (bitcoin addresses) and URL use presidio's recognizers
unchanged. Presidio's other spaCy-free recognizers (US bank number, driver licence, passport, ITIN, ...)
are bare digit-run patterns scored 0.01-0.4 that flag most long numbers; they are left out.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Optional

from data_checks.pii.loading import missing_presidio, without_ml_frameworks
from data_checks.pii.patterns import (
    CARD_PATTERN,
    OBFUSCATED_EMAIL_PATTERN,
    PHONE_PATTERN,
    card_is_valid,
    normalise_email,
    phone_is_invalid,
)

with without_ml_frameworks():
    try:
        import regex
        import tldextract
        from presidio_analyzer import Pattern, PatternRecognizer
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
    except ImportError as exc:
        raise missing_presidio(exc) from exc


class OfflineEmailRecognizer(EmailRecognizer):
    """presidio's email pattern plus addresses written to fool harvesters, the domain validated against the
    public-suffix list bundled with tldextract.

    presidio validates with the module-level `tldextract.extract`, which downloads the suffix list on first
    use. `TLDExtract(suffix_list_urls=(), cache_dir=None)` uses the snapshot: no network, no cache writes.
    The second pattern (`patterns.OBFUSCATED_EMAIL_PATTERN`: "<eprice at tjhsst.edu>", "jo (at) x (dot)
    org") found the 9 such addresses of the labelled real-text set, which presidio's pattern misses.
    """

    def __init__(self) -> None:
        score = EmailRecognizer.PATTERNS[0].score
        super().__init__(patterns=[*EmailRecognizer.PATTERNS,
                                   Pattern("Email (obfuscated)", OBFUSCATED_EMAIL_PATTERN, score)])
        self.suffixes = tldextract.TLDExtract(cache_dir=None, suffix_list_urls=(), fallback_to_snapshot=True)

    def validate_result(self, pattern_text: str) -> bool:
        return self.suffixes(normalise_email(pattern_text)).fqdn != ""


class AnyCaseIbanRecognizer(IbanRecognizer):
    """presidio's IBAN pattern matched in any case, the upper-cased value validated as presidio does
    (mod-97 checksum and country format): presidio's pattern is case-sensitive, so it missed lower-case IBANs."""

    def __init__(self) -> None:
        super().__init__(regex_flags=regex.DOTALL | regex.MULTILINE | regex.IGNORECASE)

    def validate_result(self, pattern_text: str) -> Optional[bool]:
        return super().validate_result(pattern_text.upper())


class GroupedPhoneRecognizer(PatternRecognizer):
    """Phone numbers as 7-15 digits in groups (`patterns.PHONE_PATTERN`), scored as presidio scores phones.

    presidio's `PhoneRecognizer` (python-phonenumbers, 8 regions) found 59% of the set's phone numbers (most
    non-US/UK formats missed), reported IPv4 addresses, SSNs, card numbers, ZIP codes and house numbers as
    phones, and is the slowest recognizer. The validator (`patterns.phone_is_invalid`) rejects IPv4-shaped,
    date-shaped, decimal, ZIP+4, year/number-range and ISBN strings, bare digit runs that are not 10-11 digits
    long, bare 10-digit runs starting with 1 (Unix timestamps), two groups whose last has under 4 digits (house
    numbers, postal codes such as 75534-030), and two space-separated numbers next to a street word
    ("370 3911 Fourth Avenue", "Apt. 675 62314": a house and a flat number).
    """

    def __init__(self) -> None:
        super().__init__(supported_entity="PHONE_NUMBER", name="GroupedPhoneRecognizer",
                         patterns=[Pattern("Phone (digit groups)", PHONE_PATTERN, PhoneRecognizer.SCORE)],
                         context=PhoneRecognizer.CONTEXT)

    def invalidate_result(self, pattern_text: str) -> bool:
        return phone_is_invalid(pattern_text)


class LuhnCardRecognizer(CreditCardRecognizer):
    """Card numbers as any 12-19 digits, plain or in groups after a 4-digit first group, Luhn-checked.

    presidio's regex only knows 13-17-digit numbers starting 1/3/4/5/6, so it missed 23% of the set (19-digit
    Visa, 12-digit Maestro, 2-series Mastercard, 15-digit JCB). Bare 13-digit runs starting with 1
    (millisecond timestamps) and one repeated digit are rejected, as presidio does.
    """

    def __init__(self) -> None:
        super().__init__(patterns=[Pattern("Card number (12-19 digits)", CARD_PATTERN, 0.3)])

    def validate_result(self, pattern_text: str) -> bool:
        return card_is_valid(pattern_text)


class PublicIpRecognizer(IpRecognizer):
    """presidio's IPv4 and IPv6 patterns, keeping only globally routable addresses.

    presidio's IPv4 pattern also matches four numbers inside a longer dotted run (a version string such as
    1.2.3.4.5.6); ours does not start or end next to another ".digit". Addresses that are not globally
    routable (loopback 127.0.0.1, private 10/8 and 192.168/16, link-local, documentation ranges, ...) are
    dropped: they name no one, and code and tutorials are full of them.
    """

    def __init__(self) -> None:
        patterns = [Pattern(p.name, rf"(?<!\d\.){p.regex}(?!\.\d)" if p.name == "IPv4" else p.regex, p.score)
                    for p in IpRecognizer.PATTERNS]
        super().__init__(patterns=patterns)

    def invalidate_result(self, pattern_text: str) -> bool:
        try:
            return not ipaddress.ip_interface(pattern_text).ip.is_global
        except ValueError:
            return True


# The recognizer of each supported entity type (`config.SUPPORTED_ENTITIES`).
RECOGNIZERS: dict[str, type[Any]] = {
    "EMAIL_ADDRESS": OfflineEmailRecognizer, "PHONE_NUMBER": GroupedPhoneRecognizer,
    "CREDIT_CARD": LuhnCardRecognizer, "IBAN_CODE": AnyCaseIbanRecognizer, "US_SSN": UsSsnRecognizer,
    "IP_ADDRESS": PublicIpRecognizer, "MAC_ADDRESS": MacAddressRecognizer, "CRYPTO": CryptoRecognizer,
    "URL": UrlRecognizer,
}


def build_recognizers() -> dict[str, Any]:
    """One instance of each entity type's recognizer, keyed by entity type."""
    return {entity: recognizer() for entity, recognizer in RECOGNIZERS.items()}
