"""What an edit may replace, and what an edited answer may cite."""

import pytest
from pydantic import ValidationError

from keel.review_edits import edit_problem
from keel.schemas.retrieval import Passage
from keel.schemas.reviews import Citation, ReviewDecision

PASSAGE = Passage(id="a#1", document_id="a", title="A", text="…", score=1.0)


def test_an_edited_answer_cites_only_passages_the_review_shows() -> None:
    fine = ReviewDecision(action="edit", answer="x", citations=["a#1"])
    assert edit_problem(None, False, fine, ["a#1", "b#2"]) is None
    stray = ReviewDecision(action="edit", answer="x", citations=["a#1", "z#9"])
    problem = edit_problem(None, False, stray, ["a#1"])
    assert problem is not None and problem.kind == "unknown_citation"
    assert problem.errors == [
        {"field": "citations.1", "message": "'z#9' is not a passage of this review"}
    ]


def test_chosen_citations_take_their_titles_from_the_evidence() -> None:
    evidence = [PASSAGE, Citation(passage_id="b#2", title="B")]
    chosen = ReviewDecision(action="edit", answer="x", citations=["b#2", "a#1"])
    assert chosen.cited(evidence) == [
        Citation(passage_id="b#2", title="B"),
        Citation(passage_id="a#1", title="A"),
    ]
    assert ReviewDecision(action="edit", answer="x").cited(evidence) is None
    assert ReviewDecision(action="edit", answer="x", citations=[]).cited(evidence) == []


@pytest.mark.parametrize(
    "decision",
    [
        {"action": "approve", "citations": ["a#1"]},
        {"action": "edit", "arguments": {"k": 1}, "citations": ["a#1"]},
    ],
)
def test_citations_go_only_with_an_edited_answer(decision: dict[str, object]) -> None:
    with pytest.raises(ValidationError, match="'citations' go with an edited 'answer'"):
        ReviewDecision.model_validate(decision)
