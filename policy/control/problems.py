"""Errors of the control API as RFC 9457 `application/problem+json` responses with a stable `code`."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

PROBLEM_TYPE = "application/problem+json"

_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    409: "Conflict",
    415: "Unsupported media type",
    503: "Service unavailable",
}


class ApiError(Exception):
    """Raised by a route; rendered as problem+json with its status, code and detail."""

    def __init__(self, status: int, code: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.extra = extra


def problem(status: int, code: str, detail: str, **extra: Any) -> Response:
    body = {
        "type": f"https://agent-mesh.dev/problems/{code}",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "code": code,
        "detail": detail,
        **extra,
    }
    headers = {"WWW-Authenticate": 'Bearer realm="agent-mesh"'} if status == 401 else None
    return Response(json.dumps(body), status_code=status, media_type=PROBLEM_TYPE, headers=headers)


def render(exc: ApiError) -> Response:
    return problem(exc.status, exc.code, exc.detail, **exc.extra)


def bad_request(detail: str) -> ApiError:
    return ApiError(400, "bad_request", detail)


def not_found(detail: str) -> ApiError:
    return ApiError(404, "not_found", detail)
