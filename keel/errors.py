"""Keel's failures: the one catalogue of every kind, with all that depends on it.

Each kind is a class declared here once, with its Temporal error type (the class name,
kept stable because histories and clients record it), whether Temporal may retry it, its
HTTP status and its problem `type` (``urn:keel:problem:<code>``). A kind is a Temporal
`ApplicationError`: raised in an activity, a workflow or an Update validator, Temporal
carries its type and retryability as they are declared; raised in the API, or coming back
from Temporal with a catalogued type (`caught`), the API answers with its problem.

```
kind                      retry  HTTP  problem code
KeelError                                     (the base; never raised)
├── KeelUserError         no     500   configuration-error   a mistake in code or configuration
│   ├── MissingApiKey     no     500   missing-api-key       a deployment's key variable is unset
│   ├── UnknownRoute      no     500   unknown-route         no model route has the name
│   └── UnknownDeployment no     500   unknown-deployment    a route names a missing deployment
└── KeelRunError          yes    500   internal-error        a failure at run time, unclassified
    ├── InvalidRequest              no  422  validation-error        the request breaks its schema
    ├── MalformedRequest            no  400  bad-request             the request cannot be read
    │   └── BodyTooDeep             no  400  body-too-deep           JSON nested past the limit
    ├── RouteNotFound               no  404  not-found               no such path
    ├── MethodNotAllowed            no  405  method-not-allowed      not with this method
    ├── PayloadTooLarge             no  413  payload-too-large       the body is over the limit
    ├── Unauthorized                no  401  unauthorized            no valid API key
    ├── Forbidden                   no  403  forbidden               the key's role may not
    ├── OpenModeRefused             no  403  open-mode-refused       what a web page could send
    ├── CrossOriginRefused          no  403  cross-origin-refused    a preflight CORS does not allow
    ├── RateLimitExceeded           no  429  rate-limited            a key or address over its rate
    ├── BadPageToken                no  400  bad-page-token          not a page token we gave
    ├── UnknownAgent                no  404  unknown-agent           no agent has the name
    ├── InvalidInput                no  422  invalid-input           not the agent's input
    ├── IdempotencyKeyReused        no  422  idempotency-key-reused  one key, two requests
    ├── UnknownRun                  no  404  unknown-run             no run (that you may see)
    ├── RunNotRunning               no  409  run-not-running         the run has ended
    ├── InvalidPeriod               no  422  invalid-period          a usage period that cannot be
    ├── UnknownKey                  no  404  unknown-key             no API key has the id
    ├── UnknownReview               no  404  unknown-review          no review has the id
    ├── ReviewNotPending            no  409  review-not-pending      decided, or not on this run
    ├── StaleAction                 no  409  stale-action            not the pending action's hash
    ├── ClaimedByAnother            no  409  claimed-by-another      someone else holds the claim
    ├── SelfApproval                no  403  self-approval           a review of one's own run
    ├── InvalidEdit                 no  422  invalid-arguments       an edit the action cannot take
    ├── WrongReviewKind             no  409  wrong-review-kind       an audit is graded, not decided
    ├── UnknownCollection           no  404  unknown-collection      no collection has the name
    ├── CollectionExists            no  409  collection-exists       taken, configured otherwise
    ├── UnknownDocument             no  404  unknown-document        not in the collection
    ├── InvalidDocument             no  422  invalid-document        empty, undecodable, repeated
    │   └── UnsupportedMediaType    no  415  unsupported-media-type  a format Keel does not read
    ├── InvalidSearch               no  422  invalid-search          e.g. dense without vectors
    ├── UnknownEmbedding            no  422  unknown-embedding       an embedder the worker lacks
    ├── UnknownIngestion            no  404  unknown-ingestion       no ingestion has the id
    ├── IngestionStarted            no  409  ingestion-started       it takes no more documents
    ├── BudgetExceeded              no  402  budget-exceeded         a call over the run's budget
    ├── BudgetDenied                no  402  budget-denied           a reviewer refused that call
    ├── CircuitOpen                 no  503  circuit-open            the deployment keeps failing
    ├── ProviderError               yes 502  provider-error          a model call failed otherwise
    │   ├── RateLimited             yes 503  provider-rate-limited   HTTP 429 (retry-after kept)
    │   ├── ProviderUnavailable     yes 503  provider-unavailable    HTTP 5xx, 529, 409
    │   ├── ProviderTimeout         yes 504  provider-timeout        HTTP 408, client timeouts
    │   ├── ProviderUnreachable     yes 502  provider-unreachable    connection, DNS, TLS
    │   ├── MalformedResponse       yes 502  malformed-response      not JSON, not the shape
    │   ├── BadRequest              no  502  provider-bad-request    HTTP 400, 413, 422, other 4xx
    │   ├── ContextLengthExceeded   no  502  context-length-exceeded longer than the context
    │   ├── ContentFiltered         no  502  content-filtered        the provider's safety filter
    │   ├── AuthenticationFailed    no  502  authentication-failed   HTTP 401
    │   ├── PermissionDenied        no  502  permission-denied       HTTP 403
    │   ├── ModelNotFound           no  502  model-not-found         HTTP 404
    │   └── QuotaExceeded           no  502  quota-exceeded          429 insufficient_quota
    ├── TemporalUnavailable         yes 503  temporal-unavailable    Temporal or no worker answered
    ├── PayloadMissing              yes 500  payload-missing         a payload's bytes are gone
    ├── UnknownPayloadKey           yes 422  unknown-payload-key     encrypted under a key not held
    └── PayloadUndecryptable        yes 422  payload-undecryptable   the key does not open it
```

Not failures of Keel, so not here: `tools.registry.ToolError` (a tool's answer to the
model, the run goes on), the CLI's `ApiError` (the client side of a problem response) and
`keel.testing.embeddings.EmbeddingInputError` (the fake provider's own 400).
"""

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, ClassVar

