"""A mitmproxy content view for MCP: JSON-RPC messages, also inside SSE streams, one readable block each."""

from __future__ import annotations

import json
from typing import Any

from mitmproxy.contentviews import Contentview, Metadata

from addons.sse_stream import SseParser


def _summary(msg: Any) -> str:
    if not isinstance(msg, dict):
        return "(not a JSON-RPC message)"
    rid = f" #{json.dumps(msg['id'])}" if "id" in msg else ""
    if "method" in msg:
        params = msg.get("params")
        name = (params.get("name") or params.get("uri") or "") if isinstance(params, dict) else ""
        kind = "request" if "id" in msg else "notification"
        return f"→ {kind}{rid} {msg['method']} {name}".rstrip()
    if "error" in msg:
        return f"← error{rid}"
    result = msg.get("result")
    flag = " isError" if isinstance(result, dict) and result.get("isError") else ""
    return f"← result{rid}{flag}"


def render_messages(value: Any) -> str:
    items = value if isinstance(value, list) else [value]
    return "\n\n".join(f"{_summary(m)}\n{json.dumps(m, indent=2, ensure_ascii=False)}" for m in items)


class McpView(Contentview):
    """Shows JSON-RPC bodies and `text/event-stream` bodies carrying them; preferred over plain JSON."""

    name = "MCP JSON-RPC"
    syntax_highlight = "yaml"

    def prettify(self, data: bytes, metadata: Metadata) -> str:
        if (metadata.content_type or "").startswith("text/event-stream"):
            parser = SseParser()
            blocks = []
            for event in [*parser.feed(data), *parser.feed(b"\n\n")]:
                if not event.has_data:
                    continue
                head = f"event: {event.event}" + (f" (id {event.id})" if event.id else "")
                try:
                    blocks.append(f"{head}\n{render_messages(json.loads(event.data))}")
                except json.JSONDecodeError:
                    blocks.append(f"{head}\n{event.data}")
            return "\n\n".join(blocks)
        return render_messages(json.loads(data))

    def render_priority(self, data: bytes, metadata: Metadata) -> float:
        if b'"jsonrpc"' not in data[:4096]:
            return -1
        ctype = metadata.content_type or ""
        if ctype.startswith("text/event-stream") or "json" in ctype:
            return 2
        return -1
