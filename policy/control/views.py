"""JSON views of store records and policies for the control API, the page and notifications.

Arguments are redacted (configured keys and token patterns) before they leave the process; the
injection flag is computed on the raw arguments, like the push supervisor does.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from policy.core.config import Rule
from policy.core.engine import CATCH_ALL, EXACT, PolicySet
from policy.core.redact import redact, redaction_keys
from policy.gate.supervisor import injection_risk
from policy.store.base import Approval, Fact, Grant

_KIND = {EXACT: "exact", 1: "glob", CATCH_ALL: "catch-all"}


def approval_view(a: Approval, now: float, redact_keys: Iterable[str]) -> dict[str, Any]:
    risks = injection_risk(a.arguments)
    state = a.effective_state(now).value
    waited_until = a.resolved_at if a.resolved_at is not None else now
    return {
        "id": a.id,
        "state": state,
        "agent": a.agent,
        "surface": a.surface,
        "server": a.server,
        "tool": a.full_name,
        "request": a.request_line,
        "arguments": redact(a.arguments, redaction_keys(tuple(redact_keys))),
        "rule": a.rule,
        "reason": a.reason,
        "injection_risk": bool(risks),
        "injection_patterns": risks,
        "call_hash": a.call_hash,
        "trace_id": a.trace_id,
        "session_id": a.session_id,
        "created_at": a.created_at,
        "expires_at": a.expires_at,
        "waiting_seconds": max(0.0, round(waited_until - a.created_at, 3)),
        "resolved_at": a.resolved_at,
        "resolved_by": a.resolved_by,
        "resolution": a.resolution,
        "used_at": a.used_at,
        "grant_id": a.grant_id,
    }


def grant_view(g: Grant, now: float) -> dict[str, Any]:
    return {
        "id": g.id,
        "agent": g.agent,
        "tool": g.tool,
        "when": g.when,
        "created_at": g.created_at,
        "expires_at": g.expires_at,
        "created_by": g.created_by,
        "max_uses": g.max_uses,
        "uses": g.uses,
        "reason": g.reason,
        "revoked_at": g.revoked_at,
        "revoked_by": g.revoked_by,
        "active": g.active(now),
        "remaining_seconds": max(0.0, round(g.expires_at - now, 1)),
    }


def fact_view(f: Fact, redact_keys: Iterable[str]) -> dict[str, Any]:
    return {
        "id": f.id,
        "agent": f.agent,
        "tool": f.tool,
        "memory_key": f.memory_key,
        "decision": f.decision,
        "by": f.by,
        "reason": f.reason,
        "ts": f.ts,
        "approval_id": f.approval_id,
        "arguments": redact(f.arguments, redaction_keys(tuple(redact_keys))),
    }


def _conditions(rule: Rule) -> dict[str, Any] | None:
    """A rule's conditions as written (when / any / not, and the seed's condition forms), or None."""
    out = rule.model_dump(by_alias=True, exclude_none=True, include={"when", "any", "not_", "condition", "conditions"})
    if set(out) == {"when"}:
        return dict(out["when"])
    return out or None


def policies_view(ps: PolicySet) -> list[dict[str, Any]]:
    """Every policy in evaluation order (most specific agent pattern first), with its rules in order."""
    out: list[dict[str, Any]] = []
    for order, p in enumerate(ps.policies, 1):
        spec = next((s for s in ps.config.policies if s.name == p.name), None)
        rules = []
        for i, rule in enumerate(spec.rules if spec else ()):
            compiled = p.rules[i] if i < len(p.rules) else None
            rules.append(
                {
                    "id": compiled.id if compiled else rule.name or str(i),
                    "tools": list(rule.tools),
                    "action": rule.action.value,
                    "when": _conditions(rule),
                    "reason": rule.reason,
                }
            )
        out.append(
            {
                "order": order,
                "name": p.name,
                "agent": p.agent,
                "kind": _KIND[p.specificity],
                "rate_limit": p.rate_limit.model_dump(exclude_none=True) if p.rate_limit else None,
                "rules": rules,
            }
        )
    return out
