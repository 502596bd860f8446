"""Guards: what a run screens (a question, a draft, tool arguments) and what they found."""

from pydantic import BaseModel, ConfigDict, Field

from keel.schemas.policy import GuardKind

__all__ = [
    "DEFAULT_PII_ENTITIES",
    "GUARD_SCREEN",
    "PII_ENTITIES",
    "GuardFinding",
    "GuardSettings",
    "GuardText",
    "ScreenRequest",
    "ScreenResult",
]

PII_ENTITIES = (
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "CREDIT_CARD",
    "IBAN_CODE",
    "US_SSN",
    "IP_ADDRESS",
    "CRYPTO",
    "POSTAL_ADDRESS",
)
"""PII the pattern recognizers find without a language model."""
DEFAULT_PII_ENTITIES = (
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "CREDIT_CARD",
    "IBAN_CODE",
    "US_SSN",
    "POSTAL_ADDRESS",
)
"""What is looked for unless configured: IP addresses are left out, since a request to
fetch a URL names one without being about a person."""

GUARD_SCREEN = "guard.screen"
"""(Local) activity type that runs the guards over some texts."""


class GuardSettings(BaseModel):
    """`[guards]`: what the guards look for, and what leaves the machine."""

    model_config = ConfigDict(extra="forbid")

    pii: bool = Field(default=True, description="Look for PII (Presidio's pattern recognizers).")
    pii_entities: list[str] = Field(
        default_factory=lambda: list(DEFAULT_PII_ENTITIES), description="Entity types to find."
    )
    pii_min_score: float = Field(
        default=0.4, ge=0.0, le=1.0, description="Weaker hits are ignored."
    )
    redact_external: bool = Field(
        default=False,
        description="Replace PII with placeholders in what goes to a non-local model, and put "
        "it back in the answer.",
    )
    policy_terms: list[str] = Field(
        default_factory=list,
        description="Words or phrases that send a run to a person, for every agent (an "
        "agent's own list is `escalation.agents.<name>.policy_terms`).",
    )
    injection: bool = Field(
        default=True,
        description="Look for instructions addressed to the model (`suspected_injection`) in "
        "what a run screens, such as the customer's message.",
    )


class GuardText(BaseModel):
    """One text to screen, and where it comes from (`question`, `draft`, `arguments`, …)."""

    field: str
    text: str


class GuardFinding(BaseModel):
    """One thing a guard flagged."""

    kind: GuardKind
    field: str = Field(description="Which text: `question`, `draft`, `passage:<id>`, ….")
    label: str = Field(description="What was found: a PII entity type, a policy term, a flag.")
    start: int | None = Field(default=None, ge=0, description="Offset in the text, if any.")
    end: int | None = Field(default=None, ge=0)
    score: float = Field(default=1.0, ge=0.0, le=1.0)


class ScreenRequest(BaseModel):
    """Activity input: texts to screen."""

    texts: list[GuardText]
    terms: list[str] = Field(
        default_factory=list, description="The run's policy terms, besides the configured ones."
    )


class ScreenResult(BaseModel):
    """Activity output: every finding, in the order of the texts."""

    findings: list[GuardFinding] = Field(default_factory=list[GuardFinding])
