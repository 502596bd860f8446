"""The `support` agent as the API knows it: its spec and input model, none of its graph.

The graph (`workflows.agents.support.graph`) imports LangGraph; the API, which only
validates inputs and lists agents, loads this module alone.

Triage: `classify` sorts the customer's message into `TRIAGE_LABELS`; those in
`TRIAGE_ESCALATE` go to a person whatever the answer's confidence. A model route reads the
labels' descriptions; the keyless `local` model fits a classifier on the hand-written
examples in `triage_examples.jsonl`, the first label being the one that needs nobody.
"""

from pathlib import Path

from pydantic import BaseModel, Field

from keel.agents import AgentSpec

__all__ = ["POLICY_TERMS", "SPEC", "TRIAGE_ESCALATE", "TRIAGE_LABELS", "SupportInput"]

TRIAGE_LABELS = (
    "general: a question about how Quillpad works that the help centre can answer",
    "account_specific: someone must look at or act on this customer's own account, data, "
    "subscription or payment",
    "charge_dispute: disputes a specific charge or asks for that money back",
    "security_incident: a compromised account, phishing, leaked codes or leaked data",
    "legal: a GDPR or CCPA request, a subpoena, police, a contract or data processing "
    "agreement, a legal threat",
    "complaint: anger, asks for a manager or compensation, threatens to leave",
)
"""Triage labels as `name: description`; the first needs no person."""
TRIAGE_ESCALATE = (
    "account_specific",
    "charge_dispute",
    "security_incident",
    "legal",
    "complaint",
)
"""The triage labels a person handles, unless `[escalation]` configures others."""
POLICY_TERMS = (
    "lawsuit",
    "lawsuits",
    "attorney",
    "lawyer",
    "lawyers",
    "chargeback",
    "chargebacks",
    "subpoena",
    "GDPR request",
    "court order",
    "legal action",
    "small claims",
)
"""Words that send a support run to a person, unless `[escalation]` configures others."""


class SupportInput(BaseModel):
    """A customer's question."""

    question: str = Field(min_length=3, max_length=4_000, description="The customer's question.")


SPEC = AgentSpec(
    name="support",
    description=(
        "Answers a customer's question about Quillpad from the help centre, citing the "
        "articles it used; a question it cannot answer confidently goes to a reviewer."
    ),
    input_model=SupportInput,
    text_field="question",
    graph="workflows.agents.support.graph:build_graph",
    routes=("default",),
    triage_examples=Path(__file__).with_name("triage_examples.jsonl"),
    triage_escalate=TRIAGE_ESCALATE,
    policy_terms=POLICY_TERMS,
)
