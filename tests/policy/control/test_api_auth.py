"""Every control route needs the operator token; agent credentials never work; the page needs CSRF."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import httpx
import pytest

from policy.control import create_app
from policy.control.plane import ControlPlane
from tests.policy.control.conftest import AGENT_TOKEN, BASE, TOKEN

ROUTES = [
    ("GET", "/api/approvals"),
    ("GET", "/api/approvals/abcdef123456"),
    ("POST", "/api/approvals/abcdef123456/approve"),
    ("POST", "/api/approvals/abcdef123456/deny"),
    ("GET", "/api/grants"),
    ("POST", "/api/grants"),
    ("DELETE", "/api/grants/abcdef123456"),
    ("GET", "/api/memory"),
    ("POST", "/api/memory/forget"),
    ("DELETE", "/api/memory/abcdef123456"),
    ("GET", "/api/traces"),
    ("GET", "/api/traces/stream"),
    ("GET", "/api/events"),
    ("GET", "/api/sessions"),
    ("GET", "/api/policies"),
    ("POST", "/api/decide"),
    ("POST", "/decide"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("GET", "/ui/inbox"),
    ("GET", "/ui/trace/1"),
]

AGENT_CREDENTIALS = [
    {},
    {"Authorization": f"Bearer {AGENT_TOKEN}"},
    {"Authorization": "Basic " + base64.b64encode(f"claude:{AGENT_TOKEN}".encode()).decode()},
    {"Proxy-Authorization": "Basic " + base64.b64encode(f"claude:{AGENT_TOKEN}".encode()).decode()},
    {"Authorization": f"Bearer {TOKEN}x"},
    {"Authorization": TOKEN},
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
@pytest.mark.parametrize("headers", AGENT_CREDENTIALS, ids=["none", "agent-bearer", "agent-basic", "proxy-auth",
                                                           "wrong", "no-scheme"])  # fmt: skip
async def test_every_route_refuses_requests_without_the_operator_token(
    anonymous: httpx.AsyncClient, method: str, path: str, headers: dict[str, str]
) -> None:
    r = await anonymous.request(method, path, headers={**headers, "Content-Type": "application/json"}, content="{}")
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["code"] == "unauthorized"
    assert body["status"] == 401


async def test_health_answers_without_a_token_and_reveals_nothing(anonymous: httpx.AsyncClient) -> None:
    r = await anonymous.get("/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "store": "ok"}


async def test_a_foreign_host_header_is_refused_against_dns_rebinding(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/approvals", headers={"Host": "evil.example:8181"})
    assert r.status_code == 400
    assert r.json()["code"] == "bad_host"


async def test_the_operator_token_must_differ_from_every_agent_token() -> None:
    from policy.control import check_token

    with pytest.raises(ValueError, match="agent"):
        check_token(AGENT_TOKEN + "-but-longer", [AGENT_TOKEN + "-but-longer"])
    with pytest.raises(ValueError, match="at least"):
        check_token("short", [])
    assert check_token(TOKEN, [AGENT_TOKEN]) == TOKEN


@pytest.fixture
async def browser(plane: ControlPlane) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """A client logged in through a one-time link, and the page's CSRF token."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(plane)), base_url=BASE) as c:
        r = await c.get(f"/login?code={plane.auth.login_code()}")
        assert r.status_code == 200
        cookie = r.headers["set-cookie"]
        assert "httponly" in cookie.lower()
        assert "samesite=strict" in cookie.lower()
        page = await c.get("/")
        assert page.status_code == 200
        yield c, page.text.split('name="csrf-token" content="')[1].split('"')[0]


async def test_a_login_link_works_once_and_sets_a_strict_http_only_session(
    plane: ControlPlane, browser: tuple[httpx.AsyncClient, str]
) -> None:
    c, _ = browser
    r = await c.get("/api/approvals")
    assert r.status_code == 200
    code = plane.auth.login_code()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(plane)), base_url=BASE) as other:
        assert (await other.get(f"/login?code={code}")).status_code == 200
        assert (await other.get(f"/login?code={code}")).status_code == 401


async def test_a_session_cannot_change_state_without_the_csrf_token(browser: tuple[httpx.AsyncClient, str]) -> None:
    c, csrf = browser
    body = {"agent": "claude", "tool": "fs.write_file", "for": "5m"}
    r = await c.post("/api/grants", json=body)
    assert r.status_code == 403
    assert r.json()["code"] == "csrf"
    r = await c.post("/api/grants", json=body, headers={"X-CSRF-Token": "nope"})
    assert r.status_code == 403
    r = await c.post("/api/grants", json=body, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 201


async def test_a_cross_site_form_post_is_refused_for_its_content_type(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/grants", data={"agent": "x", "tool": "y", "for": "5m"})
    assert r.status_code == 415


async def test_the_login_form_takes_the_operator_token(anonymous: httpx.AsyncClient) -> None:
    r = await anonymous.post("/login", data={"token": AGENT_TOKEN})
    assert r.status_code == 401
    r = await anonymous.post("/login", data={"token": TOKEN})
    assert r.status_code == 303
    assert "mesh_session=" in r.headers["set-cookie"]


async def test_the_page_redirects_to_login_without_a_session(anonymous: httpx.AsyncClient) -> None:
    r = await anonymous.get("/")
    assert r.status_code == 303
    assert r.headers["location"] == "/login"
    assert "frame-ancestors 'none'" in (await anonymous.get("/login")).headers["content-security-policy"]
