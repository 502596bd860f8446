"""The reference figures of the collections' README, read from its Markdown table."""

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Reference", "read_references"]

_METHODS = {"bm25": "bm25", "dense": "dense", "hybrid": "hybrid"}


@dataclass(frozen=True)
class Reference:
    """One reference row: a method's figures on a collection."""

    collection: str
    method: str
    label: str
    ndcg: float
    recall: float
    mrr: float
    p50: str


def read_references(readme: Path) -> dict[tuple[str, str], Reference]:
    """The rows of the ``## Reference figures`` table, by (collection, method).

    A method is the first word of the README's method cell, lowercased (`bm25`, `dense`,
    `hybrid`); the whole cell is kept as its label. Empty when the README has no such table.
    """
    if not readme.is_file():
        return {}
    text = readme.read_text(encoding="utf-8")
    _, _, section = text.partition("## Reference figures")
    found: dict[tuple[str, str], Reference] = {}
    for line in section.splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if len(cells) != 6 or not re.fullmatch(r"[\d.]+", cells[2]):
            continue
        collection, label, ndcg, recall, mrr, p50 = cells
        method = _METHODS.get(label.split()[0].lower())
        if method is not None:
            found[collection, method] = Reference(
                collection, method, label, float(ndcg), float(recall), float(mrr), p50
            )
    return found
