"""Every spelling of an address reads as the address the upstream connection will reach, and configured servers,
the control plane and the proxy itself are found by address, port and path prefix, not by host string."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from addons.addresses import Address, Listener, LocalAddresses, Resolver, canonical_host, numeric_address
from addons.reach import Reach, names_disagree, split_authority
from addons.servers import ServerMap, routing_path
from policy import load_config_text

LOOPBACK = ipaddress.IPv4Address("127.0.0.1")


@pytest.mark.parametrize(
    "spelling",
    ["127.0.0.1", "127.1", "2130706433", "0x7f000001", "0177.0.0.1", "0x7f.1", "127.0.1", "[::ffff:127.0.0.1]"],
)
def test_numeric_spellings_of_loopback_are_one_address(spelling: str) -> None:
    assert numeric_address(spelling) == LOOPBACK
    assert canonical_host(spelling) == "127.0.0.1"


@pytest.mark.parametrize("name", ["localhost.example", "127.0.0.1.nip.io", "1.2.3.4.5", "0x", "", "12a"])
def test_names_are_not_numeric(name: str) -> None:
    assert numeric_address(name) is None


def _spell(value: int, parts: int, bases: list[str]) -> str:
    """inet_aton's forms: a.b.c.d, a.b.c (c 16 bits), a.b (b 24 bits), a (32 bits); each part dec/oct/hex."""
    widths = {1: [32], 2: [8, 24], 3: [8, 8, 16], 4: [8, 8, 8, 8]}[parts]
    numbers, shift = [], 32
    for width in widths:
        shift -= width
        numbers.append((value >> shift) & ((1 << width) - 1))
    out = []
    for number, base in zip(numbers, bases, strict=False):
        out.append({"dec": str(number), "oct": "0" + format(number, "o"), "hex": hex(number)}[base])
    return ".".join(out)


@settings(max_examples=300, deadline=None)
@given(
    value=st.integers(0, 2**32 - 1),
    parts=st.integers(1, 4),
    bases=st.lists(st.sampled_from(["dec", "oct", "hex"]), min_size=4, max_size=4),
)
def test_every_inet_aton_spelling_reads_as_the_resolver_reads_it(value: int, parts: int, bases: list[str]) -> None:
    spelling = _spell(value, parts, bases)
    expected = ipaddress.IPv4Address(value)
    assert numeric_address(spelling) == expected
    # The C resolver is what the upstream connection uses: the two must agree on every spelling.
    resolved = {info[4][0] for info in socket.getaddrinfo(spelling, None, socket.AF_INET, socket.SOCK_STREAM)}
    assert resolved == {str(expected)}


CONFIG = """
version: 1
servers:
  notes: {mcp_url: "http://127.0.0.1:9000/servers/notes/mcp"}
  admin: {mcp_url: "http://127.0.0.1:9000/servers/admin/mcp"}
  api: {base_url: "https://api.test/v1"}
"""


@pytest.fixture
def servers(tmp_path: Path) -> ServerMap:
    return ServerMap.from_config(load_config_text(CONFIG, "c.yaml").config, tmp_path)


def _find(servers: ServerMap, host: str, port: int, path: str) -> str | None:
    addresses: tuple[Address, ...] = Resolver().now(host)
    target = servers.match(host, port, path, addresses).target
    return None if target is None else target.server


def test_two_mcp_servers_on_one_origin_are_told_apart_by_path(servers: ServerMap) -> None:
    assert _find(servers, "127.0.0.1", 9000, "/servers/notes/mcp") == "notes"
    assert _find(servers, "127.0.0.1", 9000, "/servers/admin/mcp") == "admin"
    assert _find(servers, "127.0.0.1", 9000, "/servers/admin/mcp?x=1") == "admin"


@pytest.mark.parametrize(
    "host", ["2130706433", "0x7f000001", "127.1", "0177.0.0.1", "localhost", "[::ffff:7f00:1]", "0.0.0.0", "127.0.0.2"]
)
def test_aliases_of_a_configured_address_are_that_server(servers: ServerMap, host: str) -> None:
    assert _find(servers, host, 9000, "/servers/admin/mcp") == "admin"


def test_another_port_of_the_same_host_is_not_the_server(servers: ServerMap) -> None:
    assert _find(servers, "127.0.0.1", 9999, "/servers/admin/mcp") is None


