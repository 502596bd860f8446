"""Presidio's analyzer, offline: pattern recognizers on a blank spaCy pipeline.

Presidio normally loads a spaCy language model for named-entity recognition; Keel uses
only its pattern recognizers (e-mail, phone, credit card, IBAN, …), which need no model, on
a blank spaCy pipeline that only tokenizes (for the recognizers' context words). Nothing is
downloaded: e-mail validation reads tldextract's bundled public-suffix snapshot. Importing
this module is slow (spaCy, Presidio), so `tools.guards.pii` imports it on first use.

Presidio finds addresses only with a language model (`LOCATION`), so Keel adds its own
patterns: `POSTAL_ADDRESS` is a house number, a capitalised street name and a street type
("221B Baker Street", "12 Main St"), a UK postcode, or a US state and ZIP code. Phone
numbers are Presidio's (the `phonenumbers` library's national formats of a few regions)
and any number written in international form (`+` and 9 to 15 digits), whatever its
country or whether its range is allocated ("+44 7700 900123").

spaCy and Presidio load without PyTorch and Transformers even where the
``keel[embeddings]`` extra installed them: neither is used here, and PyTorch alone would
take hundreds of MB in every worker (see `tools.heavy_imports`).
"""

import logging
import re
from collections.abc import Callable, Iterable

from tools.heavy_imports import heavy_imports

# Presidio logs every recognizer it loads, and the device it found while it is imported, at
# INFO: one screenful on a worker's first check.
logging.getLogger("presidio-analyzer").setLevel(logging.WARNING)

with heavy_imports(without=("torch", "transformers")):
    import spacy
    import tldextract
    from presidio_analyzer import (
        AnalyzerEngine,
        EntityRecognizer,
        Pattern,
        PatternRecognizer,
        RecognizerRegistry,
    )
    from presidio_analyzer.nlp_engine import SpacyNlpEngine
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        CryptoRecognizer,
        EmailRecognizer,
        IbanRecognizer,
        IpRecognizer,
        PhoneRecognizer,
        UkPostcodeRecognizer,
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


_STREET_TYPES = (
    "street|st|road|rd|avenue|ave|lane|ln|boulevard|blvd|drive|dr|court|ct|place|pl|way|"
    "terrace|close|crescent|square|sq|highway|hwy|parkway|pkwy|gardens|grove|mews|row"
)
_US_STATES = (
    "AL|AK|AZ|AR|CA|CO|CT|DE|DC|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|"
    "NH|NJ|NM|NY|NC|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY"
)


class _PostalAddressRecognizer(PatternRecognizer):
    """Street addresses, UK postcodes and US state + ZIP codes, by pattern."""

    def __init__(self) -> None:
        super().__init__(
            supported_entity="POSTAL_ADDRESS",
            patterns=[
                # A house number, one to four capitalised words ("Google Drive" is a
                # product, not a street), then a street type in any case.
                Pattern(
                    "street",
                    rf"\b\d{{1,5}}[A-Za-z]?,?\s+(?:(?!(?:Google|Shared|One)\b)[A-Z][\w'.-]*\s+)"
                    rf"{{1,4}}(?i:{_STREET_TYPES})\b\.?",
                    0.6,
                ),
                Pattern(
                    "uk postcode",
                    f"(?i:{UkPostcodeRecognizer.PATTERNS[0].regex})",
                    0.5,
                ),
                Pattern("us state and zip", rf"\b(?:{_US_STATES})\s+\d{{5}}(?:-\d{{4}})?\b", 0.5),
            ],
            # Case matters (a street name is capitalised): no IGNORECASE, unlike Presidio's
            # default; the patterns ignore case where they mean to.
            global_regex_flags=re.MULTILINE,
        )


class _InternationalPhoneRecognizer(PatternRecognizer):
    """Phone numbers in international form, whatever their country."""

    def __init__(self) -> None:
        super().__init__(
            supported_entity="PHONE_NUMBER",
            patterns=[
                Pattern(
                    "international",
                    r"(?<![\w+])\+\d{1,3}(?:[ .-]?(?:\(\d{1,5}\)|\d{1,5})){2,6}(?![\w-])",
                    0.5,
                )
            ],
        )

    def validate_result(self, pattern_text: str) -> bool | None:
        # None keeps the pattern's score (True would raise it to certainty); False drops it.
        return None if 9 <= sum(c.isdigit() for c in pattern_text) <= 15 else False


_RECOGNIZERS: dict[str, tuple[Callable[[], EntityRecognizer], ...]] = {
    "EMAIL_ADDRESS": (_OfflineEmailRecognizer,),
    "PHONE_NUMBER": (PhoneRecognizer, _InternationalPhoneRecognizer),
    "CREDIT_CARD": (CreditCardRecognizer,),
    # presidio annotates IbanRecognizer's optional lists without `None`, defaulting to None.
    "IBAN_CODE": (IbanRecognizer,),  # pyright: ignore[reportAssignmentType]
    "US_SSN": (UsSsnRecognizer,),
    "IP_ADDRESS": (IpRecognizer,),
    "CRYPTO": (CryptoRecognizer,),
    "POSTAL_ADDRESS": (_PostalAddressRecognizer,),
}


def build_analyzer(entities: Iterable[str]) -> AnalyzerEngine:
    """An analyzer with the pattern recognizers of `entities` and no language model."""
    registry = RecognizerRegistry(supported_languages=["en"])
    for entity in entities:
        for recognizer in _RECOGNIZERS[entity]:
            registry.add_recognizer(recognizer())
    engine = _BlankSpacyEngine(models=[{"lang_code": "en", "model_name": "blank"}])
    return AnalyzerEngine(registry=registry, nlp_engine=engine, supported_languages=["en"])
