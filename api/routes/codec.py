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
paths alone, with credentials, and an open API (no key yet) takes the UI's calls but no other
page's.

The Temporal UI sends no Keel key. Where keys are required, an operator signs in once at
`/codec` (the page posts the key to `POST /codec/session`), which keeps the key in an
HttpOnly, SameSite=Strict cookie on the `/codec` path for `SESSION_S`; the UI sends it along
when its codec setting "include cross-origin credentials" is on. `DELETE /codec/session`
forgets it.
"""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request, Response, status
from google.protobuf import json_format
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send
from temporalio.api.common.v1 import Payload, Payloads

from api.auth import CODEC_COOKIE, Principal, require_from_ui
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
from keel.schemas.codec import CodecPayloads, CodecSession
from keel.settings import Settings

__all__ = [
    "SESSION_S",
    "CodecCors",
    "close_session",
    "decode",
    "encode",
    "install_codec_server",
    "open_session",
    "router",
]

SESSION_S = 8 * 3600
"""How long a browser keeps an operator's key for the codec server: a shift."""

_Operator = Annotated[Principal, require_from_ui("operator")]

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


@router.post("/session")
async def open_session(request: Request, response: Response, principal: _Operator) -> CodecSession:
    """Keep the caller's key in a cookie, so the Temporal UI's page decodes as them."""
    key = _presented_key(request)
    if principal.id is None or key is None:  # open: the UI needs no key
        return CodecSession(principal=None, role=principal.role)
    response.set_cookie(
        CODEC_COOKIE,
        key,
        max_age=SESSION_S,
        path=router.prefix,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    expires_at = datetime.now(UTC) + timedelta(seconds=SESSION_S)
    return CodecSession(principal=principal.id, role=principal.role, expires_at=expires_at)


@router.delete("/session", status_code=status.HTTP_204_NO_CONTENT)
async def close_session(response: Response) -> None:
    """Forget the key this browser keeps for the codec server."""
    response.delete_cookie(CODEC_COOKIE, path=router.prefix, httponly=True, samesite="strict")


def _presented_key(request: Request) -> str | None:
    """The key the request authenticated with: its header's, else its cookie's."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials:
        return credentials
    return request.headers.get("x-api-key") or request.cookies.get(CODEC_COOKIE)


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
            allow_credentials=True,
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
