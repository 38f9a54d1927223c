"""Each of the PII gate's own recognizer classes alone (real presidio, offline): the exact spans it finds,
what it must not find, and, where presidio's stock recognizer differs, the case that made us change it."""

from __future__ import annotations

import socket

import pytest

pytest.importorskip("presidio_analyzer")

from presidio_analyzer.predefined_recognizers import (  # noqa: E402
    CreditCardRecognizer,
    IbanRecognizer,
    IpRecognizer,
    PhoneRecognizer,
)

from data_checks.pii.config import SUPPORTED_ENTITIES  # noqa: E402
from data_checks.pii.recognizers import (  # noqa: E402
    RECOGNIZERS,
    AnyCaseIbanRecognizer,
    GroupedPhoneRecognizer,
    LuhnCardRecognizer,
    OfflineEmailRecognizer,
    PublicIpRecognizer,
    build_recognizers,
)


def spans(recognizer: object, entity: str, text: str) -> list[tuple[str, int, int, float]]:
    """(value, start, end, score) of every result, in presidio's order."""
    return [(text[r.start:r.end], r.start, r.end, r.score) for r in recognizer.analyze(text, [entity], None)]


def luhn_complete(body: str) -> str:
    """`body` with the check digit that makes it Luhn-valid (written independently of patterns.luhn_ok)."""
    for check in "0123456789":
        digits = [int(d) for d in body + check][::-1]
        doubled = [d * 2 - 9 * (d * 2 > 9) if i % 2 else d for i, d in enumerate(digits)]
        if sum(doubled) % 10 == 0:
            return body + check
    raise AssertionError("unreachable")


def test_every_supported_entity_has_one_recognizer_of_its_type():
    assert set(RECOGNIZERS) == set(SUPPORTED_ENTITIES)
    built = build_recognizers()
    for entity, recognizer in built.items():
        assert isinstance(recognizer, RECOGNIZERS[entity]) and entity in recognizer.supported_entities


# --------------------------------------------------------------------------------------------------------
# OfflineEmailRecognizer


@pytest.mark.parametrize(("text", "expected"), [
    ("Write to jane.roe@example.org for the details.", [("jane.roe@example.org", 9, 29, 1.0)]),
    ("mail ann@shop.example.co.uk today", [("ann@shop.example.co.uk", 5, 27, 1.0)]),
    ("me@example.notatld here", []),  # no public suffix: the snapshot was consulted
    ("me@localhost or a@b", []),  # no dot in the domain: presidio's pattern needs one
])
def test_email(text, expected):
    assert spans(OfflineEmailRecognizer(), "EMAIL_ADDRESS", text) == expected


