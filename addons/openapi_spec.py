"""OpenAPI specs for the proxy: the reduction is the core's (policy/core/openapi_spec.py); this adds reading a
spec from an http(s) URL, which needs the network (the core reads local files only)."""

from __future__ import annotations

from pathlib import Path

import httpx

from policy.core import openapi_spec as _core
from policy.core.openapi_spec import (
    METHODS,
    READ_METHODS,
    ApiSpec,
    Operation,
    base_path_of,
    parse_document,
    parse_spec,
)

FETCH_TIMEOUT_SECONDS = 20.0

__all__ = [
    "FETCH_TIMEOUT_SECONDS",
    "METHODS",
    "READ_METHODS",
    "ApiSpec",
    "Operation",
    "base_path_of",
    "fetch_text",
    "load_spec",
    "parse_document",
    "parse_spec",
    "read_spec_text",
    "starter_policy",
]


def fetch_text(url: str) -> str:
    """The text at an http(s) URL (redirects followed). Raises ValueError naming the URL."""
    try:
        resp = httpx.get(url, timeout=FETCH_TIMEOUT_SECONDS, follow_redirects=True)
    except httpx.HTTPError as exc:
        raise ValueError(f"cannot fetch OpenAPI spec {url}: {exc}") from None
    if resp.status_code != 200:
        raise ValueError(f"cannot fetch OpenAPI spec {url}: HTTP {resp.status_code}")
    return resp.text


def read_spec_text(location: str, base_dir: str | Path = ".") -> str:
    """The document's text from a file (relative to base_dir) or an http(s) URL. Raises ValueError."""
    return _core.read_spec_text(location, base_dir, fetch_text)


def load_spec(location: str, base_dir: str | Path = ".") -> ApiSpec:
    """Read and parse the spec at a file path or URL. Raises ValueError with the location in the message."""
    return _core.load_spec(location, base_dir, fetch_text)


def starter_policy(spec_path: str, server: str) -> str:
    """The core's starter config for one API (policy/core/openapi_spec.py), its spec read from a file or URL."""
    return _core.starter_policy(spec_path, server, fetch_text)
