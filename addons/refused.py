"""A request the proxy refuses before it can be judged (ambiguous path, body, arguments or method; a Host
that names another target; the control plane) is still one call with one trace record: surface `http`,
tool `METHOD /path` as sent, a deny by rule `proxy.<code>` with the reason. Nothing about it is forwarded;
the record says what was tried. The Gate builds the refusal (Gate.refuse), as every verdict."""

from __future__ import annotations

import hashlib

from addons.classify import Request, Target
from addons.proxy_auth import Identity
from policy.core.model import HttpInfo, Outcome, ToolCall
from policy.gate.gate import Gate

RULE = "proxy.bad_request"
_SHOWN = 200  # characters of the raw path kept in the tool name: the record names the request, not stores it


def refused_call(req: Request, server: str | None, agent: str, session: str | None, reason: str) -> ToolCall:
    """The call record of a request refused as unjudgeable (`req.path` as sent, query dropped)."""
    raw = req.path.split("?", 1)[0]
    shown = raw if len(raw) <= _SHOWN else raw[:_SHOWN] + "…"
    digest = hashlib.sha256(req.path.encode("utf-8", "surrogateescape") + b"\n" + req.body).hexdigest()
    info = HttpInfo(req.method[:20], req.host, shown, req.port, req.scheme, digest)
    args = {"refused": reason, "body_size": len(req.body), "request_sha256": digest}
    return ToolCall(agent, "http", server or req.host, f"{req.method[:20]} {shown}", args, session, info)


def record_refusal(
    gate: Gate | None,
    req: Request,
    target: Target | str | None,
    identity: Identity,
    connection: str,
    reason: str,
    rule: str = RULE,
) -> None:
    """Trace a request the proxy answered itself before judging it (one record, outcome `refused`, denied by
    `rule`: proxy.bad_request, proxy.host_mismatch, proxy.control_plane...); `target`: the server (or its
    name) when known; `connection` is the session when the identity names none."""
    if gate is not None:
        server = target.server if isinstance(target, Target) else target
        call = refused_call(req, server, identity.agent, identity.session or connection, reason)
        gate.finish(call, gate.refuse(rule, reason), Outcome(False))
