"""The CLI's side of the Keel API: calls, problems as `ApiError`, ids by unique prefix.

A run is named by its id (`run-<32 hex digits>`) or by any unique start of it, with or
without `run-`; a review by its id (`<run id>.review-<n>`, `<run id>.audit`), whose run
part may be shortened the same way.
"""

import json
from collections.abc import Iterator
from typing import Any

import httpx

from keel.errors import KeelError, kind_of_problem

__all__ = ["Api", "ApiError", "resolve_review", "resolve_run"]

_RUN_PREFIX = "run-"


class ApiError(Exception):
    """The API answered with a problem, or could not be reached.

    The client side of a problem response, not a failure of Keel's own: `kind` is the
    catalogued failure (`keel.errors`) its problem `type` names, if any.
    """

    def __init__(self, message: str, kind: type[KeelError] | None = None) -> None:
        super().__init__(message)
        self.kind = kind


class Api:
    """The Keel API over HTTP: JSON answers, problems raised as `ApiError`."""

    def __init__(self, base_url: str, api_key: str = "") -> None:
        self._base = base_url
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(base_url=base_url, timeout=30, headers=headers)

    def call(self, method: str, path: str, *, missing_ok: bool = False, **kwargs: Any) -> Any:
        """The JSON answer (None when there is none, or for a 404 when `missing_ok`).

        Raises:
            ApiError: Any other error answer, or the API could not be reached.
        """
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as err:
            raise ApiError(
                f"cannot reach the Keel API at {self._base} ({err}); is `keel up` running?"
            ) from err
        if missing_ok and response.status_code == 404:
            return None
        if response.is_error:
            try:
                problem = response.json()
            except ValueError:
                raise ApiError(f"HTTP {response.status_code}: {response.text}") from None
            kind = kind_of_problem(problem.get("type"))
            detail = problem.get("detail", response.text)
            code = kind.code if kind is not None else problem.get("type", "?")
            raise ApiError(f"HTTP {response.status_code}: {detail} [{code}]", kind)
        return response.json() if response.content else None

    def post(self, path: str, body: dict[str, Any]) -> Any:
        """POST `body` as JSON, leaving out the fields that are None (unset options)."""
        return self.call("POST", path, json={k: v for k, v in body.items() if v is not None})

    def events(self, path: str) -> Iterator[dict[str, Any]]:
        """The server-sent events at `path`, as they arrive."""
        try:
            with self._http.stream("GET", path, timeout=None) as response:
                if response.is_error:
                    response.read()
                    raise ApiError(f"HTTP {response.status_code}: {response.text}")
                for line in response.iter_lines():
                    if line.startswith("data: "):
                        yield json.loads(line.removeprefix("data: "))
        except httpx.TransportError as err:
            raise ApiError(f"lost the Keel API at {self._base} ({err})") from err


def resolve_run(api: Api, run_id: str) -> str:
    """The id of the one run `run_id` names: itself, or the run it is a unique start of."""
    if api.call("GET", f"/v1/runs/{run_id}", missing_ok=True) is not None:
        return run_id
    prefix = run_id if run_id.startswith(_RUN_PREFIX) else _RUN_PREFIX + run_id
    page = api.call("GET", "/v1/runs", params={"id_prefix": prefix, "limit": 5})
    found = [run["run_id"] for run in page["runs"]]
    if not found:
        raise ApiError(f"no run {run_id!r}, and no run id starts with {prefix!r}")
    if len(found) > 1:
        more = ", …" if page["next_page_token"] else ""
        raise ApiError(
            f"{run_id!r} starts more than one run id ({', '.join(found)}{more}): "
            "give more of the id"
        )
    return found[0]


def resolve_review(api: Api, review_id: str) -> str:
    """The id of the review `review_id` names: itself, or with its run part resolved."""
    if api.call("GET", f"/v1/reviews/{review_id}", missing_ok=True) is not None:
        return review_id
    run_part, dot, rest = review_id.partition(".")
    if not dot:
        raise ApiError(
            f"no review {review_id!r}: a review id reads <run id>.review-<n> or <run id>.audit"
        )
    return f"{resolve_run(api, run_part)}.{rest}"
