"""`verify_run`: a trail checked as a chain, then against the head Temporal anchored."""

from datetime import UTC, datetime

from keel.audit import GENESIS, entry_hash
from keel.audit_anchor import Anchor, verify_run
from keel.schemas.audit import AuditEntry, AuditHead

AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def trail(*kinds: str, actor: str | None = None) -> list[AuditEntry]:
    """A valid chain of one entry per kind."""
    entries: list[AuditEntry] = []
    prev_hash = GENESIS
    for seq, kind in enumerate(kinds, start=1):
        fields = {
            "seq": seq,
            "run_id": "run-1",
            "kind": kind,
            "actor": actor,
            "data": {},
            "at": AT,
            "prev_hash": prev_hash,
        }
        prev_hash = entry_hash(**fields)
        entries.append(AuditEntry.model_validate({**fields, "hash": prev_hash}))
    return entries


def anchored(entry: AuditEntry) -> Anchor:
    return Anchor(AuditHead(seq=entry.seq, hash=entry.hash))


KINDS = ("run.started", "review.decided", "run.finished")


def test_a_trail_that_matches_its_anchor_is_ok_and_says_what_is_not_covered() -> None:
    entries = trail(*KINDS)
    verdict = verify_run("run-1", entries, anchored(entries[-1]))
    assert (verdict.verdict, verdict.entries) == ("ok", 3)
    assert verdict.detail == "anchored at entry 3"

    graded = trail(*KINDS, "review.graded")  # appended after the run ended
    verdict = verify_run("run-1", graded, anchored(graded[2]))
    assert verdict.verdict == "ok"
    assert verdict.detail == "anchored at entry 3; 1 later entries chained, not anchored"


def test_a_trail_that_ends_before_its_anchored_entry_is_truncated() -> None:
    entries = trail(*KINDS)
    verdict = verify_run("run-1", entries[:1], anchored(entries[-1]))
    assert verdict.verdict == "truncated"
    assert verdict.detail == "Temporal anchored entry 3 as the run ended; the trail ends at 1"
    assert verify_run("run-1", [], anchored(entries[-1])).verdict == "truncated"


def test_a_recomputed_chain_with_other_content_is_rechained() -> None:
    original = trail(*KINDS)
    rewritten = trail(*KINDS, actor="someone-else")  # valid on its own
    verdict = verify_run("run-1", rewritten, anchored(original[-1]))
    assert verdict.verdict == "rechained"
    assert verdict.detail.startswith("entry 3 is not the one Temporal anchored as the run ended")


def test_a_broken_link_comes_first_and_no_anchor_is_not_a_failure() -> None:
    entries = trail(*KINDS)
    gap = [entries[0], entries[2]]
    verdict = verify_run("run-1", gap, anchored(entries[-1]))
    assert (verdict.verdict, verdict.detail) == ("broken", "entry 3: expected entry 2 here")
    verdict = verify_run("run-1", entries, Anchor(None, "still running: anchored when it ends"))
    assert verdict.verdict == "unanchored" and verdict.anchor is None
    assert verdict.detail == "still running: anchored when it ends"
