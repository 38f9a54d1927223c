"""The context rules on the shapes issue 13 names: each is recognised as what it is, and a phone number
written in one of those styles next to a phone word is still found. Placeholders are reported apart."""

from __future__ import annotations

import pytest

from data_checks.pii import SUPPORTED_ENTITIES, PiiGateConfig, pii_findings

ALL = PiiGateConfig(entities=list(SUPPORTED_ENTITIES))

NOT_PII = [  # (text, the rule that drops its match); each from the issue or the labelled set
    ("Google Chrome Version 41.0.2272.76 m", None),
    ("I upgraded to git 1.7.7.3 yesterday", "a version number"),
    ("As the JLS says in §15.12.2.7, inference", "a version or section number"),
    ("reverse it with a[1::-1] in Python", "a slice"),
    ("```\n122879   57344\n```", None),
    ("| 1024  3072  9216 |", "a column of numbers"),
    ("the difference is 7765 - 7791 = -26", "arithmetic"),
    ("about 500-1000 shots per session", "a range"),
    ("take 250-1000 mcg daily", "a range"),
    ("my pressure went from 120/80-120/70", "a fraction or a pair"),
    ("born 1982 02 16 in Leeds", "a date"),
    ('x = parse("123-654321")', "a quoted string"),
    ("SSN 078-05-1120 (the Woolworth card, voided)", "an SSN-shaped number"),
    ("```python\nid = '123-654321'\n```", "inside code"),
    ("see www.google.com/maps/place/Cupertino/@37.33,-122.03,14z", "part of a URL path"),
    ("Natalia sold 48/2 = <<48/2=24>>24 clips, 4000-3500=<<4000-3500=500>>500", "arithmetic"),
    ("IEEE standard 854-1987 and POSIX 1003.1-1988", "a section or standard number"),
    ("doi:10.2307/2347330 for the algorithm", "a DOI"),
    ("the string 10010110101 in binary", "a binary number"),
    ("bitness = {2147483647: '32bit'}", "a bare number in code"),
    ("the Liebherr LTM 11200-9.1 crane", "a version or model number"),
    ("Total = 0.19444444 gallons + 0.14583333 gallons", "arithmetic"),
    ("It costs $1281.15.20 in total", "an amount of money"),
    ("American carmakers produce 5 650 000 cars each year", "a number with spaces between thousands"),
    ("SKIL 5280-01 15-Amp saw", "part of a product name"),
    ("networks 200::/7 and 2001::/32", "a network"),
    ("Message-ID: <142480216486.20800.16526388040877946887@nightshade.la.mastaler.com>", "a message id"),
]


@pytest.mark.parametrize(("text", "rule"), NOT_PII)
def test_shapes_that_are_not_pii(text, rule):
    dropped: list = []
    from data_checks.pii.scanner import scanner

    found = scanner(ALL).findings(text, dropped)
    assert [f for f in found if f.type != "URL"] == [], [text[f.start:f.end] for f in found]
    if rule is not None:
        assert rule in {d.reason for d in dropped}, dropped


PHONES_IN_CONTEXT = [  # the same shapes, written as phone numbers next to a phone word: still found
    ("Call me on 555 867 5309 - any time", "555 867 5309"),
    ("phone: 0170 123 4567 (mobile)", "0170 123 4567"),
    ("tel. 2012 345 678", "2012 345 678"),
    ("```\nPhone: +44 20 7946 0958\n```", "+44 20 7946 0958"),
    ("Desk: 5403926876", "5403926876"),
    ("Mobile: +46 (0)8 928 571 38", "+46 (0)8 928 571 38"),
    ("call 650-636-4884 or visit us", "650-636-4884"),
]


@pytest.mark.parametrize(("text", "value"), PHONES_IN_CONTEXT)
def test_phones_next_to_a_phone_word_are_high_confidence(text, value):
    found = [(text[f.start:f.end], f.confidence) for f in pii_findings(text, ALL) if f.type == "PHONE_NUMBER"]
    assert found == [(value, "high")]


def test_confidence_levels_per_type():
    text = ("jo@shop.co.uk 4556737586899855 DE89 3704 0044 0532 0130 01 536-22-8475 81.2.69.160 "
            "reach 415 867 2309\nthen 212 867 5309, 00:1A:2B:3C:4D:5E")
    found = {(f.type, f.confidence) for f in pii_findings(text, ALL)}
    assert ("EMAIL_ADDRESS", "high") in found and ("CREDIT_CARD", "high") in found
    assert ("US_SSN", "high") in found and ("IP_ADDRESS", "low") in found and ("MAC_ADDRESS", "low") in found
    phones = sorted((text[f.start:f.end], f.confidence) for f in pii_findings(text, ALL) if f.type == "PHONE_NUMBER")
    assert phones == [("212 867 5309", "low"), ("415 867 2309", "high")]


PLACEHOLDERS = [
    ("mail john.doe@example.com", "EMAIL_ADDRESS", "a reserved example domain"),
    ("mail jane@example2.com", "EMAIL_ADDRESS", "an example domain"),
    ("mail your.name@university.edu", "EMAIL_ADDRESS", "a placeholder name"),
    ("write to admin@mail.example.org", "EMAIL_ADDRESS", "a reserved example domain"),
    ("Phone: (123) 456-7890", "PHONE_NUMBER", "a sequence of digits"),
    ("Phone: 555-0142", "PHONE_NUMBER", "a fictional 555 number"),
    ("Call (555) 123-4567", "PHONE_NUMBER", "a fictional 555 number"),
    ("card 4111 1111 1111 1111", "CREDIT_CARD", "a published test card"),
    ("IBAN GB82 WEST 1234 5698 7654 32", "IBAN_CODE", "a published example IBAN"),
    ("SSN 219-09-9999", "US_SSN", "an SSN the SSA reserves or voids"),
    ("dns 8.8.8.8 answers", "IP_ADDRESS", "a well-known or example address"),
]


@pytest.mark.parametrize(("text", "entity", "reason"), PLACEHOLDERS)
def test_known_fake_values_are_placeholders(text, entity, reason):
    found = [f for f in pii_findings(text, ALL) if f.type == entity]
    assert len(found) == 1 and found[0].placeholder == reason


def test_obfuscated_addresses_are_found_and_plain_english_is_not():
    text = ("Written by Eric Price <eprice at tjhsst.edu> and jo (at) example (dot) org; "
            "the team project at salsa.debian.org")
    found = [(text[f.start:f.end], f.placeholder) for f in pii_findings(text, ALL) if f.type == "EMAIL_ADDRESS"]
    assert found == [("eprice at tjhsst.edu", None), ("jo (at) example (dot) org", "a reserved example domain")]


def test_a_list_number_is_not_part_of_the_phone():
    text = "1. (789) 432-1089\n2. (234) 768-9012"
    assert [text[f.start:f.end] for f in pii_findings(text, ALL)] == ["(789) 432-1089", "(234) 768-9012"]


def test_an_email_span_starts_at_the_address():
    text = "EMAIL='ops@shop.co.uk'"
    assert [text[f.start:f.end] for f in pii_findings(text, ALL)] == ["ops@shop.co.uk"]
