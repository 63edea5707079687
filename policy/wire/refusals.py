"""The JSON-RPC answer both adapters give for a call the Gate refuses or still holds (ARCHITECTURE §6).

For a `tools/call`, by default a `CallToolResult` with `isError: true`, a readable text and the refusal
payload under `_meta` (and as `structuredContent`, unless the tool has an outputSchema), read like any tool
error; with `mcp.refuse_as: error`, a JSON-RPC error carrying the same payload as `data`. Every other kind
of request (resources/read, prompts/get, a server's sampling request...) gets that JSON-RPC error.
"""

from __future__ import annotations

from typing import Any

from policy.core.model import Verdict
from policy.core.refusal import refusal_payload, refusal_text
from policy.wire import jsonrpc
from policy.wire.jsonrpc import Message

META_KEY = "agent-mesh/refusal"


def refusal(request_id: Any, verdict: Verdict, *, modern: bool, refuse_as: str, structured: bool = True) -> Message:
    """The response to a refused call (deny, pending, rate limited, loop detected).

    `structured=False` for a tool that declares an outputSchema: clients validate `structuredContent`
    against it even on errors (the TypeScript SDK does), so the payload then travels only in `_meta`.
    """
    payload = refusal_payload(verdict)
    text = refusal_text(verdict)
    if refuse_as == "error":
        return jsonrpc.error(request_id, jsonrpc.REFUSED, text, payload)
    body: dict[str, Any] = {"content": [{"type": "text", "text": text}], "isError": True, "_meta": {META_KEY: payload}}
    if structured:
        body["structuredContent"] = payload
    return jsonrpc.result(request_id, body, modern=modern)


def refusal_error(request_id: Any, verdict: Verdict) -> Message:
    """The answer to a refused request that is not a `tools/call` (resources/read, prompts/get, a server's
    sampling/createMessage...): only a tool call has a result shape for errors, so a JSON-RPC error with the
    stable code -32001, the readable text as its message and the refusal payload (`code`, reason) as `data`."""
    return jsonrpc.error(request_id, jsonrpc.REFUSED, refusal_text(verdict), refusal_payload(verdict))
