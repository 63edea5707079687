"""The push supervisor: a `human_approval` call no grant or memory covers is POSTed to `supervisor.url`,
whose reply `{decision: approve|deny|escalate, reasoning, confidence}` settles it or leaves it to a human.

Timeouts, HTTP errors and malformed replies escalate — never approve. With `expose_content: false` each
argument is sent as its length and sha256 only. `injection_risk` is true when any argument string matches
one of `INJECTION_PATTERNS` (checked on the raw arguments, before anything is redacted).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from policy.core.model import Decision, ToolCall, canonical_json
from policy.core.redact import redact, redaction_keys
from policy.core.secrets import SecretRef

if TYPE_CHECKING:  # httpx costs ~40 ms to import; only a configured supervisor needs it
    import httpx

# (name, pattern), matched case-insensitively against every string in the arguments.
INJECTION_PATTERNS: tuple[tuple[str, str], ...] = (
    (
        "ignore-instructions",
        r"\b(ignore|disregard|forget|override)\b.{0,40}\b(previous|prior|above|earlier|all|your)\b.{0,40}"
        r"\b(instructions?|rules|prompts?|directions|guidelines)\b",
    ),
    ("new-instructions", r"\b(new|updated|real|actual)\s+(system\s+)?instructions\b"),
    ("role-override", r"\byou\s+are\s+now\b|\bact\s+as\s+(an?\s+|the\s+)?(admin|root|developer|system)\b"),
    ("prompt-markup", r"\bsystem\s+prompt\b|<\|?(system|im_start|im_end)\|?>|\[/?INST\]|<</?SYS>>"),
    (
        "exfiltrate-secrets",
        r"\b(reveal|print|dump|send|post|upload|exfiltrate|leak)\b.{0,40}"
        r"\b(secrets?|credentials?|api[_ -]?keys?|tokens?|passwords?|env(ironment)?\s+variables|ssh\s+keys?)\b",
    ),
    ("pipe-to-shell", r"\b(curl|wget)\b[^|\n]{0,200}\|\s*(ba|z|da)?sh\b"),
    ("hidden-unicode", "[\u200b-\u200f\u202a-\u202e\u2066-\u2069\U000e0000-\U000e007f]"),
)
_COMPILED = tuple((name, re.compile(rx, re.IGNORECASE)) for name, rx in INJECTION_PATTERNS)
_DECISIONS = ("approve", "deny", "escalate")


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield str(k)
            yield from _strings(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _strings(v)


def injection_risk(arguments: Mapping[str, Any]) -> list[str]:
    """The names of the injection patterns found anywhere in the arguments (empty: no known risk)."""
    found: list[str] = []
    for text in _strings(arguments):
        for name, rx in _COMPILED:
            if name not in found and rx.search(text):
                found.append(name)
    return found


def digest_arguments(arguments: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Each argument as `{length, sha256}` of its canonical JSON: what a blind supervisor sees."""
    out: dict[str, dict[str, Any]] = {}
    for key, value in arguments.items():
        text = canonical_json(value).encode("utf-8")
        out[str(key)] = {"length": len(text), "sha256": hashlib.sha256(text).hexdigest()}
    return out


@dataclass(frozen=True, slots=True)
class SupervisorReply:
    decision: str  # approve | deny | escalate
    reasoning: str
    confidence: float | None
    by: str


def parse_reply(data: Any, by: str) -> SupervisorReply:
    """Validate a supervisor's JSON reply. Raises ValueError with a precise message."""
    if not isinstance(data, Mapping):
        raise ValueError("the reply is not a JSON object")
    decision = data.get("decision")
    if decision not in _DECISIONS:
        raise ValueError(f"decision {decision!r} is not one of approve, deny, escalate")
    reasoning = data.get("reasoning", "")
    if not isinstance(reasoning, str):
        raise ValueError("reasoning must be a string")
    confidence = data.get("confidence")
    if confidence is not None and (
        isinstance(confidence, bool) or not isinstance(confidence, int | float) or not 0 <= confidence <= 1
    ):
        raise ValueError(f"confidence {confidence!r} is not a number between 0 and 1")
    return SupervisorReply(decision, reasoning, None if confidence is None else float(confidence), by)


class Supervisor:
    """Asks the configured supervisor about one call; `review` never raises and never approves on error."""

    def __init__(
        self,
        url: str | SecretRef,
        *,
        timeout: float,
        expose_content: bool,
        redact_keys: list[str],
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        # `supervisor.url` may be a `{$env}`/`{$file}` secret: read here, by the surface that asks (SecretMissing).
        url = url.resolve() if isinstance(url, SecretRef) else url
        self.url = url
        self.name = urlsplit(url).netloc or url
        self.timeout = timeout
        self.expose_content = expose_content
        self._keys = redaction_keys(redact_keys)
        self._transport = transport

    def payload(self, call: ToolCall, decision: Decision, trace_id: str) -> dict[str, Any]:
        risks = injection_risk(call.arguments)
        return {
            "trace_id": trace_id,
            "agent": call.agent,
            "surface": call.surface,
            "server": call.server,
            "tool": call.full_name,
            "call_hash": call.call_hash,
            "session_id": call.session_id,
            "arguments": redact(call.arguments, self._keys)
            if self.expose_content
            else digest_arguments(call.arguments),
            "arguments_exposed": self.expose_content,
            "annotations": dict(call.annotations),
            "rule": decision.rule,
            "reason": decision.reason,
            "injection_risk": bool(risks),
            "injection_patterns": risks,
        }

    async def review(self, call: ToolCall, decision: Decision, trace_id: str) -> SupervisorReply:
        import httpx

        body = self.payload(call, decision, trace_id)
        try:
            async with httpx.AsyncClient(timeout=self.timeout, transport=self._transport) as client:
                response = await client.post(self.url, json=body)
                response.raise_for_status()
                return parse_reply(response.json(), self.name)
        except httpx.TimeoutException:
            return self._escalate(f"no answer within {self.timeout:g} s")
        except httpx.HTTPStatusError as exc:
            return self._escalate(f"HTTP {exc.response.status_code}")
        except httpx.HTTPError as exc:
            return self._escalate(f"{type(exc).__name__}: {exc}")
        except ValueError as exc:
            return self._escalate(f"unusable reply: {exc}")

    def _escalate(self, why: str) -> SupervisorReply:
        return SupervisorReply("escalate", f"supervisor {self.name} failed ({why}): left to a human", None, self.name)
