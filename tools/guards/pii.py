"""PII detection with Presidio's analyzer, offline, and reversible redaction.

`PiiDetector` finds PII with Presidio's pattern recognizers (see `tools.guards._presidio`:
no language model, nothing downloaded). Loading spaCy and Presidio takes seconds, so the
analyzer is built on first use, in the thread that asks, once per worker.

`Redactor` replaces each PII value with a placeholder (`<EMAIL_ADDRESS_1>`) in what goes to
an external model, and puts the values back in the answer, so the user sees their own data
and the provider never does.
"""

import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from keel.errors import KeelUserError
from keel.schemas.guards import PII_ENTITIES, GuardSettings

__all__ = ["PiiDetector", "PiiHit", "Redactor"]


@dataclass(frozen=True)
class PiiHit:
    """One PII value in a text."""

    entity: str
    start: int
    end: int
    score: float


class PiiDetector:
    """Finds PII in text with Presidio's pattern recognizers; built once per worker."""

    def __init__(self, entities: Iterable[str], min_score: float) -> None:
        self.entities = list(entities)
        unknown = [e for e in self.entities if e not in PII_ENTITIES]
        if unknown:
            raise KeelUserError(
                f"guards.pii_entities: unknown entity {unknown[0]!r}; "
                f"known: {', '.join(PII_ENTITIES)}"
            )
        self._min_score = min_score
        self._analyzer: Any = None
        self._loading = threading.Lock()

    @classmethod
    def from_settings(cls, settings: GuardSettings) -> "PiiDetector | None":
        """The detector `settings` ask for, or None when PII is neither screened nor redacted."""
        if not (settings.pii or settings.redact_external):
            return None
        return cls(settings.pii_entities, settings.pii_min_score)

    def find(self, text: str) -> list[PiiHit]:
        """Every PII value in `text`, in order, overlaps resolved to the stronger hit."""
        results: list[Any] = self._loaded().analyze(
            text=text, language="en", entities=self.entities, score_threshold=self._min_score
        )
        hits: list[PiiHit] = []
        for r in sorted(results, key=lambda r: (-r.score, r.start)):
            if r.entity_type == "PHONE_NUMBER" and _DOTTED_QUAD.fullmatch(text[r.start : r.end]):
                continue  # an IPv4 address (a URL's host) read as a phone number
            if all(r.end <= h.start or r.start >= h.end for h in hits):
                hits.append(PiiHit(r.entity_type, r.start, r.end, r.score))
        return sorted(hits, key=lambda h: h.start)

    def _loaded(self) -> Any:
        with self._loading:
            if self._analyzer is None:
                from tools.guards._presidio import build_analyzer  # noqa: PLC0415  (slow)

                self._analyzer = build_analyzer(self.entities)
        return self._analyzer


_PLACEHOLDER = re.compile(r"<([A-Z_]+_\d+)>")
_DOTTED_QUAD = re.compile(r"\d{1,3}(\.\d{1,3}){3}")


@dataclass
class Redactor:
    """Replaces PII with placeholders across the texts of one model call, reversibly."""

    detector: PiiDetector
    values: dict[str, str] = field(default_factory=dict)
    """Placeholder name (`EMAIL_ADDRESS_1`) → the value it stands for."""

    def redact(self, text: str) -> str:
        """`text` with each PII value replaced; the same value always gets the same name."""
        out, last = [], 0
        for hit in self.detector.find(text):
            value = text[hit.start : hit.end]
            name = next((n for n, v in self.values.items() if v == value), None)
            if name is None:
                count = sum(n.rsplit("_", 1)[0] == hit.entity for n in self.values) + 1
                name = f"{hit.entity}_{count}"
                self.values[name] = value
            out += [text[last : hit.start], f"<{name}>"]
            last = hit.end
        return "".join([*out, text[last:]])

    def restore(self, text: str) -> str:
        """`text` with every known placeholder replaced by its value again."""
        return _PLACEHOLDER.sub(lambda m: self.values.get(m.group(1), m.group(0)), text)