def test_email_validation_never_touches_the_network(monkeypatch):
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network disabled by the test")

    for name in ("getaddrinfo", "create_connection"):
        monkeypatch.setattr(socket, name, refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    recognizer = OfflineEmailRecognizer()  # a fresh extractor, so the suffix list is loaded under the guard
    assert spans(recognizer, "EMAIL_ADDRESS", "to bob@example.com.") == [("bob@example.com", 3, 18, 1.0)]
    assert attempts == []


# --------------------------------------------------------------------------------------------------------
# GroupedPhoneRecognizer (score: presidio's PhoneRecognizer.SCORE, 0.4)

PHONES = [
    ("Call me on +44 20 7946 0958 after lunch.", "+44 20 7946 0958", 11),
    ("Call +1 (555) 123-4567 now", "+1 (555) 123-4567", 5),  # stock presidio drops the +1
    ("Desk 212-555-0100 ext. 23 please", "212-555-0100 ext. 23", 5),
    ("Portable 06 12 34 56 78 ou fixe", "06 12 34 56 78", 9),
    ("call 555-1234 tomorrow", "555-1234", 5),  # stock presidio misses it
    ("Office: 555.123.4567.", "555.123.4567", 8),
    ("Tel. 07700900123 anytime", "07700900123", 5),
]
NOT_PHONES = [
    "Hosts 86.121.97.248 answered",  # IPv4 (stock presidio: a phone)
    "timestamps 1700000000 then",  # a bare 10-digit run starting with 1 (stock presidio: a phone)
    "Born on 12/08/2019 in Leeds.", "The meeting is on 2021-03-04 10:00.",  # dates
    "ISBN 978-3-16-148410-0", "ISBN 0-306-40615-2",  # ISBN-13 and ISBN-10
    "ZIP 12345-6789", "postal code 75534-030",  # ZIP+4, two groups with a short last one
    "It ran from 1990-2005.", "See pp. 1234-1240.", "pi is 3.14159265",  # years, a range, a decimal
    "She lives at 370 3911 Fourth Avenue.", "Apt. 675 62314 Mellemvej",  # house and flat numbers
    "order #12345678 shipped", "v1.2.3.4.5.6.7.8",  # a bare 8-digit run, a version string
]


@pytest.mark.parametrize(("text", "value", "start"), PHONES)
def test_phone(text, value, start):
    assert spans(GroupedPhoneRecognizer(), "PHONE_NUMBER", text) == [
        (value, start, start + len(value), PhoneRecognizer.SCORE)]


@pytest.mark.parametrize("text", NOT_PHONES)
def test_not_a_phone(text):
    assert spans(GroupedPhoneRecognizer(), "PHONE_NUMBER", text) == []


def test_phone_cases_where_stock_presidio_differs():
    stock = PhoneRecognizer()
    assert spans(stock, "PHONE_NUMBER", "Hosts 86.121.97.248 answered") == [("86.121.97.248", 6, 19, 0.4)]
    assert spans(stock, "PHONE_NUMBER", "call 555-1234 tomorrow") == []


# --------------------------------------------------------------------------------------------------------
# LuhnCardRecognizer (validated results score 1.0)

VISA_19 = luhn_complete("411111111111111111")
MAESTRO_12 = luhn_complete("67596498264")
MASTERCARD_2 = luhn_complete("222100000000000")
JCB_15 = luhn_complete("18000000000000")


@pytest.mark.parametrize("number", ["4111111111111111", "4111 1111 1111 1111", "4111-1111-1111-1111",
                                    VISA_19, MAESTRO_12, MASTERCARD_2, JCB_15, "3782 822463 10005"])
def test_card(number):
    text = f"card {number} on file"
    assert spans(LuhnCardRecognizer(), "CREDIT_CARD", text) == [(number, 5, 5 + len(number), 1.0)]


@pytest.mark.parametrize("number", [
    "4111111111111112", "4111 1111 1111 1112",  # Luhn-invalid
    luhn_complete("170000000012"),  # a Luhn-valid bare 13-digit run starting with 1: a millisecond timestamp
    "0000000000000000", "4111 1111-1111 1111",  # one repeated digit; mixed separators
    "41 1111 1111 1111 11", luhn_complete("12345678901"[:10]),  # first group not 4 digits; 11 digits
])
def test_not_a_card(number):
    assert spans(LuhnCardRecognizer(), "CREDIT_CARD", f"card {number} on file") == []


def test_card_numbers_stock_presidio_misses():
    for number in (VISA_19, MASTERCARD_2):
        assert spans(CreditCardRecognizer(), "CREDIT_CARD", f"card {number} on file") == []


# --------------------------------------------------------------------------------------------------------
# AnyCaseIbanRecognizer


@pytest.mark.parametrize(("text", "value", "start"), [
    ("Send the refund to DE89 3704 0044 0532 0130 00 please.", "DE89 3704 0044 0532 0130 00", 19),
    ("iban: gb82 west 1234 5698 7654 32 (lower case)", "gb82 west 1234 5698 7654 32", 6),
    ("iban GB82WEST12345698765432.", "GB82WEST12345698765432", 5),
])
def test_iban(text, value, start):
    assert spans(AnyCaseIbanRecognizer(), "IBAN_CODE", text) == [(value, start, start + len(value), 1.0)]


@pytest.mark.parametrize("text", ["iban GB83WEST12345698765432", "iban gb83 west 1234 5698 7654 32",
                                  "iban XX82WEST12345698765432"])  # bad checksums, unknown country
def test_not_an_iban(text):
    assert spans(AnyCaseIbanRecognizer(), "IBAN_CODE", text) == []


def test_lower_case_iban_is_missed_by_stock_presidio():
    assert spans(IbanRecognizer(), "IBAN_CODE", "iban: gb82 west 1234 5698 7654 32 (lower case)") == []


# --------------------------------------------------------------------------------------------------------
# PublicIpRecognizer (score 0.6, presidio's)


@pytest.mark.parametrize(("text", "value", "start"), [
    ("The server at 81.2.69.160 stopped answering.", "81.2.69.160", 14),
    ("Ring 2a00:1450:4001:82b::200e over IPv6.", "2a00:1450:4001:82b::200e", 5),
    ("dns 8.8.8.8, then", "8.8.8.8", 4),
])
def test_public_ip(text, value, start):
    assert spans(PublicIpRecognizer(), "IP_ADDRESS", text) == [(value, start, start + len(value), 0.6)]


@pytest.mark.parametrize("text", [
    "v1.2.3.4.5.6", "version 8.8.8.8.1",  # four numbers inside a longer dotted run
    "run it on 127.0.0.1:8080 or 192.168.0.1 or 10.0.0.1",  # loopback, private
    "see 2001:db8::1 and fe80::1",  # documentation, link-local
])
def test_not_a_public_ip(text):
    assert spans(PublicIpRecognizer(), "IP_ADDRESS", text) == []


def test_ip_cases_where_stock_presidio_differs():
    stock = IpRecognizer()
    assert spans(stock, "IP_ADDRESS", "v1.2.3.4.5.6") == [("2.3.4.5", 3, 10, 0.6)]
    assert [value for value, *_ in spans(stock, "IP_ADDRESS", "on 127.0.0.1 or 10.0.0.1")] == ["127.0.0.1", "10.0.0.1"]
