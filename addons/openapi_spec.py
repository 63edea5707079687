"""OpenAPI specs for the proxy: the reduction is the core's (policy/core/openapi_spec.py); this adds reading a
spec from an http(s) URL, which needs the network (the core reads local files only)."""

from __future__ import annotations

from pathlib import Path

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
from policy.mesh.fetch import FETCH_TIMEOUT_SECONDS, fetch_text

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


def read_spec_text(location: str, base_dir: str | Path = ".") -> str:
    """The document's text from a file (relative to base_dir) or an http(s) URL. Raises ValueError."""
    return _core.read_spec_text(location, base_dir, fetch_text)


def load_spec(location: str, base_dir: str | Path = ".") -> ApiSpec:
    """Read and parse the spec at a file path or URL. Raises ValueError with the location in the message."""
    return _core.load_spec(location, base_dir, fetch_text)


def starter_policy(spec_path: str, server: str) -> str:
    """The core's starter config for one API (policy/core/openapi_spec.py), its spec read from a file or URL."""
    return _core.starter_policy(spec_path, server, fetch_text)
