"""The phone and card patterns and validators of our own recognizers: plain `re` and arithmetic, no presidio.

Why each rule exists (measured on presidio-research's synthetic set, `../shared/datasets/presidio_synth_pii`)
is in the docstring of the recognizer that uses it (`recognizers.py`).
"""

from __future__ import annotations

import re

# Two space-separated numbers next to a street ("370 3911 Fourth Avenue", "Apt. 675 62314") are a
# house number and a flat or building number, not a phone.
STREET_WORDS = ("street|st|avenue|ave|road|rd|drive|dr|lane|ln|close|place|pl|court|ct|way|boulevard|blvd|square|"
                "sq|terrace|crescent|rue|highway|hwy|parkway|suite|apt")
# 7-15 digits in groups: separators space - . / and parenthesised area codes, an optional + prefix and an
# x/ext extension; never inside a longer word, number or dotted run. An opening parenthesis belongs to the
# number only when it closes within the next few digits ("(555) 123"), not in "(1-800-273-8255)".
PHONE_PATTERN = (r"(?<![\w@+\-./])(?<!apt\. )(?<!apt )(?<!suite )"
                 rf"(?!\d+ \d+ (?:[^\W\d_][\w.'-]* ){{0,3}}(?:{STREET_WORDS})\b)"
                 r"(?:\+ ?)?(?:\((?=[\d ]{1,6}\)))?\d(?:[ \-./()]{0,3}\d){6,}"
                 r"(?: ?(?:x|ext\.?|extension) ?\d{1,6})?(?![\w@]|[\-./]\d)")
# 12-19 digits, plain or with space or dash separators.
CARD_PATTERN = r"(?<![\w+\-./])(?:\d[ -]?){11,18}\d(?![\w@]|[\-./]\d)"

# Addresses written to fool harvesters: "<eprice at tjhsst.edu>" (in angle brackets, as in source headers),
# "jo (at) example (dot) org", "jo [at] example.org". A bare "x at y.org" is English ("the team project at
# salsa.debian.org"), so the plain form needs the brackets.
OBFUSCATED_EMAIL_PATTERN = (r"(?<=<)[a-z0-9][\w.+-]*\s+at\s+[a-z0-9][\w-]*(?:\.[\w-]+)+(?=>)|"
                            r"\b[a-z0-9][\w.+-]*\s*[(\[{]at[)\]}]\s*[a-z0-9][\w-]*"
                            r"(?:\s*(?:[(\[{]dot[)\]}]|\.)\s*[a-z0-9][\w-]*)+")
_AT = re.compile(r"\s*[(\[{]at[)\]}]\s*|\s+at\s+", re.IGNORECASE)
_DOT = re.compile(r"\s*[(\[{]dot[)\]}]\s*", re.IGNORECASE)
_PHONE_EXTENSION = re.compile(r" ?(?:x|ext\.?|extension) ?\d{1,6}$", re.IGNORECASE)
_IPV4_SHAPE = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
_DATE_YMD = re.compile(r"(\d{4})([-./])(\d{1,2})\2(\d{1,2})(?:$| )")
_DATE_DMY = re.compile(r"(\d{1,2})([-./])(\d{1,2})\2(\d{4}|\d{2})(?:$| )")
_ZIP_PLUS_4 = re.compile(r"\d{5}-\d{4}")


def normalise_email(text: str) -> str:
    """An obfuscated address written plainly ("eprice at tjhsst.edu" -> "eprice@tjhsst.edu"); a plain one unchanged."""
    if "@" in text:
        return text
    return _DOT.sub(".", _AT.sub("@", text, count=1))


def phone_is_invalid(text: str) -> bool:
    """True for a PHONE_PATTERN match that is not a phone number (see `GroupedPhoneRecognizer`)."""
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
    if len(digits) == 13 and digits[:3] in ("978", "979") and isbn13_ok(digits):
        return True
    return len(digits) == 10 and len(groups) == 4 and separators == {"-"} and isbn10_ok(digits)


def isbn13_ok(digits: str) -> bool:
    return sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(digits)) % 10 == 0


def isbn10_ok(digits: str) -> bool:
    return sum(int(d) * (10 - i) for i, d in enumerate(digits)) % 11 == 0


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, d in enumerate(reversed(digits)):
        n = int(d)
        if i % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def card_is_valid(text: str) -> bool:
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
    return luhn_ok(digits)
