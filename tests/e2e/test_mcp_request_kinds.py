"""Every MCP request kind is a judged call, on both paths, with the real reference server `everything`:
a `resources/read` of a denied URI refused with a readable error (mcpwrap over stdio, the proxy over
Streamable HTTP), allowed reads traced, denied resources hidden from `resources/list`, and the server's own
`sampling/createMessage` requests judged (one allowed, one refused back to the server)."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client, MCPError, StdioServerParameters
from mcp import types as t
from mcp.client.streamable_http import streamable_http_client

from tests.e2e.proxy_harness import RunningProxy, running_proxy
from tests.support.net import free_port
from tests.support.proc import Proc
from tests.support.targets import ServerCommand, Targets

DENIED_DOC = "demo://resource/static/document/features.md"
ALLOWED_TEXT = "demo://resource/dynamic/text/1"
RULES = """
policies:
  - name: claude
    agent: claude
    loop_detection: {enabled: false}
    rules:
      - tools: ["everything.resources/read"]
        when: {args.uri: {glob: "demo://resource/static/**"}}
        action: deny
        reason: the static documents are private
      - tools: ["everything.sampling/createMessage"]
        when: {args.maxTokens: {eq: 13}}
        action: deny
        reason: no thirteen-token samples
      - tools: ["everything.prompts/get"]
        when: {args.arguments.city: {eq: Atlantis}}
        action: deny
      - tools: ["everything.*"]
        action: allow
"""


class Sampler:
    """The client's LLM: answers every sampling request it is shown, and counts them."""

    def __init__(self) -> None:
        self.shown: list[int] = []

    async def __call__(self, context: Any, params: t.CreateMessageRequestParams) -> t.CreateMessageResult:
        self.shown.append(params.max_tokens)
        return t.CreateMessageResult(role="assistant", content=t.TextContent(type="text", text="sampled!"), model="m")


def records(state: Path) -> list[dict[str, Any]]:
    path = state / "traces.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [r for r in map(json.loads, lines) if r.get("kind") != "event"]


async def wait_for_records(state: Path, want: set[tuple[str, str, str]]) -> set[tuple[str, str, str]]:
    """(tool, verdict, outcome) of every record, once `want` shows (bounded: writers are batched)."""
    seen: set[tuple[str, str, str]] = set()
    for _ in range(100):
        seen = {(r["tool"], r["verdict"], r["outcome"]) for r in records(state)}
        if want <= seen:
            break
        await asyncio.sleep(0.05)
    return seen


WANT = {
    ("everything.prompts/get", "allow", "ok"),
    ("everything.prompts/get", "deny", "refused"),
    ("everything.resources/read", "allow", "ok"),
    ("everything.resources/read", "deny", "refused"),
    ("everything.sampling/createMessage", "allow", "ok"),
    ("everything.sampling/createMessage", "deny", "refused"),
}


async def exercise(client: Client, sampler: Sampler) -> None:
    """The same session on either path: list, read allowed and denied, sample allowed and denied."""
    listed = [str(r.uri) for r in (await client.list_resources()).resources]
    assert not [uri for uri in listed if uri.startswith("demo://resource/static/")]
    allowed = await client.read_resource(ALLOWED_TEXT)
    assert "plaintext resource" in allowed.contents[0].text  # type: ignore[union-attr]
    with pytest.raises(MCPError) as refused:
        await client.read_resource(DENIED_DOC)
    assert refused.value.error.code == -32001
    assert refused.value.error.data["code"] == "denied"
    assert "the static documents are private" in refused.value.error.message
    prompt = await client.get_prompt("args-prompt", {"city": "Paris"})
    assert "Paris" in prompt.messages[0].content.text  # type: ignore[union-attr]
    with pytest.raises(MCPError) as hidden_city:
        await client.get_prompt("args-prompt", {"city": "Atlantis"})
    assert hidden_city.value.error.data["code"] == "denied"
    sampled = await client.call_tool("trigger-sampling-request", {"prompt": "hi", "maxTokens": 100})
    assert not sampled.is_error
    assert "sampled!" in sampled.content[0].text  # type: ignore[union-attr]
    withheld = await client.call_tool("trigger-sampling-request", {"prompt": "hi", "maxTokens": 13})
    assert withheld.is_error
    assert "no thirteen-token samples" in withheld.content[0].text  # type: ignore[union-attr]
    assert sampler.shown == [100]  # the refused request never reached the client's LLM


async def test_mcpwrap_judges_resource_reads_and_the_servers_sampling_requests(
    tmp_path: Path, stdio_server: Callable[[str], ServerCommand]
) -> None:
    config = tmp_path / "agent-mesh.yaml"
    config.write_text(f"version: 1\nstate_dir: {tmp_path / 'state'}\n{RULES}")
    cmd = stdio_server("everything")
    args = ["-m", "mcpwrap", "--config", str(config), "--agent", "claude", "--server", "everything", "--", *cmd.argv]
    sampler = Sampler()
    params = StdioServerParameters(command=sys.executable, args=args, env=cmd.env or None)
    async with Client(params, mode="legacy", sampling_callback=sampler) as client:
        await exercise(client, sampler)
    assert await wait_for_records(tmp_path / "state", WANT) >= WANT


@pytest.fixture(scope="module")
def everything_http(targets: Targets) -> Iterator[str]:
    port = free_port()
    argv = [targets.node20, targets.npm_bin("mcp-server-everything"), "streamableHttp"]
    with Proc(argv, env={"PORT": str(port)}, name="everything-http") as server:
        server.wait_for_port(port, timeout=60)
        yield f"http://127.0.0.1:{port}/mcp"


