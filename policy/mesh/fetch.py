"""Reading what a config names by http(s) URL (an OpenAPI spec): the one fetch the proxy and `agent-mesh discover`
share. The core reads local files only (no httpx there); httpx is imported on first use."""

from __future__ import annotations

FETCH_TIMEOUT_SECONDS = 20.0


def fetch_text(url: str) -> str:
    """The text at an http(s) URL (redirects followed). Raises ValueError naming the URL."""
    import httpx

    try:
        resp = httpx.get(url, timeout=FETCH_TIMEOUT_SECONDS, follow_redirects=True)
    except httpx.HTTPError as exc:
        raise ValueError(f"cannot fetch OpenAPI spec {url}: {exc}") from None
    if resp.status_code != 200:
        raise ValueError(f"cannot fetch OpenAPI spec {url}: HTTP {resp.status_code}")
    return resp.text
