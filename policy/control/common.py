"""Helpers the control routes share: the plane of a request, JSON bodies, typed query parameters."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from policy.control.plane import ControlPlane, Principal
from policy.control.problems import ApiError, bad_request
from policy.core.config import parse_duration

type Handler = Callable[[Request], Awaitable[Response]]

MAX_LIMIT = 1000


def plane_of(request: Request) -> ControlPlane:
    plane: ControlPlane = request.app.state.plane
    return plane


def authed(request: Request) -> tuple[ControlPlane, Principal]:
    plane = plane_of(request)
    return plane, plane.principal(request)


def ok(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status)


async def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object. Only `application/json` is accepted: a cross-site form cannot send it."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise bad_request(f"the body is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if not isinstance(value, dict):
        raise bad_request("the body must be a JSON object")
    return value


def limit_param(request: Request, default: int = 100) -> int:
    raw = request.query_params.get("limit")
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(f"limit: {raw!r} is not an integer") from None
    if not 1 <= value <= MAX_LIMIT:
        raise bad_request(f"limit must be between 1 and {MAX_LIMIT}")
    return value


def text_field(body: dict[str, Any], key: str, *, required: bool = False, default: str = "") -> str:
    value = body.get(key)
    if value is None:
        if required:
            raise bad_request(f"{key} is required")
        return default
    if not isinstance(value, str):
        raise bad_request(f"{key} must be a string")
    if required and not value.strip():
        raise bad_request(f"{key} must not be empty")
    return value


def duration_field(body: dict[str, Any], key: str) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise bad_request(f"{key}: {exc}") from None
    if seconds <= 0:
        raise bad_request(f"{key} must be a positive duration")
    return seconds


def confidence_field(body: dict[str, Any]) -> float | None:
    value = body.get("confidence")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise bad_request(f"confidence {value!r} is not a number between 0 and 1")
    return float(value)