from temporalio.exceptions import ApplicationError
from temporalio.exceptions import TimeoutError as TemporalTimeoutError

__all__ = [
    "PROBLEM_PREFIX",
    "AuthenticationFailed",
    "BadPageToken",
    "BadRequest",
    "BodyTooDeep",
    "BudgetDenied",
    "BudgetExceeded",
    "CircuitOpen",
    "ClaimedByAnother",
    "CollectionExists",
    "ContentFiltered",
    "ContextLengthExceeded",
    "CrossOriginRefused",
    "Forbidden",
    "IdempotencyKeyReused",
    "IngestionStarted",
    "InvalidDocument",
    "InvalidEdit",
    "InvalidInput",
    "InvalidPeriod",
    "InvalidRequest",
    "InvalidSearch",
    "KeelError",
    "KeelRunError",
    "KeelUserError",
    "MalformedRequest",
    "MalformedResponse",
    "MethodNotAllowed",
    "MissingApiKey",
    "ModelNotFound",
    "OpenModeRefused",
    "PayloadMissing",
    "PayloadTooLarge",
    "PayloadUndecryptable",
    "PermissionDenied",
    "ProviderError",
    "ProviderTimeout",
    "ProviderUnavailable",
    "ProviderUnreachable",
    "QuotaExceeded",
    "RateLimitExceeded",
    "RateLimited",
    "ReviewNotPending",
    "RouteNotFound",
    "RunNotRunning",
    "SelfApproval",
    "StaleAction",
    "TemporalUnavailable",
    "Unauthorized",
    "UnknownAgent",
    "UnknownCollection",
    "UnknownDeployment",
    "UnknownDocument",
    "UnknownEmbedding",
    "UnknownIngestion",
    "UnknownKey",
    "UnknownPayloadKey",
    "UnknownReview",
    "UnknownRoute",
    "UnknownRun",
    "UnsupportedMediaType",
    "WrongReviewKind",
    "broken_deployment_types",
    "catalogue",
    "caught",
    "kind_of",
    "kind_of_problem",
    "never_retried",
]

PROBLEM_PREFIX = "urn:keel:problem:"
"""What every problem `type` starts with; the kind's `code` follows."""

_CATALOGUE: dict[str, type["KeelError"]] = {}


