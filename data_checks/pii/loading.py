"""Importing presidio: on first use only, and as if torch and transformers were absent."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

INSTALL_HINT = "install it with: pip install presidio-analyzer"


@contextlib.contextmanager
def without_ml_frameworks() -> Iterator[None]:
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


def missing_presidio(exc: ImportError) -> ImportError:
    """The error to raise when presidio (or tldextract) cannot be imported."""
    return ImportError(f"the PII gate needs presidio-analyzer ({exc}); {INSTALL_HINT}")
