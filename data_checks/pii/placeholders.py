"""Known-fake values: reserved or documented example values of each PII type, reported as placeholders.

Documentation, tutorials and generated instruction data are full of `john@example.com`, `(123) 456-7890`
and the test card 4111 1111 1111 1111. They name no one, so by default they do not fail the gate
(`checks.pii.count_placeholders=true` counts them). Each list says where it comes from.
"""

from __future__ import annotations

import re
from typing import Optional

from data_checks.pii.patterns import normalise_email

# RFC 2606 and RFC 6761 reserve these for documentation and testing; the rest are placeholders people type.
_RESERVED_DOMAINS = re.compile(r"(?:^|\.)(?:example\.(?:com|net|org|edu)|example|test|invalid|localhost|"
                               r"local|localdomain)$", re.IGNORECASE)
_EXAMPLE_LIKE_DOMAIN = re.compile(r"^(?:[\w-]+\.)*(?:example|sample)\d*\.[a-z.]+$", re.IGNORECASE)  # example2.com
_PLACEHOLDER_DOMAINS = {"domain.com", "yourdomain.com", "yourcompany.com", "yoursite.com", "yourwebsite.com",
                        "company.com", "mycompany.com", "email.example", "somewhere.com", "foo.com", "bar.com",
                        "foobar.com"}
_PLACEHOLDER_LOCAL = re.compile(r"^(?:your|my)[._-]?(?:name|email|mail|address|username|user|id)?\b|"
                                r"^(?:username|user|name|firstname|lastname|first\.last|someone|somebody|"
                                r"nobody|noreply|no-reply|email|mail|test|you|me|example|xxx+|abc)$", re.IGNORECASE)
# NANP reserves 555-0100 to 555-0199 for fiction; the rest of the 555 exchange is unassigned (except
# directory assistance, 555-1212) and is what films and examples use; 555 is no area code either.
_FICTIONAL_NANP = re.compile(r"(?:^|\D)555\D{0,3}\d{4}$|^(?:\+?1\D{0,3})?\(?555\)?\D{0,3}\d{3}")
# Cards published as test numbers by Visa, Mastercard, Amex, Discover and the payment processors' docs.
_TEST_CARDS = {"4111111111111111", "4242424242424242", "4012888888881881", "4222222222222", "5555555555554444",
               "5105105105105100", "2223003122003222", "378282246310005", "371449635398431", "6011111111111117",
               "6011000990139424", "3530111333300000", "3566002020360505", "30569309025904", "38520000023237",
               "4000056655665556", "5200828282828210", "6200000000000005"}
# The IBANs of the ECBS and SWIFT examples (Wikipedia's too).
_EXAMPLE_IBANS = {"DE89370400440532013000", "GB82WEST12345698765432", "GB29NWBK60161331926819",
                  "GB33BUKB20201555555555", "FR1420041010050500013M02606", "NL91ABNA0417164300",
                  "CH9300762011623852957"}
# SSNs the Social Security Administration calls invalid for use: the 1938 Woolworth wallet card, the
# advertising block 987-65-4320..4329, and the ones everybody types.
_EXAMPLE_SSNS = re.compile(r"^(?:078051120|219099999|98765432\d|123456789|111111111|000000000)$")
# Public resolvers and the addresses tutorials use: services, not people.
_WELL_KNOWN_IPS = {"8.8.8.8", "8.8.4.4", "1.1.1.1", "1.0.0.1", "9.9.9.9", "149.112.112.112", "208.67.222.222",
                   "208.67.220.220", "4.2.2.2", "4.2.2.1", "123.45.67.89", "1.2.3.4", "12.34.56.78"}
_EXAMPLE_MACS = re.compile(r"^(?:00[:-]?00[:-]?00|52[:-]?54[:-]?00|01[:-]?23[:-]?45|aa[:-]?bb[:-]?cc|"
                           r"12[:-]?34[:-]?56)", re.IGNORECASE)


def _sequential(digits: str) -> bool:
    """1234567890 and friends (ascending or descending, wrapping at 9), or one digit repeated."""
    if len(set(digits)) == 1:
        return True
    steps = {(int(b) - int(a)) % 10 for a, b in zip(digits, digits[1:], strict=False)}
    return steps in ({1}, {9})


def placeholder_reason(entity: str, value: str) -> Optional[str]:
    """Why `value` (a finding of type `entity`) is a known-fake value, or None."""
    if entity == "EMAIL_ADDRESS":
        local, _, domain = normalise_email(value).rpartition("@")
        domain = domain.lower().rstrip(".")
        if _RESERVED_DOMAINS.search(domain):
            return "a reserved example domain"
        if domain in _PLACEHOLDER_DOMAINS:
            return "a placeholder domain"
        if _EXAMPLE_LIKE_DOMAIN.match(domain):
            return "an example domain"
        if _PLACEHOLDER_LOCAL.search(local):
            return "a placeholder name"
        if local.lower() == domain.split(".")[0]:  # "one@one.org", "two@two.org": a doctest's addresses
            return "a placeholder name"
        return None
    digits = re.sub(r"\D", "", value)
    if entity == "PHONE_NUMBER":
        national = digits[1:] if len(digits) == 11 and digits[0] == "1" else digits
        if _FICTIONAL_NANP.search(re.sub(r"\s?(?:x|ext\.?|extension)\s?\d+$", "", value, flags=re.I)):
            return "a fictional 555 number"
        if _sequential(national[:9]) or national.startswith("1234567"):
            return "a sequence of digits"
        return None
    if entity == "CREDIT_CARD":
        return "a published test card" if digits in _TEST_CARDS or _sequential(digits[:12]) else None
    if entity == "IBAN_CODE":
        return "a published example IBAN" if re.sub(r"[\s-]", "", value).upper() in _EXAMPLE_IBANS else None
    if entity == "US_SSN":
        return "an SSN the SSA reserves or voids" if _EXAMPLE_SSNS.match(digits) else None
    if entity == "IP_ADDRESS":
        return "a well-known or example address" if value in _WELL_KNOWN_IPS else None
    if entity == "MAC_ADDRESS":
        return "an example or virtual-machine MAC" if _EXAMPLE_MACS.match(value) else None
    return None
