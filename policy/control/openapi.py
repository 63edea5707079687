"""The control API's own OpenAPI 3.1 document, served at /openapi.json (and checked against the routes)."""

from __future__ import annotations

from typing import Any

_ERR = {"$ref": "#/components/responses/Problem"}
_AUTH = {"401": {"$ref": "#/components/responses/Unauthorized"}}


def _q(name: str, text: str, kind: str = "string") -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": text, "schema": {"type": kind}}


_ID = {"name": "id", "in": "path", "required": True, "description": "Full id or a unique prefix of 6+ characters",
       "schema": {"type": "string"}}  # fmt: skip
_TRACE_FILTERS = [
    _q("agent", "Exact agent name"),
    _q("tool", "Glob over the full tool name (server.tool)"),
    _q("verdict", "allow, deny, pending, rate_limited or loop_detected"),
    _q("session", "Session id"),
    _q("decided_by", "Prefix of decided_by, e.g. human: or grant:"),
    _q("since", "Unix time (seconds), inclusive", "number"),
    _q("until", "Unix time (seconds), inclusive", "number"),
    _q("after_seq", "Only rows after this trace table sequence number", "integer"),
    _q("kind", "call or event (a tool first seen or changed, tools hidden); both when absent"),
]
_LIMIT = _q("limit", "At most this many items (1-1000, default 100)", "integer")


def _op(op_id: str, summary: str, *, params: list[dict[str, Any]] | None = None, body: str | None = None,
        ok: str = "200", errors: tuple[str, ...] = (), media: str = "application/json") -> dict[str, Any]:  # fmt: skip
    responses: dict[str, Any] = {ok: {"description": "OK", "content": {media: {"schema": {"type": "object"}}}}}
    responses.update(_AUTH)
    for code in errors:
        responses[code] = _ERR
    op: dict[str, Any] = {"operationId": op_id, "summary": summary, "responses": responses}
    if params:
        op["parameters"] = params
    if body:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{body}"}}},
        }
    return op