def test_a_configured_origin_outside_its_paths_is_still_known_not_an_unknown_host(servers: ServerMap) -> None:
    assert _find(servers, "127.1", 9000, "/elsewhere") == "127.0.0.1"
    assert _find(servers, "API.test.", 443, "/other") == "api.test"


@pytest.mark.parametrize(
    "path", ["/servers/notes%2Fmcp", "/servers/notes/..%2Fadmin/mcp", "/servers/notes/../admin/mcp", "/a%5cb", "/a%00"]
)
def test_paths_whose_decoding_changes_routing_are_refused(servers: ServerMap, path: str) -> None:
    with pytest.raises(ValueError, match=r"route|resolve"):
        routing_path(path)
    with pytest.raises(ValueError, match=r"route|resolve"):
        servers.match("127.0.0.1", 9000, path, (LOOPBACK,))


def test_percent_encoded_letters_route_where_upstreams_route_them(servers: ServerMap) -> None:
    assert _find(servers, "127.0.0.1", 9000, "/servers/%61dmin/mcp") == "admin"


@pytest.mark.parametrize(
    ("listen", "host", "reached"),
    [
        (("127.0.0.1", 8181), "127.1", True),
        (("127.0.0.1", 8181), "2130706433", True),
        (("127.0.0.1", 8181), "[::1]", True),
        (("127.0.0.1", 8181), "0.0.0.0", True),
        (("127.0.0.1", 8181), "localhost", True),
        (("localhost", 8181), "0x7f.1", True),
        (("0.0.0.0", 8181), "127.0.0.2", True),
        (("127.0.0.1", 8181), "192.0.2.1", False),
    ],
)
def test_the_control_plane_is_recognised_in_every_spelling(listen: tuple[str, int], host: str, reached: bool) -> None:
    reach = Reach(Resolver())
    reach.set_control(listen)
    refused = reach.refusal(Resolver().now(host), 8181)
    assert (refused is not None and refused.code == "control_plane") is reached
    assert reach.refusal(Resolver().now(host), 8182) is None


def test_a_wildcard_listener_is_reached_by_any_local_address() -> None:
    local = LocalAddresses()
    mine = [ipaddress.ip_address(i[4][0]) for i in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)]
    listener = Listener([ipaddress.IPv4Address("0.0.0.0")], 8080, local)
    assert all(listener.reached_by([a], 8080) for a in mine)
    assert not listener.reached_by([ipaddress.IPv4Address("192.0.2.1")], 8080)


def test_the_proxy_itself_is_a_loop_in_any_spelling() -> None:
    reach = Reach(Resolver())
    reach.set_proxy([("127.0.0.1", 8080)])
    refused = reach.refusal(Resolver().now("0x7f000001"), 8080)
    assert refused is not None
    assert refused.code == "proxy_loop"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("API.test", ("api.test", 443)), ("api.test:8443", ("api.test", 8443)), ("[::1]:9", ("::1", 9))],
)
def test_authorities_split_into_host_and_port(value: str, expected: tuple[str, int]) -> None:
    assert split_authority(value, "https") == expected


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"host_header": "admin.test"}, "Host header"),
        ({"host_header": "api.test, admin.test"}, "Host header"),
        ({"host_header": "api.test:444"}, "Host header"),
        ({"authority": "admin.test"}, ":authority"),
        ({"tunnel": ("admin.test", 443)}, "tunnel"),
        ({"sni": "admin.test"}, "TLS server name"),
    ],
)
def test_every_name_a_request_carries_must_be_the_judged_host(kwargs: dict[str, object], problem: str) -> None:
    base: dict[str, object] = {"host_header": None, "authority": None, "tunnel": None, "sni": None}
    why = names_disagree("api.test", 443, "https", **{**base, **kwargs})  # type: ignore[arg-type]
    assert why is not None
    assert problem in why


def test_agreeing_names_pass() -> None:
    why = names_disagree(
        "API.test",
        443,
        "https",
        host_header="api.test:443",
        authority="api.test",
        tunnel=("api.test", 443),
        sni="api.test",
    )
    assert why is None


def test_an_mcp_url_is_one_endpoint_not_a_prefix(servers: ServerMap) -> None:
    assert _find(servers, "127.0.0.1", 9000, "/servers/admin/mcp/") == "admin"
    # Below it is only the folder's claim, which the addon honours for announced legacy endpoints alone.
    beside = servers.match("127.0.0.1", 9000, "/servers/admin/mcp/tools", (LOOPBACK,)).target
    assert beside is not None
    assert beside.folder
