"""The PII gate's pure-Python parts, without presidio: the phone and card validators and the prefilter."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from data_checks.pii.patterns import CARD_PATTERN, PHONE_PATTERN, card_is_valid, luhn_ok, phone_is_invalid
from data_checks.pii.prefilter import TRIGGERS, Prefilter
from tests.conftest import ROOT


@pytest.mark.parametrize(("text", "invalid"), [
    ("+44 20 7946 0958", False), ("(555) 123-4567", False), ("555-1234", False), ("0770 090 0123", False),
    ("07700900123", False), ("+15551234567", False), ("212-555-0100 ext. 23", False),
    ("1700000000", True),  # bare 10 digits starting with 1: a Unix timestamp
    ("123456789", True),  # a bare run of 9 digits
    ("+1234567", True),  # + and under 8 digits
    ("86.121.97.248", True), ("12345-6789", True), ("5533 119", True), ("1.2.3.4.5", True),
    ("3.14159265", True), ("1234-1240", True), ("1990 2005", True), ("2021-03-04", True), ("12/08/2019", True),
    ("978-3-16-148410-0", True), ("0-306-40615-2", True), ("(555 123-4567", True), ("123456", True),
])
def test_phone_validator(text, invalid):
    assert phone_is_invalid(text) is invalid


@pytest.mark.parametrize(("text", "valid"), [
    ("4111111111111111", True), ("4111 1111 1111 1111", True), ("3782 822463 10005", True),
    ("4111111111111112", False), ("0000000000000000", False), ("1700000000123", False),
    ("4111 1111-1111 1111", False), ("41 1111 1111 1111 11", False), ("41111111111", False),
])
def test_card_validator(text, valid):
    assert card_is_valid(text) is valid


def test_luhn():
    assert luhn_ok("79927398713") and not luhn_ok("79927398710")


def test_patterns_compile_and_stay_inside_words():
    assert re.search(PHONE_PATTERN, "x555-1234", re.IGNORECASE) is None
    assert re.search(CARD_PATTERN, "id4111111111111111", re.IGNORECASE) is None


def test_prefilter_runs_only_the_recognizers_whose_trigger_matches():
    prefilter = Prefilter(list(TRIGGERS))
    assert prefilter.entities_to_run("What are my options?") == []
    assert not prefilter.might_have_pii("What are my options?")
    assert prefilter.entities_to_run("mail a@b.org") == ["EMAIL_ADDRESS", "URL"]
    assert prefilter.entities_to_run("call 555-123-4567") == ["PHONE_NUMBER"]
    # "36-22-" has the shape of a MAC address group: the trigger is a necessary condition, not a detection
    assert prefilter.entities_to_run("ssn 536-22-8475") == ["PHONE_NUMBER", "US_SSN", "MAC_ADDRESS"]
    assert Prefilter(["EMAIL_ADDRESS"]).entities_to_run("call 555-123-4567 or see x.org") == []


def test_these_modules_need_no_presidio():
    code = ("import sys, data_checks.pii.patterns, data_checks.pii.prefilter, data_checks.pii.config; "
            "assert 'presidio_analyzer' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120)
