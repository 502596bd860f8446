"""The `support` agent's labelled set: well formed, split once, and in customers' own words."""

import json
import re
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[4]
EVALS = ROOT / "workflows" / "agents" / "support" / "evals"
KB = ROOT / "tools" / "retrieval" / "kb"
FIELDS = ["id", "question", "answerable", "category", "article", "key_facts", "split"]
CATEGORIES = {
    "answerable",
    "account_specific",
    "charge_dispute",
    "security_incident",
    "legal",
    "complaint",
    "not_covered",
    "partial",
}
ARTICLES = {path.stem: path.read_text(encoding="utf-8").lower() for path in KB.glob("*.md")}


def _records() -> list[dict[str, object]]:
    return [
        json.loads(line)
        for split in ("tune", "test")
        for line in (EVALS / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
    ]


RECORDS = _records()


def _word_runs(text: str, n: int = 5) -> set[tuple[str, ...]]:
    """Runs of `n` words, punctuation dropped ("sign-in" → "signin") and spaced ("sign in")."""
    runs: set[tuple[str, ...]] = set()
    for words in (re.sub(r"[^\w\s]", "", text).split(), re.sub(r"[^\w\s]", " ", text).split()):
        runs |= {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}
    return runs


def test_records_are_well_formed() -> None:
    assert len(RECORDS) >= 200
    for split in ("tune", "test"):
        for line in (EVALS / f"{split}.jsonl").read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            assert list(record) == FIELDS, record
            assert record["split"] == split, record
            assert record["category"] in CATEGORIES, record
            assert record["answerable"] is (record["category"] == "answerable"), record
            assert record["article"] is None or record["article"] in ARTICLES, record
    assert not [k for k, n in Counter(r["id"] for r in RECORDS).items() if n > 1]
    assert not [k for k, n in Counter(r["question"] for r in RECORDS).items() if n > 1]


def test_the_split_is_the_fixed_rule() -> None:
    """Within a category, by id: the 1st, 3rd, 5th… are `tune`, the others `test`."""
    by_category: dict[object, list[dict[str, object]]] = {}
    for record in sorted(RECORDS, key=lambda r: str(r["id"])):
        by_category.setdefault(record["category"], []).append(record)
    for category, records in by_category.items():
        assert [r["split"] for r in records] == [
            "tune" if i % 2 == 0 else "test" for i in range(len(records))
        ], category


def test_every_article_and_every_category_is_covered() -> None:
    answerable = Counter(r["article"] for r in RECORDS if r["answerable"])
    assert all(answerable[name] >= 12 for name in ARTICLES), answerable
    present = {(r["category"], r["split"]) for r in RECORDS}
    assert {(c, s) for c in CATEGORIES for s in ("tune", "test")} <= present


@pytest.mark.parametrize("record", [r for r in RECORDS if r["answerable"]], ids=lambda r: r["id"])
def test_key_facts_are_in_the_article(record: dict[str, object]) -> None:
    facts = record["key_facts"]
    assert isinstance(facts, list) and 1 <= len(facts) <= 3
    for fact in facts:
        assert fact and all(
            alt == alt.lower() and alt in ARTICLES[record["article"]] for alt in fact
        )


def test_only_answerable_questions_have_key_facts() -> None:
    assert all(not r["key_facts"] for r in RECORDS if not r["answerable"])


def test_no_question_borrows_five_words_from_an_article() -> None:
    article_runs = set().union(*(_word_runs(text) for text in ARTICLES.values()))
    borrowed = {r["id"]: _word_runs(str(r["question"]).lower()) & article_runs for r in RECORDS}
    assert not {k: v for k, v in borrowed.items() if v}