@asynccontextmanager
async def proxied_client(proxy: RunningProxy, url: str, sampler: Sampler) -> AsyncIterator[Client]:
    http = httpx2.AsyncClient(proxy=f"http://claude:s3cret@127.0.0.1:{proxy.port}", timeout=httpx2.Timeout(30))
    async with (
        http,
        Client(streamable_http_client(url, http_client=http), mode="legacy", sampling_callback=sampler) as c,
    ):
        yield c


async def test_the_proxy_judges_resource_reads_and_the_servers_sampling_requests(
    tmp_path: Path, everything_http: str
) -> None:
    config = tmp_path / "agent-mesh.yaml"
    head = (
        "version: 1\nstate_dir: state\nagents: {claude: {token: s3cret}}\n"
        f'servers:\n  everything: {{mcp_url: "{everything_http}"}}\n'
    )
    config.write_text(head + RULES)
    sampler = Sampler()
    with running_proxy(config) as proxy:
        async with proxied_client(proxy, everything_http, sampler) as client:
            await exercise(client, sampler)
        assert await wait_for_records(tmp_path / "state", WANT) >= WANT


KINDS_SERVER = Path(__file__).with_name("servers") / "kinds_server.py"
KINDS_RULES = """
policies:
  - name: claude
    agent: claude
    loop_detection: {enabled: false}
    rules:
      - tools: ["kinds.resources/read"]
        when: {args.uri: {glob: "notes://private/**"}}
        action: deny
      - tools: ["kinds.prompts/get"]
        when: {args.arguments.who: {eq: mallory}}
        action: deny
      - tools: ["kinds.elicitation/create"]
        when: {args.message: {eq: "give me your password"}}
        action: deny
      - tools: ["kinds.*"]
        action: allow
"""


async def accept(context: Any, params: Any) -> t.ElicitResult:
    return t.ElicitResult(action="accept", content={"sure": True})


async def exercise_kinds(client: Client, mode: str) -> None:
    """Resources and prompts of a Python SDK server in either era; in the 2025-11-25 era also its elicitation."""
    assert [str(r.uri) for r in (await client.list_resources()).resources] == ["notes://public/readme"]
    assert (await client.read_resource("notes://public/readme")).contents[0].text == "public readme"  # type: ignore[union-attr]
    with pytest.raises(MCPError) as denied:
        await client.read_resource("notes://private/keys")
    assert (denied.value.error.code, denied.value.error.data["code"]) == (-32001, "denied")
    assert "ann" in (await client.get_prompt("greet", {"who": "ann"})).messages[0].content.text  # type: ignore[union-attr]
    with pytest.raises(MCPError):
        await client.get_prompt("greet", {"who": "mallory"})
    if mode == "legacy":  # (the SDK's 2026-07-28 server has no back-channel for ctx.elicit over these transports)
        assert not (await client.call_tool("confirm", {"question": "ok?"})).is_error
        with pytest.raises(MCPError) as refused:
            await client.call_tool("confirm", {"question": "give me your password"})
        assert refused.value.error.code == -32001


def kinds_want(mode: str) -> set[tuple[str, str, str]]:
    want = {
        ("kinds.resources/read", "allow", "ok"),
        ("kinds.resources/read", "deny", "refused"),
        ("kinds.prompts/get", "allow", "ok"),
        ("kinds.prompts/get", "deny", "refused"),
    }
    if mode == "legacy":
        want |= {("kinds.elicitation/create", "allow", "ok"), ("kinds.elicitation/create", "deny", "refused")}
    return want


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_mcpwrap_judges_an_sdk_servers_resources_prompts_and_elicitation_in_both_eras(
    tmp_path: Path, mode: str
) -> None:
    config = tmp_path / "agent-mesh.yaml"
    config.write_text(f"version: 1\nstate_dir: {tmp_path / 'state'}\n{KINDS_RULES}")
    args = ["-m", "mcpwrap", "--config", str(config), "--agent", "claude", "--server", "kinds", "--"]
    params = StdioServerParameters(command=sys.executable, args=[*args, sys.executable, str(KINDS_SERVER)])
    async with Client(params, mode=mode, elicitation_callback=accept) as client:  # type: ignore[arg-type]
        await exercise_kinds(client, mode)
    want = kinds_want(mode)
    assert await wait_for_records(tmp_path / "state", want) >= want


@pytest.fixture(scope="module")
def kinds_http() -> Iterator[str]:
    port = free_port()
    with Proc([sys.executable, KINDS_SERVER, str(port)], name="kinds-http") as server:
        server.wait_for_port(port, timeout=30)
        yield f"http://127.0.0.1:{port}/mcp"


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_the_proxy_judges_an_sdk_servers_resources_prompts_and_elicitation_in_both_eras(
    tmp_path: Path, kinds_http: str, mode: str
) -> None:
    config = tmp_path / "agent-mesh.yaml"
    head = (
        "version: 1\nstate_dir: state\nagents: {claude: {token: s3cret}}\n"
        f'servers:\n  kinds: {{mcp_url: "{kinds_http}"}}\n'
    )
    config.write_text(head + KINDS_RULES)
    with running_proxy(config) as proxy:
        http = httpx2.AsyncClient(proxy=f"http://claude:s3cret@127.0.0.1:{proxy.port}", timeout=httpx2.Timeout(30))
        transport = streamable_http_client(kinds_http, http_client=http)
        async with http, Client(transport, mode=mode, elicitation_callback=accept) as client:  # type: ignore[arg-type]
            await exercise_kinds(client, mode)
        want = kinds_want(mode)
        assert await wait_for_records(tmp_path / "state", want) >= want
