"""`verify_run`: a trail checked as a chain, then against the head Temporal anchored and the
run's signed checkpoint."""

from datetime import UTC, datetime

from keel.audit import GENESIS, entry_hash
from keel.audit_anchor import Anchor, Checkpoint, verify_run
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


def checkpoint(entry: AuditEntry, signed: bool = True) -> Checkpoint:
    return Checkpoint(AuditHead(seq=entry.seq, hash=entry.hash), signed)


GONE = Anchor(None, "Temporal has no such run")


KINDS = ("run.started", "review.decided", "run.finished")


def test_a_trail_that_matches_its_records_is_ok_and_says_what_they_cover() -> None:
    entries = trail(*KINDS)
    verdict = verify_run("run-1", entries, anchored(entries[-1]), checkpoint(entries[-1]))
    assert (verdict.verdict, verdict.entries) == ("ok", 3)
    assert verdict.detail == "anchored at entry 3; checkpoint at entry 3"

    graded = trail(*KINDS, "review.graded")  # appended after the run ended
    verdict = verify_run("run-1", graded, anchored(graded[2]), checkpoint(graded[3]))
    assert verdict.verdict == "ok"
    assert verdict.detail == "anchored at entry 3; checkpoint at entry 4"
    verdict = verify_run("run-1", graded, anchored(graded[2]), None)
    assert verdict.detail == "anchored at entry 3; 1 later entries not covered"
    verdict = verify_run("run-1", graded, GONE, checkpoint(graded[3]))
    assert verdict.detail == "Temporal has no such run; checkpoint at entry 4"


def test_a_trail_that_ends_before_a_recorded_entry_is_truncated() -> None:
    entries = trail(*KINDS, "review.graded")
    verdict = verify_run("run-1", entries[:1], anchored(entries[2]), checkpoint(entries[3]))
    assert verdict.verdict == "truncated"
    assert verdict.detail == (
        "entry 3 is the one Temporal anchored as the run ended; the trail ends at 1"
    )
    # Only the entry appended after the run ended is gone: the checkpoint tells.
    verdict = verify_run("run-1", entries[:3], anchored(entries[2]), checkpoint(entries[3]))
    assert verdict.verdict == "truncated"
    assert verdict.detail == "entry 4 is the one the signed checkpoint holds; the trail ends at 3"
    assert verify_run("run-1", [], GONE, checkpoint(entries[0])).verdict == "truncated"


def test_a_recomputed_chain_with_other_content_is_rechained() -> None:
    original = trail(*KINDS)
    rewritten = trail(*KINDS, actor="someone-else")  # valid on its own
    verdict = verify_run("run-1", rewritten, anchored(original[-1]), None)
    assert verdict.verdict == "rechained"
    assert verdict.detail.startswith("entry 3 is not the one Temporal anchored as the run ended")
    verdict = verify_run("run-1", rewritten, GONE, checkpoint(original[-1]))
    assert verdict.verdict == "rechained"
    assert verdict.detail.startswith("entry 3 is not the one the signed checkpoint holds")


def test_a_broken_link_comes_first_then_a_forged_checkpoint() -> None:
    entries = trail(*KINDS)
    gap = [entries[0], entries[2]]
    verdict = verify_run("run-1", gap, anchored(entries[-1]), checkpoint(entries[-1], False))
    assert (verdict.verdict, verdict.detail) == ("broken", "entry 3: expected entry 2 here")
    verdict = verify_run("run-1", entries, anchored(entries[-1]), checkpoint(entries[-1], False))
    assert verdict.verdict == "forged"


def test_no_record_at_all_is_unanchored_not_a_failure() -> None:
    entries = trail(*KINDS)
    running = Anchor(None, "still running: anchored when it ends")
    verdict = verify_run("run-1", entries, running, None)
    assert verdict.verdict == "unanchored" and verdict.anchor is None
    assert verdict.detail == "still running: anchored when it ends; no checkpoint"
