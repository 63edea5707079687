"""Shared fixtures for the HTTP adapter's tests: where the real OpenAPI specs are installed."""

from __future__ import annotations

from pathlib import Path

import pytest

NPM = Path(__file__).resolve().parents[2] / ".targets" / "npm" / "node_modules"
OAS_EXAMPLES = NPM / "@readme" / "oas-examples"
GITHUB_SPEC = NPM / "@octokit" / "openapi" / "generated" / "api.github.com.json"


def require(path: Path) -> Path:
    """The installed target file, or a skip that says how to install it."""
    if not path.exists():
        pytest.skip(f"{path} is missing: run scripts/install-targets.sh (make targets)")
    return path
