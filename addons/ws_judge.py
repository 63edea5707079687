"""WebSocket messages from the agent, each a judged and traced call: a JSON-RPC request is judged as its
method (`tools/call` as the tool it names), anything else as the tool `ws.message` with its text (or the
size and SHA-256 of a binary frame). A refused message is dropped; a refused JSON-RPC request is answered
with the refusal in its place, so the agent reads why."""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from mitmproxy import ctx, http
from mitmproxy.websocket import WebSocketMessage

from addons.body_decode import UnsafeNumber, decode_json
from addons.flow_judge import Judge, annotate
from addons.proxy_auth import Identity
from policy import HttpInfo, Outcome, ToolCall, Verdict
from policy.core.model import readonly
from policy.wire import jsonrpc, refusals

log = logging.getLogger("agent_mesh.proxy")

WS_TOOL = "ws.message"
WS_METHOD = "WEBSOCKET"
_TEXT_LIMIT = 64 * 1024  # longer texts are judged on their digest and first characters only
# First bytes no JSON text starts with (nor a UTF-16/32 one, nor a BOM): skip parsing most binary frames.
_NOT_JSON = frozenset(bytes([b]) for b in range(256)) - frozenset(
    bytes([b]) for b in b' \t\r\n[{"-0123456789tfn\x00\xef\xfe\xff'
)


@readonly
class WsPeer:
    """Who opened a WebSocket, to which server, on which request line: set when the upgrade was judged."""

    identity: Identity
    server: str
    http: HttpInfo


def message_calls(peer: WsPeer, content: bytes, is_text: bool, session: str) -> list[tuple[ToolCall, Any]]:
    """The calls one message makes, each with its JSON-RPC id (None when there is nothing to answer).

    Their HTTP method is `WEBSOCKET`, not the upgrade's GET: a rule that lets reads through by method must
    not let every message on a socket through."""
    agent = peer.identity.agent
    up = peer.http
    info = HttpInfo(WS_METHOD, up.host, up.path, up.port, up.scheme)
    session = peer.identity.session or session
    # Binary frames too: a server's json.loads(bytes) or JSON.parse(buffer) reads a JSON-RPC request in
    # either kind of frame (in UTF-16/32 as well), so either is judged as the calls it makes.
    requests = _rpc_requests(_json(content)) if content[:1] not in _NOT_JSON else []
    if requests:
        return [(ToolCall(agent, "http", peer.server, t, a, session, info), i) for t, a, i in requests]
    if is_text:
        text = content.decode("utf-8", "replace")
        args: dict[str, Any] = {"text": text}
        if len(text) > _TEXT_LIMIT:
            args = {"text": text[:_TEXT_LIMIT], "size": len(content), "sha256": hashlib.sha256(content).hexdigest()}
    else:
        args = {"size": len(content), "sha256": hashlib.sha256(content).hexdigest()}
    return [(ToolCall(agent, "http", peer.server, WS_TOOL, args, session, info), None)]


def _json(content: bytes) -> Any:
    try:
        return decode_json(content)
    except UnsafeNumber:
        pass  # still a call: judged on Python's reading of the number
    except (ValueError, RecursionError):
        return None
    try:
        return json.loads(content)
    except (ValueError, RecursionError):
        return None


def _rpc_requests(parsed: Any) -> list[tuple[str, dict[str, Any], Any]]:
    """(tool, arguments, id) for each JSON-RPC request or notification; [] when it is not JSON-RPC."""
    items = parsed if isinstance(parsed, list) else [parsed]
    out: list[tuple[str, dict[str, Any], Any]] = []
    for msg in items:
        if not isinstance(msg, dict) or not isinstance(msg.get("method"), str):
            continue  # a response carries no call; a message with none at all is judged as ws.message
        # No "jsonrpc" member is still a call: lenient servers run {"method": ...} all the same.
        params = msg.get("params")
        tool, args = msg["method"], params if isinstance(params, dict) else {"params": params}
        if tool == "tools/call" and isinstance(params, dict) and isinstance(params.get("name"), str):
            tool = params["name"]
            arguments = params.get("arguments")
            args = arguments if isinstance(arguments, dict) else {}
        out.append((tool, args, msg.get("id")))
    return out


async def judge_ws_message(judge: Judge, flow: http.HTTPFlow, peer: WsPeer, message: WebSocketMessage) -> None:
    """Judge every call of the message; forward it only when all pass, else drop it (and answer ids)."""
    calls = message_calls(peer, message.content, message.is_text, flow.client_conn.id)
    verdicts: list[Verdict] = [await judge.judge(flow, call) for call, _id in calls]
    annotate(flow, [(c, v) for (c, _i), v in zip(calls, verdicts, strict=True)])
    allowed = all(v.allowed for v in verdicts)
    for (call, _id), verdict in zip(calls, verdicts, strict=True):
        judge.gate.finish(call, verdict, Outcome(allowed))
    if allowed:
        return
    message.drop()  # type: ignore[no-untyped-call]
    for (_call, rid), verdict in zip(calls, verdicts, strict=True):
        if rid is not None and not verdict.allowed:
            _inject(flow, jsonrpc.dump(refusals.refusal(rid, verdict, modern=False, refuse_as="result")))


def _inject(flow: http.HTTPFlow, data: bytes) -> None:
    try:
        ctx.master.commands.call("inject.websocket", flow, True, data, True)
    except Exception:  # no proxy server (a bare test context): the message is dropped all the same
        log.debug("agent-mesh: could not answer a refused WebSocket message on %s", flow.id)
