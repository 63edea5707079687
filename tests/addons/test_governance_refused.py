"""A request the addon refuses as unjudgeable gets a 400 and still leaves exactly one trace record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.addons.harness import harness, make_flow


@pytest.mark.parametrize(
    ("method", "url", "body", "why"),
    [
        ("POST", "https://petstore.test/v2/pet/7%2Fpurge", None, "encodes '/'"),
        ("GET", "https://petstore.test/v2/pet/7?fields=a&fields=b", None, "repeats 'fields'"),
        ("POST", "https://petstore.test/v2/pet?name=a", {"name": "b"}, "both the query and the body"),
    ],
)
async def test_an_unjudgeable_request_is_refused_and_traced_once(
    tmp_path: Path, method: str, url: str, body: dict[str, str] | None, why: str
) -> None:
    with harness(tmp_path) as h:
        flow = make_flow(method, url, body)
        await h.addon.request(flow)
        assert flow.response is not None
        assert flow.response.status_code == 400
        assert why in json.loads(flow.response.content or b"")["detail"]
        (rec,) = h.records
        assert (rec["verdict"], rec["rule"], rec["outcome"], rec["surface"]) == (
            "deny",
            "proxy.bad_request",
            "refused",
            "http",
        )
        assert f"{method} /v2/pet" in rec["tool"]
        assert why in rec["args"]["refused"]


async def test_a_body_that_cannot_be_decoded_is_refused_and_traced_once(tmp_path: Path) -> None:
    with harness(tmp_path) as h:
        flow = make_flow("POST", "https://petstore.test/v2/pet", b"{}", {"content-encoding": "gzip"})
        flow.request.raw_content = b"not gzip"  # as sent: a body its own encoding cannot decode
        await h.addon.request(flow)
        assert flow.response is not None
        assert flow.response.status_code == 400
        (rec,) = h.records
        assert (rec["verdict"], rec["rule"], rec["outcome"]) == ("deny", "proxy.bad_request", "refused")
        assert "gzip" in rec["args"]["refused"]


async def test_a_request_without_a_host_header_reaches_the_upstream_with_the_judged_host(tmp_path: Path) -> None:
    # Werkzeug would run it with no host at all (differential finding F2).
    with harness(tmp_path) as h:
        flow = make_flow("GET", "https://petstore.test/v2/pet/7")
        assert "host" not in flow.request.headers
        await h.addon.request(flow)
        assert flow.response is None
        assert flow.request.headers["host"] == "petstore.test"
