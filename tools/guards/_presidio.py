"""Presidio's analyzer, offline: pattern recognizers on a blank spaCy pipeline.

Presidio normally loads a spaCy language model for named-entity recognition; Keel uses
only its pattern recognizers (e-mail, phone, credit card, IBAN, …), which need no model, on
a blank spaCy pipeline that only tokenizes (for the recognizers' context words). Nothing is
downloaded: e-mail validation reads tldextract's bundled public-suffix snapshot. Importing
this module is slow (spaCy, Presidio), so `tools.guards.pii` imports it on first use.

spaCy and Presidio load without PyTorch and Transformers even where the
``keel[embeddings]`` extra installed them: neither is used here, and PyTorch alone would
take hundreds of MB in every worker (see `tools.heavy_imports`).
"""

import logging
from collections.abc import Callable, Iterable

from tools.heavy_imports import heavy_imports

# Presidio logs every recognizer it loads, and the device it found while it is imported, at
# INFO: one screenful on a worker's first check.
logging.getLogger("presidio-analyzer").setLevel(logging.WARNING)

with heavy_imports(without=("torch", "transformers")):
    import spacy
    import tldextract
    from presidio_analyzer import AnalyzerEngine, EntityRecognizer, RecognizerRegistry
    from presidio_analyzer.nlp_engine import SpacyNlpEngine
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        CryptoRecognizer,
        EmailRecognizer,
        IbanRecognizer,
        IpRecognizer,
        PhoneRecognizer,
        UsSsnRecognizer,
    )

__all__ = ["build_analyzer"]

_OFFLINE_SUFFIXES = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


class _OfflineEmailRecognizer(EmailRecognizer):
    """Presidio's e-mail recognizer, validating domains on the bundled suffix list."""

    def validate_result(self, pattern_text: str) -> bool:
        return _OFFLINE_SUFFIXES(pattern_text).fqdn != ""


class _BlankSpacyEngine(SpacyNlpEngine):
    """A spaCy engine on a blank English pipeline: tokens, no model to download."""

    def load(self) -> None:
        self.nlp = {"en": spacy.blank("en")}


_RECOGNIZERS: dict[str, Callable[[], EntityRecognizer]] = {
    "EMAIL_ADDRESS": _OfflineEmailRecognizer,
    "PHONE_NUMBER": PhoneRecognizer,
    "CREDIT_CARD": CreditCardRecognizer,
    # presidio annotates IbanRecognizer's optional lists without `None`, defaulting to None.
    "IBAN_CODE": IbanRecognizer,  # pyright: ignore[reportAssignmentType]
    "US_SSN": UsSsnRecognizer,
    "IP_ADDRESS": IpRecognizer,
    "CRYPTO": CryptoRecognizer,
}


def build_analyzer(entities: Iterable[str]) -> AnalyzerEngine:
    """An analyzer with the pattern recognizers of `entities` and no language model."""
    registry = RecognizerRegistry(supported_languages=["en"])
    for entity in entities:
        registry.add_recognizer(_RECOGNIZERS[entity]())
    engine = _BlankSpacyEngine(models=[{"lang_code": "en", "model_name": "blank"}])
    return AnalyzerEngine(registry=registry, nlp_engine=engine, supported_languages=["en"])
