"""The codec server's bodies: Temporal payloads in protobuf's JSON form (bytes as base64)."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["CodecPayload", "CodecPayloads", "CodecSession"]


class CodecPayload(BaseModel):
    """One `temporal.api.common.v1.Payload`, as protobuf writes it in JSON."""

    # Other fields of the message (e.g. `externalPayloads`) go through as they are.
    model_config = ConfigDict(extra="allow")

    metadata: dict[str, str] = Field(
        default_factory=dict[str, str], description="Each value base64, e.g. `encoding`."
    )
    data: str = Field(default="", description="The payload's bytes, base64.")


class CodecPayloads(BaseModel):
    """The body of `POST /codec/encode` and `/codec/decode`, and of their answers."""

    payloads: list[CodecPayload] = Field(
        default_factory=list[CodecPayload], description="Payloads, in order."
    )


class CodecSession(BaseModel):
    """`POST /codec/session`: who the browser now decodes as, and until when."""

    principal: str | None = Field(description="The key's principal; None while the API is open.")
    role: str
    expires_at: datetime | None = Field(
        default=None, description="When the cookie ends; None when no cookie was needed (open)."
    )
