"""Policy terms: configured words or phrases that send a run to a person."""

import re
from collections.abc import Iterable

__all__ = ["PolicyTerms"]


class PolicyTerms:
    """Finds whole-word, case-insensitive occurrences of the configured terms."""

    def __init__(self, terms: Iterable[str]) -> None:
        self.terms = [t.strip() for t in terms if t.strip()]
        alternatives = "|".join(re.escape(t) for t in sorted(self.terms, key=len, reverse=True))
        self._pattern = (
            re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.I) if self.terms else None
        )

    def find(self, text: str) -> list[tuple[str, int, int]]:
        """(term as configured, start, end) of every occurrence in `text`."""
        if self._pattern is None:
            return []
        by_lower = {t.lower(): t for t in self.terms}
        return [
            (by_lower.get(m.group(0).lower(), m.group(0)), m.start(), m.end())
            for m in self._pattern.finditer(text)
        ]
