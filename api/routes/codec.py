"""`/codec`: Temporal's codec server protocol, so the Temporal UI and CLI show payloads decrypted.

`POST /codec/decode` and `POST /codec/encode` take and answer `{"payloads": [...]}` in
protobuf's JSON form (each bytes field base64) and run them through the keyring's codec
(`keel.encryption`): decode opens what any key of the ring encrypted and passes clear
payloads through; encode encrypts under the current key. The UI and the CLI add the path:
configure them with the endpoint `<API>/codec` (`temporal ... --codec-endpoint`,
`temporal server start-dev --ui-codec-endpoint`, which `keel up` passes). Their
`X-Namespace` header is not needed: one keyring serves every namespace Keel writes to.

Only operators and admins may call it (no key: 401; another role: 403). Browsers may call
it from the Temporal UI's origins only (`KEEL_CODEC_ORIGINS`): CORS is answered on these
paths alone, and an open API (no key yet) takes the UI's calls but no other page's.
"""

from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request
from google.protobuf import json_format
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send
from temporalio.api.common.v1 import Payload, Payloads

from api.auth import require_from_ui
from api.problems import problem_responses
from keel.encryption import EncryptionCodec
from keel.errors import (
    Forbidden,
    MalformedRequest,
    PayloadUndecryptable,
    RouteNotFound,
    Unauthorized,
    UnknownPayloadKey,
)
from keel.schemas.codec import CodecPayloads
from keel.settings import Settings

__all__ = ["CodecCors", "decode", "encode", "install_codec_server", "router"]

router = APIRouter(
    prefix="/codec",
    tags=["codec"],
    dependencies=[require_from_ui("operator")],
    responses=problem_responses(Unauthorized, Forbidden, RouteNotFound),
)


async def _codec(request: Request) -> EncryptionCodec:
    codec: EncryptionCodec | None = request.app.state.codec
    if codec is None:
        raise RouteNotFound(
            "payloads are not encrypted here (no payload keyring): there is nothing to decode"
        )
    return codec


CodecDep = Annotated[EncryptionCodec, Depends(_codec)]


@router.post("/decode", responses=problem_responses(UnknownPayloadKey, PayloadUndecryptable))
async def decode(body: CodecPayloads, codec: CodecDep) -> CodecPayloads:
    """The payloads decrypted (clear ones as they came)."""
    return _as_body(await codec.decode(_as_payloads(body).payloads))


@router.post("/encode")
async def encode(body: CodecPayloads, codec: CodecDep) -> CodecPayloads:
    """The payloads encrypted under the current key."""
    return _as_body(await codec.encode(_as_payloads(body).payloads))


def _as_payloads(body: CodecPayloads) -> Payloads:
    try:
        return json_format.ParseDict(body.model_dump(), Payloads())
    except json_format.ParseError as err:
        raise MalformedRequest(f"not Temporal payloads in protobuf JSON: {err}") from None


def _as_body(payloads: Sequence[Payload]) -> CodecPayloads:
    message = Payloads(payloads=payloads)
    return CodecPayloads.model_validate(json_format.MessageToDict(message))


class CodecCors(CORSMiddleware):
    """CORS for the codec server's paths only: the rest of the API answers no other origin."""

    def __init__(self, app: ASGIApp, origins: list[str]) -> None:
        super().__init__(
            app,
            allow_origins=origins,
            allow_methods=["POST"],
            allow_headers=["authorization", "content-type", "x-namespace"],
        )
        self._api = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """CORS on `/codec/...`; every other request goes straight on."""
        if scope["type"] == "http" and scope["path"].startswith(f"{router.prefix}/"):
            await super().__call__(scope, receive, send)
        else:
            await self._api(scope, receive, send)


def install_codec_server(app: FastAPI, settings: Settings) -> None:
    """Serve `/codec` from `app`, answering CORS for the Temporal UI's origins."""
    app.include_router(router)
    app.add_middleware(CodecCors, origins=settings.codec_cors_origins)
