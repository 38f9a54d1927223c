"""The prefilter: a cheap regex per recognizer that every match of that recognizer contains.

A text that matches no enabled trigger is PII-free by construction, and a text that matches runs only the
recognizers whose trigger matched. Each trigger is its recognizer's pattern with boundaries, repetitions
beyond the minimum and validators dropped; they are compiled case-insensitively, as presidio compiles its
patterns, and use \\d where presidio has [0-9] (a superset). Every trigger starts with a fixed character set
('@', a digit, ':', '-', '.') so `re` scans for that character instead of trying each position; the
character before it is checked with a look-behind. tests/data_checks/test_pii.py checks soundness against presidio.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

TRIGGERS: dict[str, tuple[str, ...]] = {
    # ...[@]\w+...; OBFUSCATED_EMAIL_PATTERN: "<x at y.z>", "x (at) y", "x [at] y", "x {at} y"
    "EMAIL_ADDRESS": (r"@\w", r"[(\[{]at[)\]}]", r"\sat\s[\w-]+(?:\.[\w-]+)+>"),
    "PHONE_NUMBER": (r"\d(?:[ \-./()]{0,3}\d){6}",),  # PHONE_PATTERN: 7+ digits, <= 3 separators apart
    # SSN1-5: \d{5}-\d{4}, \d{3}-\d{6}, \d{3}-\d{2}-\d{4}, \d{9}, \d{3}[- .]\d{2}[- .]\d{4}
    "US_SSN": (r"\d{3}[- .]?\d{2}[- .]?\d{4}",),
    "CREDIT_CARD": (r"\d(?:[ -]?\d){11}",),  # CARD_PATTERN: (?:\d[ -]?){11,18}\d
    # [A-Z]{2}[0-9]{2}(?:[ -]?[A-Z0-9]{4}){2,6}
    "IBAN_CODE": (r"\d\d(?<=[a-z]{2}\d\d)[ -]?[a-z0-9]{4}[ -]?[a-z0-9]{4}",),
    # IPv4 (also inside the IPv4-mapped and -embedded forms); every IPv6 form has "::" or 8 full groups
    "IP_ADDRESS": (r"\d\.\d{1,3}\.\d{1,3}\.\d", r":(?::|(?<=[0-9a-f]:)[0-9a-f]{1,4}:)"),
    # [0-9A-F]{2}([:-])(?:[0-9A-F]{2}\1){4}[0-9A-F]{2}, [0-9A-F]{4}\.[0-9A-F]{4}\.[0-9A-F]{4}
    "MAC_ADDRESS": (r"[:-](?<=[0-9a-f]{2}[:-])[0-9a-f]{2}[:-]", r"\.(?<=[0-9a-f]{4}\.)[0-9a-f]{4}\."),
    "CRYPTO": (r"[13][a-z0-9]{25}",),  # (bc1|[13])[a-zA-HJ-NP-Z0-9]{25,59}
    "URL": (r"\.[a-z]{2}",),  # [a-z0-9.\-]{1,253}[.](?:com|...|ac|ad|...)
}


class Prefilter:
    """The triggers of `entities`, each compiled once, with the entities it gates."""

    def __init__(self, entities: Sequence[str]) -> None:
        gated: dict[str, list[str]] = {}
        for entity in entities:
            for trigger in TRIGGERS[entity]:
                gated.setdefault(trigger, []).append(entity)
        self.triggers = [(re.compile(t, re.IGNORECASE), tuple(group)) for t, group in gated.items()]

    def might_have_pii(self, text: str) -> bool:
        """False only for a text no enabled recognizer can match."""
        return any(trigger.search(text) for trigger, _ in self.triggers)

    def entities_to_run(self, text: str) -> list[str]:
        """The entity types whose trigger matches `text`, in trigger order, each once."""
        todo: list[str] = []
        for trigger, group in self.triggers:
            if trigger.search(text):
                todo.extend(e for e in group if e not in todo)
        return todo
