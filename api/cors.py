"""CORS: off unless `KEEL_CORS_ORIGINS` names origins, and then for exactly those.

Off, the API sends no CORS header at all and a preflight is `405 method-not-allowed` (no
route takes OPTIONS), so a browser lets no other site's page read an answer or send a
request that needs a preflight (any with a key, or a JSON body). On, a page of a listed
origin may call every route with a key in `Authorization` or `X-API-Key`; no cookies are
involved, so credentials stay off. A preflight from any other origin, or for another method
or header, is `403 cross-origin-refused`.
"""

from fastapi import FastAPI
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response

from api.problems import problem_response
from keel.errors import CrossOriginRefused

__all__ = ["install_cors"]

_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
_HEADERS = ("Authorization", "X-API-Key", "Content-Type")
_EXPOSED = ("Location", "Retry-After", "X-Keel-Auth")


class _ListedOrigins(CORSMiddleware):
    """Starlette's CORS, its refused preflight answered as a problem."""

    def preflight_response(self, request_headers: Headers) -> Response:
        """The preflight's answer: allowed, or a `cross-origin-refused` problem."""
        response = super().preflight_response(request_headers)
        if response.status_code == 200:
            return response
        why = bytes(response.body).decode().removeprefix("Disallowed CORS ")
        origin = request_headers.get("origin", "")
        return problem_response(
            CrossOriginRefused(f"{origin!r} may not call this API this way (its {why})")
        )


def install_cors(app: FastAPI, origins: list[str]) -> None:
    """Let pages of exactly `origins` call the API from a browser; nothing when empty."""
    if origins:
        app.add_middleware(
            _ListedOrigins,
            allow_origins=origins,
            allow_methods=_METHODS,
            allow_headers=_HEADERS,
            expose_headers=_EXPOSED,
        )