class KeelError(ApplicationError):
    """Base of every Keel failure; each subclass is one kind of the catalogue.

    Args:
        message: What went wrong, for people (never secrets or customer text).
        errors: The fields at fault, as ``{"field", "message"}`` pairs.
        retry_after: When another attempt may succeed (Temporal's next retry delay, the
            HTTP ``Retry-After``).
    """

    temporal_type: ClassVar[str]
    """The Temporal error type: the class name."""
    retryable: ClassVar[bool]
    """Whether Temporal may retry an activity that raised it."""
    status: ClassVar[int]
    """The HTTP status of its problem response."""
    code: ClassVar[str]
    """The stable end of its problem `type`."""

    def __init_subclass__(
        cls, *, code: str, status: int | None = None, retryable: bool | None = None
    ) -> None:
        """Declare a kind: its problem `code`; its status and retryability when not its parent's."""
        super().__init_subclass__()
        cls.temporal_type = cls.__name__
        cls.code = code
        if status is not None:
            cls.status = status
        if retryable is not None:
            cls.retryable = retryable
        _CATALOGUE[cls.temporal_type] = cls

    def __init__(
        self,
        message: str,
        *,
        errors: Sequence[Mapping[str, Any]] = (),
        retry_after: timedelta | None = None,
    ) -> None:
        super().__init__(
            message,
            type=self.temporal_type,
            non_retryable=not self.retryable,
            next_retry_delay=retry_after,
        )
        self.errors = [dict(e) for e in errors]

    def __str__(self) -> str:
        return self.message

    @classmethod
    def problem_type(cls) -> str:
        """The problem `type` of its HTTP responses."""
        return PROBLEM_PREFIX + cls.code


def catalogue() -> tuple[type[KeelError], ...]:
    """Every kind of failure, in declaration order."""
    return tuple(_CATALOGUE.values())


def kind_of(temporal_type: str | None) -> type[KeelError] | None:
    """The kind whose Temporal error type is `temporal_type`, if one is."""
    return _CATALOGUE.get(temporal_type or "")


def kind_of_problem(problem_type: str | None) -> type[KeelError] | None:
    """The kind whose problem `type` is `problem_type` (a client reading a response)."""
    code = (problem_type or "").removeprefix(PROBLEM_PREFIX)
    return next((kind for kind in _CATALOGUE.values() if kind.code == code), None)


def broken_deployment_types() -> frozenset[str]:
    """Temporal error types that say a deployment cannot answer anyone until it is fixed.

    Its key is missing or refused, or its model does not exist: unlike a bad request, another
    deployment may well answer.
    """
    return frozenset(
        kind.temporal_type
        for kind in (AuthenticationFailed, PermissionDenied, ModelNotFound, MissingApiKey)
    )


def never_retried() -> tuple[type[KeelError], ...]:
    """The kinds Temporal must not retry: they fail a workflow and an activity at once."""
    return tuple(kind for kind in _CATALOGUE.values() if not kind.retryable)


def caught(exc: BaseException) -> KeelError | None:
    """The catalogued failure `exc` is, or carries back from Temporal as a cause.

    A workflow's, an Update's or an activity's failure arrives as a chain of Temporal
    errors; an `ApplicationError` with a catalogued type becomes its kind again, and a
    Temporal timeout (no worker took the task in time) becomes `TemporalUnavailable`.
    """
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, KeelError):
            return cause
        if isinstance(cause, ApplicationError):
            kind = kind_of(cause.type)
            if kind is not None:
                return kind(cause.message, retry_after=cause.next_retry_delay)
        if isinstance(cause, TemporalTimeoutError):
            return TemporalUnavailable(
                "no worker finished the task in time; is one running?",
                retry_after=timedelta(seconds=1),
            )
        cause = getattr(cause, "cause", None) or cause.__cause__
    return None


# --- the two roots ------------------------------------------------------------------------


class KeelUserError(KeelError, code="configuration-error", status=500, retryable=False):
    """A mistake in code or configuration: it fails the run and is never retried."""


class KeelRunError(KeelError, code="internal-error", status=500, retryable=True):
    """A failure at run time (its subtypes say which)."""


# --- configuration ------------------------------------------------------------------------


class MissingApiKey(KeelUserError, code="missing-api-key"):
    """A deployment's API key variable is unset or empty."""


