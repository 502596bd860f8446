"""The review desk of a run: the review it waits on, who has claimed it, and the decision.

`AgentWorkflow` keeps one. When the graph interrupts, `review` opens a review (an activity
writes the queue row), waits for the `decide` Update or the queue's deadline, whichever
comes first, and closes it. The Update validators refuse here, before anything enters
history: they raise catalogued failures (`keel.errors`), whose Temporal type the API
answers with as their problem. History is the source of truth; the queue row is an index
of it.
"""

from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from keel.errors import (
        ClaimedByAnother,
        InvalidEdit,
        ReviewNotPending,
        SelfApproval,
        StaleAction,
    )
    from keel.review_edits import edit_problem
    from keel.schemas.policy import ExpiryPath, RunPolicy
    from keel.schemas.reviews import (
        CLAIM_REVIEW,
        CLOSE_REVIEW,
        MOVE_REVIEW,
        OPEN_REVIEW,
        Claim,
        ClaimInput,
        ClaimRecord,
        CloseReviewInput,
        DecisionInput,
        MoveReviewInput,
        PendingReview,
        ReleaseInput,
        ReviewDecision,
        ReviewRequest,
        ReviewStatus,
        action_hash,
    )
    from keel.schemas.runs import RunStatus
    from workflows import metrics
    from workflows.activity_options import REVIEW_QUEUE_WRITE_OPTIONS
    from workflows.policy import is_low_risk, queue_for, queue_spec

__all__ = ["ReviewDesk"]

_DECIDED: dict[str, ReviewStatus] = {"approve": "approved", "edit": "edited", "reject": "rejected"}


def _not_pending(review_id: str, why: str) -> ReviewNotPending:
    return ReviewNotPending(f"review {review_id} is not pending on this run: {why}")


def _stale(review_id: str) -> StaleAction:
    return StaleAction(
        f"review {review_id}: the decision was made on another action than the pending one "
        "(its action_hash is missing or not current)",
    )


def _self_approval(review_id: str) -> SelfApproval:
    return SelfApproval(f"review {review_id}: nobody decides a review on a run they submitted")


def _claimed(review_id: str, claim: Claim) -> ClaimedByAnother:
    return ClaimedByAnother(
        f"review {review_id} is claimed by {claim.claimant} until {claim.expires_at.isoformat()}",
    )


def _why(request: ReviewRequest) -> str:
    """The reason with its numbers; `<` only where the confidence is what fell short."""
    confidence, threshold = request.confidence, request.threshold
    if confidence is not None and threshold is not None and confidence < threshold:
        return f"{request.reason}, confidence {confidence:.2f} < {threshold:.2f}"
    if confidence is not None:
        return f"{request.reason}, confidence {confidence:.2f}"
    return f"{request.reason}, ${request.cost_usd:.4f} spent"


