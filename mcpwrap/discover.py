"""`agent-mesh discover -- CMD…`: start a stdio MCP server, list its tools, print a starter policy.

Read-only tools (annotation `readOnlyHint`) are allowed; destructive ones and the rest wait for a human.
The policy text is a complete config that `agent-mesh check` accepts; edit it before use.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Sequence
from typing import Any

import click
import yaml

from mcpwrap.framing import read_frames, write_frame
from mcpwrap.process import SpawnError, spawn, stop
from policy.wire import jsonrpc

# How long the server may take to start and answer one request.
ANSWER_SECONDS = 30.0
MAX_PAGES = 50
_CLIENT_INFO = {"name": "agent-mesh-discover", "version": "1"}


async def list_tools(argv: Sequence[str]) -> tuple[str | None, list[dict[str, Any]]]:
    """(the server's reported name, its tools) over the initialize handshake, which both eras' servers accept."""
    proc = await spawn(argv)
    stdin, stdout = proc.stdin, proc.stdout
    assert stdin is not None
    assert stdout is not None
    frames = read_frames(stdout)

    async def ask(request_id: int, method: str, params: dict[str, Any]) -> dict[str, Any]:
        write_frame(stdin, jsonrpc.dump({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}))
        async with asyncio.timeout(ANSWER_SECONDS):
            async for frame in frames:
                msg = jsonrpc.parse(frame)
                if isinstance(msg, dict) and jsonrpc.is_response(msg) and msg["id"] == request_id:
                    if "error" in msg:
                        raise ValueError(f"{method} failed: {msg['error'].get('message')}")
                    return dict(msg["result"])
        raise ValueError(f"the server exited before answering {method}")

    try:
        params = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": _CLIENT_INFO}
        name = jsonrpc.server_name_from_result(await ask(0, "initialize", params))
        write_frame(stdin, jsonrpc.dump(jsonrpc.notification("notifications/initialized", {})))
        tools: list[dict[str, Any]] = []
        cursor: str | None = None
        for page in range(1, MAX_PAGES + 1):
            body = await ask(page, "tools/list", {"cursor": cursor} if cursor else {})
            tools += [t for t in body.get("tools", []) if isinstance(t, dict) and isinstance(t.get("name"), str)]
            cursor = body.get("nextCursor")
            if not isinstance(cursor, str):
                break
        return name, tools
    except TimeoutError:
        raise ValueError(f"the server did not answer within {ANSWER_SECONDS:.0f} s") from None
    finally:
        await stop(proc)


def policy_name(server: str) -> str:
    """A server name usable in tool names (`server.tool`): letters, digits, `_` and `-`."""
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "-", server).strip("-")
    if not cleaned:
        raise ValueError(f"server name {server!r} has no letters or digits: pass --server NAME")
    return cleaned


def starter_policy(server: str, tools: Sequence[dict[str, Any]]) -> str:
    """A starter config for one stdio server (pure): reads allowed, everything else held for a human."""
    groups: dict[str, list[str]] = {"read-only": [], "destructive": [], "other": []}
    for tool in tools:
        found = tool.get("annotations")
        ann: dict[str, Any] = found if isinstance(found, dict) else {}
        kind = (
            "read-only" if ann.get("readOnlyHint") is True else "destructive" if ann.get("destructiveHint") else "other"
        )
        groups[kind].append(f"{server}.{tool['name']}")
    plan = [
        ("read-only", "allow", "the tool says it only reads"),
        ("destructive", "human_approval", "the tool says it is destructive"),
        ("other", "human_approval", "not known to be read-only"),
    ]
    rules = [
        {"name": f"{server}-{kind}", "tools": sorted(groups[kind]), "action": action, "reason": reason}
        for kind, action, reason in plan
        if groups[kind]
    ]
    config = {"version": 1, "policies": [{"name": f"{server}-starter", "agent": "*", "rules": rules}]}
    header = (
        f"# Starter policy for the MCP server {server} ({len(tools)} tools), from its tools/list annotations.\n"
        "# Read-only tools are allowed; destructive and unannotated ones wait for a human. Edit, then\n"
        "# `agent-mesh check`, and run the server as `mcpwrap --server "
        f"{server} -- COMMAND`.\n"
    )
    return header + yaml.safe_dump(config, sort_keys=False, allow_unicode=True, width=100)


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("--server", default=None, help="The server's name in policies (default: the name it reports).")
@click.option("--json", "as_json", is_flag=True, help="Print the tools and the policy as JSON.")
@click.option("--openapi", "spec", metavar="SPEC", help="An OpenAPI spec (file or URL) instead of a stdio server.")
@click.argument("command", nargs=-1, required=False, type=click.UNPROCESSED)
def discover(server: str | None, as_json: bool, spec: str | None, command: tuple[str, ...]) -> None:
    """Start a stdio MCP server, list its tools and annotations, print a starter policy.

    \b
    The policy goes to stdout (redirect it to a file); the tool summary goes to stderr.
    With --openapi SPEC --server NAME, the policy covers a REST API instead (GET/HEAD allowed,
    other methods held for a human), for the HTTP proxy.
    \b
    Example:
      agent-mesh discover --server fs -- npx @modelcontextprotocol/server-filesystem /tmp > fs.yaml
      agent-mesh discover --openapi specs/github.json --server github > github.yaml
      agent-mesh check --config fs.yaml
    """
    if spec is not None:
        _discover_openapi(spec, server, command)
        return
    if not command:
        raise click.UsageError("give the server's command after --, or --openapi SPEC --server NAME")
    try:
        reported, tools = asyncio.run(list_tools(command))
        name = policy_name(server or reported or command[0].rsplit("/", 1)[-1])
    except (SpawnError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    text = starter_policy(name, tools)
    if as_json:
        listed = [{k: t.get(k) for k in ("name", "description", "annotations")} for t in tools]
        click.echo(json.dumps({"server": name, "tools": listed, "policy": text}, indent=2))
        return
    for tool in tools:
        hints = ", ".join(f"{k}={v}" for k, v in (tool.get("annotations") or {}).items() if k.endswith("Hint"))
        click.echo(f"{name}.{tool['name']}" + (f"  ({hints})" if hints else ""), err=True)
    click.echo(text, nl=False)


def _discover_openapi(spec: str, server: str | None, command: tuple[str, ...]) -> None:
    """The REST flavour: the core's OpenAPI reduction (imported here only, so mcpwrap's start-up does not pay it)."""
    if command:
        raise click.UsageError("--openapi takes no server command")
    if not server:
        raise click.UsageError("--openapi needs --server NAME (the API's name in tool names)")
    from policy.core.openapi_spec import starter_policy as openapi_starter_policy
    from policy.mesh.fetch import fetch_text

    try:
        click.echo(openapi_starter_policy(spec, server, fetch_text), nl=False)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
