"""A hostile agent against `servers.X.upstream`: the request judged as one server's operation must reach the
upstream as that very operation. The base path is matched percent-decoded (as upstream routers read it) while
the upstream's path replaces it as sent; a base path spelled otherwise than plainly (needless escapes, another
letter case) is therefore refused, never judged as `/api/v3/pet/1` and sent as another route."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.addons.harness import make_flow
from tests.addons.test_classify_upstream import CONFIG, governed


@pytest.mark.parametrize(
    "path", ["/%61pi/v3/pet/1", "/api/v%33/pet/1", "/API/v3/pet/1", "/api/v3/../v3/pet/1", "/api%2Fv3/pet/1"]
)
async def test_a_base_path_spelled_otherwise_is_refused_not_sent_to_the_upstream(tmp_path: Path, path: str) -> None:
    with governed(tmp_path) as h:
        flow = make_flow("GET", f"https://shop.mesh-test.invalid{path}")
        h.addon.requestheaders(flow)
        await h.addon.request(flow)
        assert flow.response is not None
        assert flow.response.status_code in (400, 403)
        assert flow.request.host == "shop.mesh-test.invalid"  # never pointed at the upstream


ALLOW_THE_REST = CONFIG.replace(
    '      - {name: no-deletes, tools: ["shop.DELETE *"], action: deny}',
    '      - {name: no-deletes, tools: ["shop.DELETE *"], action: deny}\n'
    '      - {name: rest, tools: ["*"], action: allow}',
)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:4010/pet/1",  # shop's upstream, the mock its calls are sent to
        "http://localhost:4010/pet/1",
        "http://127.1:4010/pet/1",
        "http://2130706433:4010/pet/1",
        "http://0.0.0.0:4010/pet/1",
        "http://[::ffff:127.0.0.1]:4010/pet/1",
        "http://127.0.0.1:9000/staging/mcp",  # notes' upstream
    ],
)
async def test_a_server_is_not_reached_at_its_upstream_past_the_rules_of_its_public_url(
    tmp_path: Path, url: str
) -> None:
    # `shop.DELETE *` is denied; sent to where shop lives, the same DELETE would be some other host's call
    with governed(tmp_path, ALLOW_THE_REST) as h:
        flow = make_flow("DELETE", url)
        h.addon.requestheaders(flow)
        await h.addon.request(flow)
        assert flow.response is not None
        assert flow.response.status_code == 403
        assert b"upstream" in flow.response.content
        ((rec,),) = [h.records]
        assert rec["verdict"] == "deny"


async def test_the_public_url_still_reaches_the_upstream(tmp_path: Path) -> None:
    with governed(tmp_path, ALLOW_THE_REST) as h:
        flow = make_flow("GET", "https://shop.mesh-test.invalid/api/v3/pet/1")
        h.addon.requestheaders(flow)
        await h.addon.request(flow)
        assert flow.response is None
        assert flow.request.url == "http://127.0.0.1:4010/pet/1"


async def test_another_port_of_the_upstreams_host_is_an_ordinary_host(tmp_path: Path) -> None:
    with governed(tmp_path, ALLOW_THE_REST) as h:
        flow = make_flow("GET", "http://127.0.0.1:4011/pet/1")
        h.addon.requestheaders(flow)
        await h.addon.request(flow)
        assert flow.response is None