class ReviewDesk:
    """One run's reviews: opened, claimed, decided (or expired) and closed, one at a time.

    Args:
        policy: The run's escalation policy (queues, deadlines, claim leases).
        submitted_by: The principal that started the run (a key's id on runs started before
            principals, which is that key's principal), which may not decide its reviews.
        on_status: Told `awaiting_review` when a review opens and `running` once it closes.
    """

    def __init__(
        self,
        policy: RunPolicy,
        submitted_by: str | None,
        on_status: Callable[[RunStatus], None],
    ) -> None:
        self.policy = policy
        self.pending: PendingReview | None = None
        """The review the run waits on."""
        self.reviews = 0
        """Reviews opened so far (numbered from 1)."""
        self._submitted_by = submitted_by
        self._on_status = on_status
        self._decision: DecisionInput | None = None
        self._closed: set[str] = set()
        self._claim: Claim | None = None
        self._claims = 0  # orders the claim writes of the queue row
        self._deadline_path: ExpiryPath | None = None

    def take_over(self, reviews: int) -> None:
        """Go on from a run before a continuation, which closed `reviews` reviews."""
        self.reviews = reviews
        prefix = f"{workflow.info().workflow_id}.review-"
        self._closed = {f"{prefix}{n}" for n in range(1, reviews + 1)}

    async def decide(self, decision: DecisionInput) -> None:
        """Record a reviewer's decision; returns once the review queue shows it."""
        review_id = decision.review_id
        await self._opened(review_id)
        # Another handler of this workflow task may have decided or claimed meanwhile.
        self.refuse_decision(decision)
        self._decision = decision
        await workflow.wait_condition(lambda: review_id in self._closed)

    def refuse_decision(self, decision: DecisionInput) -> None:
        """The `decide` validator: a stale or forged decision never enters history."""
        self._refuse_unless_pending(decision.review_id)
        if decision.reviewer_id is not None and decision.reviewer_id == self._submitted_by:
            raise _self_approval(decision.review_id)
        pending = self.pending
        if pending is None or decision.action_hash != pending.action_hash:
            raise _stale(decision.review_id)
        self._refuse_claim_of_another(decision.review_id, decision.decider)
        evidence = [p.id for p in pending.passages] + [c.passage_id for c in pending.citations]
        problem = edit_problem(
            pending.tool_parameters, pending.tool_call is not None, decision, evidence
        )
        if problem is not None:
            raise InvalidEdit(problem.detail)

    async def claim(self, claim: ClaimInput) -> Claim:
        """Give `claim.claimant` the pending review for a lease; returns the claim."""
        await self._opened(claim.review_id)
        self.refuse_claim(claim)
        lease = min(claim.lease_s, self.policy.claim_lease_s)
        expires_at = workflow.now() + timedelta(seconds=lease)
        held = Claim(claimant=claim.claimant, expires_at=expires_at)
        await self._record_claim(claim.review_id, held, claim.key)
        return held

    def refuse_claim(self, claim: ClaimInput) -> None:
        """The `claim` validator."""
        self._refuse_unless_pending(claim.review_id)
        if claim.claimant == self._submitted_by:  # who may not decide may not claim either
            raise _self_approval(claim.review_id)
        self._refuse_claim_of_another(claim.review_id, claim.claimant)

    async def release(self, release: ReleaseInput) -> None:
        """Give a claimed review back to its queue (nothing to do when it is not claimed)."""
        await self._opened(release.review_id)
        self.refuse_release(release)
        if self._claim is not None:
            await self._record_claim(release.review_id, None, release.key)

    def refuse_release(self, release: ReleaseInput) -> None:
        """The `release` validator."""
        self._refuse_unless_pending(release.review_id)
        self._refuse_claim_of_another(release.review_id, release.claimant)

    async def review(self, agent: str, request: ReviewRequest) -> ReviewDecision:
        """Open a review of `request`, wait for its decision (or deadline), close it."""
        self.reviews += 1
        info = workflow.info()
        opened_at = workflow.now()
        queue = queue_for(self.policy, request.reason)
        review_id = f"{info.workflow_id}.review-{self.reviews}"
        pending = PendingReview(
            **request.model_dump(),
            review_id=review_id,
            run_id=info.workflow_id,
            agent=agent,
            opened_at=opened_at,
            deadline=opened_at + self._sla(queue),
            queue=queue,
            action_hash=action_hash(review_id, request),
        )
        # Known before its row is written, so the Update validators can judge a decision on it.
        self.pending, self._decision, self._claim = pending, None, None
        await workflow.execute_activity(
            OPEN_REVIEW,
            pending,
            **REVIEW_QUEUE_WRITE_OPTIONS.for_activity(summary=f"open review ({_why(request)})"),
        )
        metrics.review_opened(agent, request.reason)
        self._on_status("awaiting_review")
        workflow.set_current_details(f"awaiting review {pending.review_id} ({_why(request)})")
        status = await self._await_decision()
        assert self._decision is not None
        decision = ReviewDecision.model_validate(self._decision.model_dump(exclude={"review_id"}))
        await self.close_pending(status or _DECIDED[decision.action], decision)
        self._on_status("running")
        return decision

    async def close_pending(self, status: ReviewStatus, decision: ReviewDecision) -> None:
        """Close the pending review, if any, with `status` (the run may go on or end)."""
        pending = self.pending
        if pending is None:
            return
        close = CloseReviewInput(
            review_id=pending.review_id,
            status=status,
            answer=decision.answer,
            arguments=decision.arguments,
            citations=decision.cited([*pending.passages, *pending.citations]),
            comment=decision.comment,
            reviewer=decision.reviewer,
            reviewer_id=self._decision.reviewer_id if self._decision is not None else None,
            reviewer_key=self._decision.reviewer_key if self._decision is not None else None,
            decided_at=workflow.now(),
            deadline_path=self._deadline_path,
        )
        await workflow.execute_activity(
            CLOSE_REVIEW,
            close,
            **REVIEW_QUEUE_WRITE_OPTIONS.for_activity(summary=f"close review: {status}"),
        )
        self.pending, self._claim, self._deadline_path = None, None, None
        self._closed.add(pending.review_id)
        metrics.review_closed(
            pending.agent, pending.reason, status, close.decided_at - pending.opened_at
        )

    async def _opened(self, review_id: str) -> None:
        # Handlers run before the main coroutine within one workflow task, so after a worker
        # crash the review an Update names may not be re-opened yet: wait for it.
        await workflow.wait_condition(
            lambda: (
                review_id in self._closed
                or (self.pending is not None and self.pending.review_id == review_id)
            )
        )

    def _refuse_unless_pending(self, review_id: str) -> None:
        prefix = f"{workflow.info().workflow_id}.review-"
        number = review_id.removeprefix(prefix)
        if not number.isdigit() or not 0 < int(number) <= self.reviews:
            raise _not_pending(review_id, "this run has no such review")
        pending = self.pending
        decided = pending is not None and pending.review_id == review_id and self._decision
        if review_id in self._closed or decided:
            raise _not_pending(review_id, "it was already decided")

    def _refuse_claim_of_another(self, review_id: str, who: str | None) -> None:
        held = self._claim
        if held is not None and held.claimant != who and held.expires_at > workflow.now():
            raise _claimed(review_id, held)

    async def _record_claim(self, review_id: str, held: Claim | None, key: str | None) -> None:
        self._claim = held
        self._claims += 1
        if self.pending is not None and self.pending.review_id == review_id:
            self.pending = self.pending.model_copy(update={"claim": held})
        record = ClaimRecord(
            review_id=review_id,
            claimant=None if held is None else held.claimant,
            key=key,
            expires_at=None if held is None else held.expires_at,
            version=self._claims,
        )
        summary = "release review" if held is None else f"claim review: {held.claimant}"
        await workflow.execute_activity(
            CLAIM_REVIEW, record, **REVIEW_QUEUE_WRITE_OPTIONS.for_activity(summary=summary)
        )

    async def _await_decision(self) -> ReviewStatus | None:
        """Wait for a decision, or let the queue's deadline path decide (its status then).

        The deadline is a workflow timer: it fires on the server even when no worker is up,
        and the next worker to pick the run up takes the path.
        """
        policy = self.policy
        while True:
            pending = self.pending
            assert pending is not None
            wait = max(pending.deadline - workflow.now(), timedelta(milliseconds=1))
            try:
                await workflow.wait_condition(lambda: self._decision is not None, timeout=wait)
                return None
            except TimeoutError:
                spec = queue_spec(policy, pending.queue)
            if spec.on_expiry == "escalate" and spec.escalate_to:
                await self._move(pending, spec.escalate_to)
                continue
            approve = spec.on_expiry == "approve_if_low_risk" and is_low_risk(pending, spec)
            why = "approved at its deadline as low risk" if approve else "its deadline passed"
            # Taking the expiry as the decision also refuses any decision that arrives now.
            self._decision = DecisionInput(
                review_id=pending.review_id,
                action="approve" if approve else "reject",
                comment=f"{why} ({spec.on_expiry})",
            )
            self._deadline_path = spec.on_expiry
            return "approved" if approve else "expired"

    async def _move(self, pending: PendingReview, queue: str) -> None:
        moved = pending.model_copy(
            update={"queue": queue, "deadline": workflow.now() + self._sla(queue), "claim": None}
        )
        self.pending, self._claim = moved, None
        self._claims += 1  # a claim write still in flight must not win over the move
        await workflow.execute_activity(
            MOVE_REVIEW,
            MoveReviewInput(
                review_id=moved.review_id,
                queue=queue,
                deadline=moved.deadline,
                version=self._claims,
            ),
            **REVIEW_QUEUE_WRITE_OPTIONS.for_activity(summary=f"deadline: move review to {queue}"),
        )
        workflow.set_current_details(f"awaiting review {moved.review_id} in {queue}")

    def _sla(self, queue: str) -> timedelta:
        spec = queue_spec(self.policy, queue)
        return timedelta(seconds=spec.sla_s or 7 * 24 * 3600)
