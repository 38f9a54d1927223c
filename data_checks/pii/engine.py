"""presidio's `AnalyzerEngine` and our recognizers, built once per process on first use.

presidio imports take seconds, so nothing here imports it until `presidio()` is first called; the engine
runs behind presidio's no-op NLP engine (no spaCy model, no network).
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Optional

from data_checks.pii.config import LANGUAGE
from data_checks.pii.loading import without_ml_frameworks


def _quiet_presidio() -> None:
    """presidio logs its device and one INFO line per recognizer it loads ("Loaded recognizer: ...", 11 lines under
    an INFO root logger, as training's): nothing a user acts on. Its warnings still show."""
    logger = logging.getLogger("presidio-analyzer")
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.WARNING)


class Presidio:
    """The recognizers by entity type, the engine holding exactly them, and what a direct recognizer call needs."""

    def __init__(self) -> None:
        _quiet_presidio()
        from data_checks.pii.recognizers import build_recognizers  # imports presidio (or says how to install it)

        with without_ml_frameworks():
            from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
            from presidio_analyzer.entity_recognizer import EntityRecognizer
            from presidio_analyzer.nlp_engine import NoOpNlpEngine

        self.recognizers = build_recognizers()
        nlp_engine = NoOpNlpEngine(models=[{"lang_code": LANGUAGE, "model_name": "no_op"}])
        nlp_engine.load()
        registry = RecognizerRegistry(supported_languages=[LANGUAGE])
        for recognizer in self.recognizers.values():
            registry.add_recognizer(recognizer)
        self.engine = AnalyzerEngine(registry=registry, nlp_engine=nlp_engine, supported_languages=[LANGUAGE])
        self.artifacts = nlp_engine.process_text("", LANGUAGE)  # the (empty) artifacts every text gets
        self.remove_duplicates = EntityRecognizer.remove_duplicates


_PRESIDIO: Optional[Presidio] = None
_LOCK = threading.Lock()


def presidio() -> Presidio:
    """The process's `Presidio`, built on the first call."""
    global _PRESIDIO
    with _LOCK:
        if _PRESIDIO is None:
            _PRESIDIO = Presidio()
        return _PRESIDIO


def analyzer_engine() -> Any:
    """presidio's `AnalyzerEngine` (no-op NLP engine) holding exactly the recognizers this gate uses."""
    return presidio().engine
