"""Routing: deployments (a model at a provider), routes over them, and the cost ledger."""

from typing import Literal

from pydantic import BaseModel, Field, computed_field, model_validator

from keel.schemas.model import ModelRequest, ModelResponse, Usage

__all__ = [
    "JUDGE_ROUTE",
    "MODEL_CALL",
    "MODEL_PLAN",
    "Capability",
    "Deployment",
    "Ledger",
    "LedgerEntry",
    "ModelCall",
    "Price",
    "ProviderKind",
    "Route",
    "RoutePlan",
    "Strategy",
]

JUDGE_ROUTE = "judge"
"""The route verifiers ask (`ModelRequest.judge`); the keyless `local` verifier unless set."""
MODEL_CALL = "model.call"
"""Activity type of one attempt on one deployment."""
MODEL_PLAN = "model.plan"
"""(Local) activity type that resolves a route into a `RoutePlan`."""

ProviderKind = Literal["openai", "anthropic", "openai_compatible", "local"]
Strategy = Literal["fixed", "fallback", "cheapest", "cascade"]
Capability = Literal["tools", "json"]


class Price(BaseModel):
    """US dollars per million tokens."""

    input: float = Field(ge=0.0)
    output: float = Field(ge=0.0)
    cached: float | None = Field(default=None, ge=0.0, description="Cached input; else input.")
    cache_write: float | None = Field(
        default=None, ge=0.0, description="Input written to the cache; else input."
    )

    def cost(self, usage: Usage) -> float:
        """What `usage` costs at this price."""
        cached = min(usage.cached_tokens, usage.input_tokens)
        written = min(usage.cache_write_tokens, usage.input_tokens - cached)
        fresh = usage.input_tokens - cached - written
        cached_rate = self.input if self.cached is None else self.cached
        write_rate = self.input if self.cache_write is None else self.cache_write
        return (
            fresh * self.input
            + cached * cached_rate
            + written * write_rate
            + usage.output_tokens * self.output
        ) / 1e6


_DEFAULT_KEY_ENVS: dict[ProviderKind, str] = {
    "openai": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
}


class Deployment(BaseModel):
    """One model at one provider, and how to call it."""

    model_config = {"extra": "forbid"}

    provider: ProviderKind
    model: str = Field(min_length=1)
    api_key_env: str | None = Field(
        default=None, description="Environment variable holding the key (never the key)."
    )
    base_url: str | None = None
    price: Price | None = Field(default=None, description="Overrides the shipped price table.")
    context_window: int = Field(default=128_000, gt=0)
    capabilities: list[Capability] = Field(default_factory=lambda: ["tools", "json"])
    timeout_s: float = Field(default=60.0, gt=0)
    max_attempts: int = Field(default=3, ge=1, description="Temporal attempts before moving on.")
    local_activity: bool = Field(
        default=False,
        description="Call as a local activity, on the worker running the run: no task-queue "
        "round trip per call. For a model that answers at once on the worker itself (`local`).",
    )

    @property
    def key_env(self) -> str | None:
        """The environment variable the deployment's key is read from; None if it needs none.

        `api_key_env` when set; else the provider's usual variable (`OPENAI_API_KEY`,
        `ANTHROPIC_API_KEY`). A `local` deployment, and an `openai_compatible` one without
        `api_key_env`, need no key.
        """
        if self.api_key_env is not None:
            return self.api_key_env
        return _DEFAULT_KEY_ENVS.get(self.provider)

    @model_validator(mode="after")
    def _needs_base_url(self) -> "Deployment":
        if self.provider == "openai_compatible" and not self.base_url:
            raise ValueError("an 'openai_compatible' deployment needs a base_url")
        return self


class Route(BaseModel):
    """A name agents use, and how it picks among its candidate deployments."""

    model_config = {"extra": "forbid"}

    strategy: Strategy = "fixed"
    candidates: list[str] = Field(min_length=1, description="Deployment names, in order.")
    threshold: float | None = Field(
        default=None, ge=0.0, le=1.0, description="cascade: confidence that stops the cascade."
    )

    @model_validator(mode="after")
    def _threshold_goes_with_cascade(self) -> "Route":
        if self.strategy == "cascade" and self.threshold is None:
            raise ValueError("a 'cascade' route needs a threshold")
        return self


class RoutePlan(BaseModel):
    """What the workflow needs to route deterministically: resolved candidates and prices."""

    route: str
    strategy: Strategy
    threshold: float | None = None
    candidates: list[str]
    deployments: dict[str, Deployment]
    prices: dict[str, Price]


class ModelCall(BaseModel):
    """Activity input: one attempt of one request on one deployment."""

    deployment: str
    spec: Deployment
    price: Price
    request: ModelRequest
    move_on_when_limited: bool = Field(
        default=False,
        description="Another candidate follows: a rate limit ends this call at once (the "
        "route moves on) instead of waiting on this deployment.",
    )


class LedgerEntry(BaseModel):
    """One model call that the provider answered (and billed)."""

    step: str
    deployment: str
    provider: str
    model: str
    usage: Usage
    cost_usd: float


class Ledger(BaseModel):
    """What a run has spent on models."""

    entries: list[LedgerEntry] = Field(default_factory=list[LedgerEntry])

    @computed_field
    @property
    def total_usd(self) -> float:
        """The run's model cost so far."""
        return sum(e.cost_usd for e in self.entries)

    def record(self, step: str, response: ModelResponse) -> None:
        """Add one answered call."""
        self.entries.append(
            LedgerEntry(
                step=step,
                deployment=response.deployment,
                provider=response.provider,
                model=response.model,
                usage=response.usage,
                cost_usd=response.cost_usd,
            )
        )