class UnknownRoute(KeelUserError, code="unknown-route"):
    """No model route has that name."""


class UnknownDeployment(KeelUserError, code="unknown-deployment"):
    """A route names a deployment that is not configured."""


# --- requests -----------------------------------------------------------------------------


class InvalidRequest(KeelRunError, code="validation-error", status=422, retryable=False):
    """The request does not fit its schema."""


class MalformedRequest(KeelRunError, code="bad-request", status=400, retryable=False):
    """The request cannot be read at all."""


class BodyTooDeep(MalformedRequest, code="body-too-deep"):
    """A JSON body (or JSON Lines row) nests deeper than `keel.json_depth.MAX_JSON_DEPTH`."""


class RouteNotFound(KeelRunError, code="not-found", status=404, retryable=False):
    """No such path."""


class MethodNotAllowed(KeelRunError, code="method-not-allowed", status=405, retryable=False):
    """The path does not take this method."""


class PayloadTooLarge(KeelRunError, code="payload-too-large", status=413, retryable=False):
    """The request body is over the API's limit."""


class Unauthorized(KeelRunError, code="unauthorized", status=401, retryable=False):
    """No API key, or an unknown or revoked one."""


class Forbidden(KeelRunError, code="forbidden", status=403, retryable=False):
    """The key's role may not do this."""


class OpenModeRefused(KeelRunError, code="open-mode-refused", status=403, retryable=False):
    """An open API (no key yet) refuses a non-loopback `Host` and writes from another site."""


class CrossOriginRefused(KeelRunError, code="cross-origin-refused", status=403, retryable=False):
    """A CORS preflight from an origin (or for a method or header) `KEEL_CORS_ORIGINS` lacks."""


class RateLimitExceeded(KeelRunError, code="rate-limited", status=429, retryable=False):
    """A key or client address is over its rate, or its budget of failed authentications.

    The API's own limits, not a provider's.
    """


class BadPageToken(KeelRunError, code="bad-page-token", status=400, retryable=False):
    """A page token this API did not give out."""


# --- runs ---------------------------------------------------------------------------------


class UnknownAgent(KeelRunError, code="unknown-agent", status=404, retryable=False):
    """No agent has that name."""


class InvalidInput(KeelRunError, code="invalid-input", status=422, retryable=False):
    """A run's input does not fit its agent's input schema."""


class IdempotencyKeyReused(
    KeelRunError, code="idempotency-key-reused", status=422, retryable=False
):
    """An idempotency key already used for a different request."""


class UnknownRun(KeelRunError, code="unknown-run", status=404, retryable=False):
    """No run has that id (or none the caller may see)."""


class RunNotRunning(KeelRunError, code="run-not-running", status=409, retryable=False):
    """The run has already ended."""


class UnknownKey(KeelRunError, code="unknown-key", status=404, retryable=False):
    """No API key has that id."""


# --- reviews ------------------------------------------------------------------------------


class UnknownReview(KeelRunError, code="unknown-review", status=404, retryable=False):
    """No review has that id."""


class ReviewNotPending(KeelRunError, code="review-not-pending", status=409, retryable=False):
    """A decision for a review that is not (or no longer) pending."""


class StaleAction(KeelRunError, code="stale-action", status=409, retryable=False):
    """A decision on another action than the pending one (its `action_hash`)."""


class ClaimedByAnother(KeelRunError, code="claimed-by-another", status=409, retryable=False):
    """Someone else holds the review's claim."""


class SelfApproval(KeelRunError, code="self-approval", status=403, retryable=False):
    """Nobody decides a review on a run they submitted."""


class InvalidEdit(KeelRunError, code="invalid-arguments", status=422, retryable=False):
    """An edit the pending action cannot take (arguments off the tool's schema)."""


class WrongReviewKind(KeelRunError, code="wrong-review-kind", status=409, retryable=False):
    """A decision on an audit (its run has ended: grade it), or a grade on an escalation."""


# --- retrieval ----------------------------------------------------------------------------


class UnknownCollection(KeelRunError, code="unknown-collection", status=404, retryable=False):
    """No collection has that name."""


class CollectionExists(KeelRunError, code="collection-exists", status=409, retryable=False):
    """A collection of that name exists (with another configuration)."""


