"""The JSON-RPC answer mcpwrap gives for a call it refuses or still holds (ARCHITECTURE §6).

By default a `CallToolResult` with `isError: true`, a readable text and the refusal payload under
`_meta` (and as `structuredContent`, unless the tool has an outputSchema), read like any tool error; with
`mcp.refuse_as: error`, a JSON-RPC error carrying the same payload as `data`.
"""

from __future__ import annotations

from typing import Any

from mcpwrap import jsonrpc
from mcpwrap.jsonrpc import Message
from policy import Verdict, refusal_payload, refusal_text

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
