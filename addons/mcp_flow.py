"""One POSTed JSON-RPC body to an MCP server: judge each `tools/call`, then answer, forward, or forward with
refused elements swapped for pings whose answers become the refusals (batches, the 2024-11-05 transport)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mitmproxy import http

from addons.classify import McpBody
from addons.judging import Judge, annotate
from addons.mcp_exchange import ResponseTracker
from addons.mcp_messages import (
    HEADER_MISMATCH,
    INVALID_PARAMS,
    RpcMessage,
    encode,
    error_response,
    is_modern,
    protocol_version_of,
    refusal_response,
    tool_call_of,
)
from addons.proxy_auth import Identity
from policy import HttpInfo, Outcome, ToolCall, Verdict, refusal_payload, refusal_text

JSON = {"content-type": "application/json"}
PROXY_AUTHORIZATION = "proxy-authorization"


@dataclass(slots=True)
class _Judged:
    msg: RpcMessage
    call: ToolCall
    modern: bool
    verdict: Verdict | None = None


class McpHandler:
    """Judges MCP request bodies for the addon; knows tool annotations learned from `tools/list`."""

    def __init__(self, judge: Judge, refuse_as: str) -> None:
        self.judge = judge
        self.refuse_as = refuse_as
        self.annotations: dict[tuple[str, str], Mapping[str, Any]] = {}
        # Configured MCP servers (each one endpoint): only their tools/list annotations are believed; an
        # agent's own server must not make a configured server's destructive tool look read-only.
        self.trusted: frozenset[str] = frozenset()
        self.with_output_schema: set[tuple[str, str]] = set()

    def visible(self, agent: str, server: str, session: str | None, tool: dict[str, Any]) -> bool:
        """tools/list filtering; remembers each tool's annotations for the calls that follow."""
        name = tool.get("name")
        if not isinstance(name, str):
            return False
        ann = tool.get("annotations") if server in self.trusted else None
        if isinstance(ann, dict):
            self.annotations[(server, name)] = ann
        if tool.get("outputSchema") is not None:
            self.with_output_schema.add((server, name))
        call = ToolCall(agent, "mcp_http", server, name, session_id=session, annotations=ann or {})
        return self.judge.gate.visible(call)

    async def handle(
        self,
        flow: http.HTTPFlow,
        identity: Identity,
        body: McpBody,
        headers: Mapping[str, str],
        tracker: ResponseTracker,
        legacy: bool,
        info: HttpInfo,
    ) -> None:
        """Set `flow.response` (answered here) or leave the request to be forwarded, maybe rewritten."""
        agent = identity.agent
        session = headers.get("mcp-session-id") or identity.session or flow.client_conn.id
        judged: list[_Judged] = []
        answers: dict[int, dict[str, Any]] = {}
        for i, msg in enumerate(body.messages):
            if msg.method == "tools/list" and msg.has_id:
                tracker.track_list(msg.id, agent, body.server, session)
            if msg.method != "tools/call":
                continue
            version = protocol_version_of(msg, headers)
            try:
                name, args = tool_call_of(msg)
            except ValueError as exc:
                answers[i] = error_response(msg.id, INVALID_PARAMS, str(exc))
                continue
            ann = self.annotations.get((body.server, name), {})
            call = ToolCall(agent, "mcp_http", body.server, name, args, session, info, version, ann)
            judged.append(_Judged(msg, call, is_modern(version)))
        if len(judged) == 1:
            verdicts = [await self.judge.judge(flow, judged[0].call)]
        else:
            verdicts = list(await asyncio.gather(*(self.judge.judge(flow, j.call) for j in judged)))
        for j, verdict in zip(judged, verdicts, strict=True):
            j.verdict = verdict
        annotate(flow, [(j.call, v) for j, v in zip(judged, verdicts, strict=True)])
        index: dict[int, int] = {}
        for j in judged:
            assert j.verdict is not None
            if j.verdict.allowed:
                tracker.track_call(j.msg.id, j.call, j.verdict)
                continue
            self.judge.gate.finish(j.call, j.verdict, Outcome(False))
            index = index or {id(m): i for i, m in enumerate(body.messages)}
            if j.msg.has_id:
                answers[index[id(j.msg)]] = refusal_response(
                    j.msg.id,
                    refusal_payload(j.verdict),
                    refusal_text(j.verdict),
                    modern=j.modern,
                    refuse_as=self.refuse_as,
                    structured=(body.server, j.call.tool) not in self.with_output_schema,
                )
            else:
                answers[index[id(j.msg)]] = {}
        if answers:
            self._apply(flow, body, answers, tracker, legacy)

    def _apply(
        self,
        flow: http.HTTPFlow,
        body: McpBody,
        answers: dict[int, dict[str, Any]],
        tracker: ResponseTracker,
        legacy: bool,
    ) -> None:
        forwarded = [m for i, m in enumerate(body.messages) if i not in answers]
        replies = [a for a in answers.values() if a]
        if not legacy and not forwarded:
            if not replies:
                flow.response = http.Response.make(202, b"", {})
            elif body.is_batch:
                flow.response = http.Response.make(200, encode(replies), JSON)
            else:
                flow.response = http.Response.make(200, encode(replies[0]), JSON)
            return
        # Forward what passed; each refused request becomes a ping with its id, so the upstream answers
        # it where the client expects (the POST response or the legacy event stream) and we swap the answer.
        out: list[dict[str, Any]] = []
        for i, msg in enumerate(body.messages):
            answer = answers.get(i)
            if answer is None:
                out.append(msg.raw)
            elif answer:
                out.append({"jsonrpc": "2.0", "id": msg.id, "method": "ping"})
                tracker.substitute(msg.id, answer)
        if not out:
            flow.response = http.Response.make(202, b"", {})
            return
        flow.request.content = encode(out if body.is_batch else out[0])


def header_mismatch(flow: http.HTTPFlow, body: McpBody, message: str) -> None:
    """Answer a request whose Mcp-Method / Mcp-Name header disagrees with its body, as the SDK does."""
    first = body.messages[0]
    reply = error_response(first.id if not body.is_batch else None, HEADER_MISMATCH, message)
    flow.response = http.Response.make(400, encode(reply), JSON)
    flow.comment = f"⛔ refused: {message}"
    flow.marked = ":no_entry:"


def header_value(headers: http.Headers, name: str) -> str | None:
    """`headers.get(name)` for a lower-case name, read from the raw fields (repeated fields joined with ", ")."""
    raw = name.encode("latin-1")
    found = [v for k, v in headers.fields if k.lower() == raw]
    if not found:
        return None
    return ", ".join(v.decode("utf-8", "surrogateescape") for v in found)


def remove_header(headers: http.Headers, name: str) -> None:
    """Delete every field called `name` (lower case): `del headers[name]` without mitmproxy's per-name lookups."""
    raw = name.encode("latin-1")
    headers.fields = tuple(f for f in headers.fields if f[0].lower() != raw)


def lower_headers(headers: http.Headers) -> dict[str, str]:
    """Header names in lower case; repeated headers joined with ", " (so duplicates cannot agree by accident).

    Reads the raw fields once: mitmproxy's per-name lookups cost more than the rest of the hot path.
    """
    out: dict[str, str] = {}
    for raw_key, raw_value in headers.fields:
        key = raw_key.decode("latin-1").lower()
        value = raw_value.decode("utf-8", "surrogateescape")
        out[key] = f"{out[key]}, {value}" if key in out else value
    return out