class UnknownDocument(KeelRunError, code="unknown-document", status=404, retryable=False):
    """No document has that id in the collection."""


class InvalidDocument(KeelRunError, code="invalid-document", status=422, retryable=False):
    """A document is empty, not text, invalid, or repeated in one batch."""


class UnsupportedMediaType(InvalidDocument, code="unsupported-media-type", status=415):
    """A body or file in none of the formats Keel reads."""


class InvalidPeriod(KeelRunError, code="invalid-period", status=422, retryable=False):
    """A usage period that ends before it starts, or whose times lack a UTC offset."""


class InvalidSearch(KeelRunError, code="invalid-search", status=422, retryable=False):
    """A search the collection cannot serve (dense or hybrid without vectors)."""


class UnknownEmbedding(KeelRunError, code="unknown-embedding", status=422, retryable=False):
    """A collection names an embedding model the worker does not have."""


class UnknownIngestion(KeelRunError, code="unknown-ingestion", status=404, retryable=False):
    """No ingestion has that id in the collection."""


class IngestionStarted(KeelRunError, code="ingestion-started", status=409, retryable=False):
    """The ingestion has started: it takes no more documents."""


# --- models -------------------------------------------------------------------------------


class BudgetExceeded(KeelRunError, code="budget-exceeded", status=402, retryable=False):
    """A model call would take the run past its budget (budget action `fail`)."""


class BudgetDenied(KeelRunError, code="budget-denied", status=402, retryable=False):
    """A reviewer refused a model call that would exceed the run's budget."""


class CircuitOpen(KeelRunError, code="circuit-open", status=503, retryable=False):
    """The deployment keeps failing: fail fast, so the route moves on."""


class ProviderError(KeelRunError, code="provider-error", status=502, retryable=True):
    """A model provider's call failed (anything not classified below)."""


class RateLimited(ProviderError, code="provider-rate-limited", status=503):
    """The provider said 429; its retry-after is the next retry delay."""


class ProviderUnavailable(ProviderError, code="provider-unavailable", status=503):
    """HTTP 5xx, 529 overloaded, 409 conflict."""


class ProviderTimeout(ProviderError, code="provider-timeout", status=504):
    """HTTP 408, or the client gave up waiting."""


class ProviderUnreachable(ProviderError, code="provider-unreachable"):
    """Connection refused or reset, DNS, TLS or protocol errors."""


class MalformedResponse(ProviderError, code="malformed-response"):
    """A body that is not JSON, or not the expected shape."""


class BadRequest(ProviderError, code="provider-bad-request", retryable=False):
    """The provider refused the request (HTTP 400, 413, 422, other 4xx)."""


class ContextLengthExceeded(ProviderError, code="context-length-exceeded", retryable=False):
    """The prompt is longer than the model's context window."""


class ContentFiltered(ProviderError, code="content-filtered", retryable=False):
    """The provider's content or safety filter refused the request."""


class AuthenticationFailed(ProviderError, code="authentication-failed", retryable=False):
    """The provider refused the key (HTTP 401)."""


class PermissionDenied(ProviderError, code="permission-denied", retryable=False):
    """The key may not use the model (HTTP 403)."""


class ModelNotFound(ProviderError, code="model-not-found", retryable=False):
    """The provider has no such model (HTTP 404)."""


class QuotaExceeded(ProviderError, code="quota-exceeded", retryable=False):
    """The account is out of credit (429 `insufficient_quota`), not busy."""


# --- infrastructure -----------------------------------------------------------------------


class TemporalUnavailable(KeelRunError, code="temporal-unavailable", status=503):
    """Temporal did not answer, or no worker took the task in time."""


class PayloadMissing(KeelRunError, code="payload-missing"):
    """A history refers to a payload its store does not have (or has damaged)."""


class UnknownPayloadKey(KeelRunError, code="unknown-payload-key", status=422):
    """A payload was encrypted under a key id this process's keyring does not have.

    Retried: once the key is added to every worker's keyring, the run goes on.
    """


class PayloadUndecryptable(KeelRunError, code="payload-undecryptable", status=422):
    """An encrypted payload does not open with the key its id names: damaged, or a wrong key."""
