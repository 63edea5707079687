"""A scripted MCP server on in-memory streams: the stand-in for a third-party server in unit tests.

It answers initialize, server/discover, tools/list and tools/call (echoing the arguments; `ask` first answers
`input_required`, as a 2026-07-28 server asking the user), the resources and prompts methods, records every
frame it receives, and can be told to wait, to change a tool, to send requests of its own, or to die.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from mcpwrap.framing import MemoryPipe, read_frames

META_VERSION = "io.modelcontextprotocol/protocolVersion"
RESOURCES = ("file:///srv/readme.txt", "file:///etc/passwd")


def tool(name: str, description: str = "", **annotations: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": name,
        "description": description or f"the {name} tool",
        "inputSchema": {"type": "object"},
    }
    if annotations:
        out["annotations"] = annotations
    return out


class FakeServer:
    """Reads frames from `inbox`, writes answers to `outbox`."""

    def __init__(self, tools: list[dict[str, Any]], name: str = "fake") -> None:
        self.tools = tools
        self.name = name
        self.inbox = MemoryPipe()
        self.outbox = MemoryPipe()
        self.frames: list[bytes] = []
        self.received: list[Any] = []
        self.gate = asyncio.Event()  # calls to the tool `slow` wait for it
        self.gate.set()
        self.question = "sure?"  # what `ask` asks the user (2026-07-28 input request)
        self._pending: set[asyncio.Task[None]] = set()
        self.discovers = True  # False: a 2025-era server, which answers server/discover "method not found"

    def methods(self) -> list[str]:
        return [m.get("method") for m in self.received if isinstance(m, dict)]

    def calls(self) -> list[str]:
        return [m["params"]["name"] for m in self.received if isinstance(m, dict) and m.get("method") == "tools/call"]

    def send(self, msg: Any) -> None:
        self.outbox.write(json.dumps(msg).encode() + b"\n")

    def die(self) -> None:
        self.outbox.close()

    async def serve(self) -> None:
        async for frame in read_frames(self.inbox.reader):
            self.frames.append(frame)
            msg = json.loads(frame)
            self.received.append(msg)
            if isinstance(msg, list):
                answers = [a for a in [self.answer(m) for m in msg] if a is not None]
                if answers:
                    self.send(answers)
            elif isinstance(msg, dict) and msg.get("method") == "tools/call" and msg["params"].get("name") == "slow":
                self._pending.add(asyncio.ensure_future(self._slow(msg)))
            else:
                answer = self.answer(msg)
                if answer is not None:
                    self.send(answer)

    async def _slow(self, msg: dict[str, Any]) -> None:
        await self.gate.wait()
        self.send(self.answer(msg))

    def answer(self, msg: dict[str, Any]) -> dict[str, Any] | None:
        try:
            return self._answer(msg)
        except (KeyError, TypeError, AttributeError) as exc:  # params it cannot read: an error, as a server would
            return {"jsonrpc": "2.0", "id": msg.get("id"), "error": {"code": -32602, "message": repr(exc)}}

    def _answer(self, msg: dict[str, Any]) -> dict[str, Any] | None:
        if "id" not in msg or "method" not in msg:
            return None
        modern = META_VERSION in (msg.get("params") or {}).get("_meta", {})
        method = msg["method"]
        info = {"name": self.name, "version": "1"}
        body: dict[str, Any]
        if method == "initialize":
            body = {"protocolVersion": "2025-11-25", "capabilities": {"tools": {}}, "serverInfo": info}
        elif method == "server/discover" and not self.discovers:
            return {"jsonrpc": "2.0", "id": msg["id"], "error": {"code": -32601, "message": "Method not found"}}
        elif method == "server/discover":
            body = {"supportedVersions": ["2026-07-28"], "capabilities": {"tools": {}}}
        elif method == "tools/list":
            body = {"tools": self.tools}
        elif method == "tools/call" and msg["params"]["name"] == "ask" and "inputResponses" not in msg["params"]:
            question = {"method": "elicitation/create", "params": {"message": self.question, "requestedSchema": {}}}
            body = {"resultType": "input_required", "inputRequests": {"q1": question}, "requestState": "s1"}
        elif method == "tools/call":
            args = msg["params"].get("arguments", {})
            body = {"content": [{"type": "text", "text": json.dumps(args)}], "isError": False}
        elif method == "resources/list":
            body = {"resources": [{"uri": uri, "name": uri.rsplit("/", 1)[-1]} for uri in RESOURCES]}
        elif method == "resources/templates/list":
            body = {"resourceTemplates": [{"uriTemplate": "file:///{path}", "name": "any file"}]}
        elif method == "resources/read":
            uri = msg["params"]["uri"]
            body = {"contents": [{"uri": uri, "text": f"contents of {uri}"}]}
        elif method == "prompts/list":
            body = {"prompts": [{"name": "greet"}, {"name": "secret_prompt"}]}
        elif method == "prompts/get":
            body = {"messages": [{"role": "user", "content": {"type": "text", "text": msg["params"]["name"]}}]}
        else:
            body = {}
        if modern:
            body = {"resultType": "complete", **body, "_meta": {"io.modelcontextprotocol/serverInfo": info}}
        return {"jsonrpc": "2.0", "id": msg["id"], "result": body}