def _obj(props: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        schema["required"] = list(required)
    return schema


_S = {"type": "string"}
_RESOLUTION = {
    "reason": {**_S, "description": "Why (lands in the trace and in decision memory)"},
    "confidence": {"type": "number", "minimum": 0, "maximum": 1},
    "by": {**_S, "description": "Human name recorded as human:<by> (default: the operator)"},
    "supervisor": {**_S, "description": "Resolve as supervisor:<name> instead of as a human"},
}


def document(version: str) -> dict[str, Any]:
    paths: dict[str, Any] = {
        "/health": {
            "get": {
                "operationId": "health",
                "summary": "Liveness and store readability (no token needed)",
                "security": [],
                "responses": {"200": {"description": "OK"}, "503": {"description": "Store unreadable"}},
            }
        },
        "/metrics": {"get": _op("metrics", "Prometheus metrics", media="text/plain")},
        "/openapi.json": {"get": _op("openapi", "This document")},
        "/api/approvals": {
            "get": _op(
                "listApprovals",
                "List approvals",
                errors=("400",),
                params=[
                    _q("status", "pending (default), approved, denied, expired or all"),
                    _q("agent", "Glob over the agent name"),
                    _q("tool", "Glob over the full tool name"),
                    _LIMIT,
                ],
            )
        },
        "/api/approvals/{id}": {
            "get": _op(
                "getApproval",
                "One approval with the agent's recent traces, grants and memory facts",
                params=[_ID],
                errors=("404",),
            )
        },
        "/api/approvals/{id}/approve": {
            "post": _op(
                "approve",
                "Approve a pending call (optionally grant it for a while)",
                params=[_ID],
                body="Approve",
                errors=("400", "404", "409"),
            )
        },
        "/api/approvals/{id}/deny": {
            "post": _op("deny", "Deny a pending call", params=[_ID], body="Deny", errors=("400", "404", "409"))
        },
        "/api/grants": {
            "get": _op(
                "listGrants", "List grants", params=[_q("all", "true: include expired, used up and revoked", "boolean")]
            ),
            "post": _op("createGrant", "Create a grant", body="Grant", ok="201", errors=("400",)),
        },
        "/api/grants/{id}": {"delete": _op("revokeGrant", "Revoke a grant", params=[_ID], errors=("404", "409"))},
        "/api/memory": {
            "get": _op(
                "listFacts",
                "List decision-memory facts",
                params=[_q("agent", "Exact agent"), _q("tool", "Exact full tool name"), _LIMIT],
            )
        },
        "/api/memory/{id}": {"delete": _op("forgetFact", "Forget one fact", params=[_ID], errors=("404",))},
        "/api/memory/forget": {
            "post": _op("forgetFacts", "Forget every fact of an agent and/or tool", body="Forget", errors=("400",))
        },
        "/api/traces": {
            "get": _op(
                "queryTraces", "Query trace records, newest first", params=[*_TRACE_FILTERS, _LIMIT], errors=("400",)
            )
        },
        "/api/traces/stream": {
            "get": _op(
                "streamTraces",
                "Live trace records (Server-Sent Events `trace`)",
                params=_TRACE_FILTERS,
                media="text/event-stream",
            )
        },
        "/api/events": {
            "get": _op("streamEvents", "Live events for the page: `trace` and `approvals`", media="text/event-stream")
        },
        "/api/sessions": {"get": _op("listSessions", "Sessions seen in the trace", params=[_LIMIT])},
        "/api/policies": {"get": _op("listPolicies", "Effective policies in evaluation order")},
        "/api/decide": {
            "post": _op(
                "decide",
                "Dry run: what the live gate would do with this call now (Gate.preview: stop, state-dir guard, "
                "limits, policy, pins, and the approval, grant or memory that would lift a human_approval); "
                "changes nothing",
                body="Call",
                errors=("400",),
            )
        },
        "/decide": {"post": _op("decideAlias", "Alias of /api/decide", body="Call", errors=("400",))},
        "/api/processes": {
            "get": _op(
                "listProcesses",
                "Processes on this state dir (serve, proxy, each mcpwrap): the policy each runs, whether it is the "
                "policy its config gives now, the last reload error; and the active emergency stops",
                params=[_q("all", "Also processes that are gone (no heartbeat for 10 s)", "boolean")],
            )
        },
        "/api/stop": {
            "post": _op(
                "stop",
                "Emergency stop: every process refuses new and held calls of the agent (or all), code `stopped`",
                body="Stop",
                ok="201",
                errors=("400",),
            )
        },
        "/api/resume": {"post": _op("resume", "Lift the stop of an agent, or every stop", body="Resume")},
    }
    schemas = {
        "Approve": _obj({**_RESOLUTION, "for": {**_S, "description": "Also grant this agent this tool, e.g. 30m"}}),
        "Deny": _obj(_RESOLUTION),
        "Grant": _obj(
            {
                "agent": {**_S, "description": "Agent glob"},
                "tool": {**_S, "description": "Tool glob (server.tool)"},
                "for": {**_S, "description": "Duration, e.g. 30m"},
                "when": {"type": "object", "description": "Conditions on the call, as in policy rules"},
                "max_uses": {"type": "integer", "minimum": 1},
                "reason": _S,
            },
            ("agent", "tool", "for"),
        ),
        "Forget": _obj({"agent": _S, "tool": _S}),
        "Stop": _obj(
            {
                "agent": {**_S, "description": "Stop this agent's calls (or give all: true)"},
                "all": {"type": "boolean", "description": "Stop every agent's calls"},
                "reason": {**_S, "description": "Why: every refused call shows it"},
                "by": {**_S, "description": "Who stops (default: the operator)"},
            },
            ("reason",),
        ),
        "Resume": _obj(
            {
                "agent": {**_S, "description": "Lift this agent's stop"},
                "all": {"type": "boolean", "description": "Lift every stop"},
                "by": _S,
            }
        ),
        "Call": _obj(
            {
                "agent": _S,
                "tool": {**_S, "description": "Full name server.tool"},
                "args": {"type": "object"},
                "surface": {"enum": ["mcp_stdio", "mcp_http", "openapi", "http", "cli"]},
                "http": _obj({"method": _S, "host": _S, "path": _S}),
                "annotations": {"type": "object"},
            },
            ("agent", "tool"),
        ),
        "Problem": _obj(
            {"type": _S, "title": _S, "status": {"type": "integer"}, "code": _S, "detail": _S},
            ("status", "code", "detail"),
        ),
    }
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "agent-mesh control plane",
            "version": version,
            "description": "Approvals, grants, decision memory, traces and policies of one agent-mesh state dir. "
            "Every route except /health needs `Authorization: Bearer <operator token>` "
            "(the file operator.token in the state dir).",
        },
        "servers": [{"url": "/"}],
        "security": [{"operator": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"operator": {"type": "http", "scheme": "bearer"}},
            "schemas": schemas,
            "responses": {
                "Problem": {"description": "Error (problem+json)", "content": problem},
                "Unauthorized": {"description": "Missing or wrong operator token", "content": problem},
            },
        },
    }
