"""The vocabulary every layer shares: ToolCall in, Decision and Verdict out, Outcome afterwards.

All types are read-only (`readonly`); the call hash is canonical so every process computes the same one.
"""

from __future__ import annotations

import hashlib
import json
import json.encoder as json_encoder
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, dataclass_transform, overload

try:
    import _json as json_c
except ImportError:  # Pythons without the C accelerator
    json_c = None  # type: ignore[assignment]


@overload
def readonly[T](cls: type[T], /) -> type[T]: ...
@overload
def readonly[T](*, eq: bool = True) -> Callable[[type[T]], type[T]]: ...
@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def readonly[T](cls: type[T] | None = None, /, *, eq: bool = True) -> Any:
    """A slots dataclass whose fields type checkers treat as frozen: assigning one is a mypy error (strict on
    policy/, addons/ and mcpwrap/), equality and hashing are a frozen dataclass's.

    For the types built on every call: a frozen dataclass sets each field through `object.__setattr__`,
    which made building them ~17 % of the proxy addon's instructions per request. Runtime does not stop an
    assignment; the type check does.
    """

    def wrap(c: type[T]) -> type[T]:
        return dataclass(slots=True, eq=eq, unsafe_hash=eq)(c)

    return wrap if cls is None else wrap(cls)


Surface = Literal["mcp_stdio", "mcp_http", "openapi", "http", "cli"]
SURFACES: tuple[str, ...] = ("mcp_stdio", "mcp_http", "openapi", "http", "cli")


class Action(StrEnum):
    """What a policy rule says."""

    ALLOW = "allow"
    DENY = "deny"
    HUMAN_APPROVAL = "human_approval"


class VerdictKind(StrEnum):
    """What happens to the call after the whole decision ladder."""

    ALLOW = "allow"
    DENY = "deny"
    PENDING = "pending"
    RATE_LIMITED = "rate_limited"
    LOOP_DETECTED = "loop_detected"


_checked = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode
# The C encoder `JSONEncoder.encode` builds on every call, built once: it is most of the cost of encoding a
# small value. Without a circular-reference check it can be shared; a cycle ends in RecursionError, and
# then the checking encoder gives the usual answer (ValueError for a cycle).
_fast = (
    json_c.make_encoder(None, str, json_encoder.encode_basestring, None, ":", ",", True, False, True)
    if json_c is not None
    else None
)


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace: the form hashes are computed over."""
    if _fast is not None and not isinstance(value, str):
        try:
            return "".join(_fast(value, 0))
        except RecursionError:
            pass
    return _checked(value)


# The decoder's C scanner: (value, end) of the JSON value at an index, StopIteration when none starts there.
_scan: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
_SPACE = " \t\n\r"  # JSON's whitespace


def parse_json(data: bytes) -> Any:
    """`json.loads` of a UTF-8 message body (a leading BOM skipped), for the hot paths of the adapters.

    Raises UnicodeDecodeError or json.JSONDecodeError as `json.loads` does, with the same messages. It
    skips what `json.loads` spends most of a small body on: guessing the encoding and two regular
    expressions. Only UTF-8 is read, as MCP and RFC 8259 require between systems: a UTF-16 or UTF-32 body,
    which `json.loads` would guess, fails to parse here, and so is refused rather than judged.
    """
    text = data.decode("utf-8")
    if text[:1] == "\ufeff":
        text = text[1:]
    start = len(text) - len(text.lstrip(_SPACE)) if text[:1] in _SPACE else 0
    try:
        value, end = _scan(text, start)
    except StopIteration as err:
        raise json.JSONDecodeError("Expecting value", text, err.value) from None
    if end != len(text):
        rest = text[end:]
        space = len(rest) - len(rest.lstrip(_SPACE))
        if space != len(rest):
            raise json.JSONDecodeError("Extra data", text, end + space)
    return value


def call_hash(agent: str, full_name: str, arguments: Mapping[str, Any], http: HttpInfo | None = None) -> str:
    """SHA-256 of agent, full tool name and canonical JSON arguments, and for a call that arrived over HTTP
    its canonical target (method, host, port, path, scheme) and body digest: an approval given for one
    host, path or body is never spent on another. Without `http` the inputs are what they always were."""
    if http is None:
        payload = canonical_json([agent, full_name, arguments])
    else:
        target = [http.method, http.host, http.port, http.path, http.scheme, http.digest]
        payload = canonical_json([agent, full_name, arguments, target])
    # surrogatepass: a lone surrogate the agent sent (a bad header, a JSON escape) still hashes, so the call
    # is judged and recorded instead of failing before it has a record.
    return hashlib.sha256(payload.encode("utf-8", "surrogatepass")).hexdigest()


@readonly
class HttpInfo:
    """The HTTP request line of a call that arrived over HTTP: method, host and decoded path, and when the
    proxy knows them the port, the scheme and `digest`, a SHA-256 of the query and body as sent."""

    method: str
    host: str
    path: str
    port: int | None = None
    scheme: str | None = None
    digest: str | None = None


@readonly(eq=False)
class ToolCall:
    """One tool call by one agent, normalised from any surface."""

    agent: str
    surface: Surface
    server: str
    tool: str
    arguments: Mapping[str, Any] = field(default_factory=dict)
    session_id: str | None = None
    http: HttpInfo | None = None
    mcp_protocol_version: str | None = None
    annotations: Mapping[str, Any] = field(default_factory=dict)
    # Computed once: the gate, the store and the trace all need them for the same call.
    full_name: str = field(init=False, repr=False)
    call_hash: str = field(init=False, repr=False)

    def __post_init__(self) -> None:
        full_name = f"{self.server}.{self.tool}" if self.server else self.tool
        object.__setattr__(self, "full_name", full_name)
        object.__setattr__(self, "call_hash", call_hash(self.agent, full_name, self.arguments, self.http))


@readonly
class Decision:
    """What the policy says about a call, with the rule that said it and why."""

    action: Action
    rule: str
    reason: str
    policy: str | None = None
    errors: tuple[str, ...] = ()
    considered: tuple[str, ...] = ()


@readonly
class Verdict:
    """What happens to a call: the Decision after rate limits, approvals, grants, memory and supervisor."""

    kind: VerdictKind
    decision: Decision
    decided_by: str
    reason: str
    trace_id: str
    approval_id: str | None = None
    retry_after: float | None = None
    precedents: tuple[str, ...] = ()
    decision_ms: float | None = None  # time Gate.check took, recorded for the latency histogram of /metrics

    @property
    def allowed(self) -> bool:
        return self.kind is VerdictKind.ALLOW

    def timed(self, decision_ms: float | None) -> Verdict:
        """This verdict with `decision_ms` set (dataclasses.replace, without its per-call introspection)."""
        return Verdict(
            self.kind,
            self.decision,
            self.decided_by,
            self.reason,
            self.trace_id,
            self.approval_id,
            self.retry_after,
            self.precedents,
            decision_ms,
        )

    @property
    def code(self) -> str:
        """The stable code agents see: allowed, denied, approval_pending, rate_limited, loop_detected."""
        return _CODES[self.kind]


_CODES: dict[VerdictKind, str] = {
    VerdictKind.ALLOW: "allowed",
    VerdictKind.DENY: "denied",
    VerdictKind.PENDING: "approval_pending",
    VerdictKind.RATE_LIMITED: "rate_limited",
    VerdictKind.LOOP_DETECTED: "loop_detected",
}


@readonly
class Outcome:
    """What happened after the verdict: forwarded (with the upstream's status) or answered by the mesh."""

    forwarded: bool
    status: int | None = None
    is_error: bool | None = None
    exit_code: int | None = None
    error: str | None = None
    latency_ms: float | None = None

    @property
    def label(self) -> str:
        if not self.forwarded:
            return "refused" if self.error is None else "error"
        if self.error is not None:
            return "error"
        if self.is_error or (self.status is not None and self.status >= 400) or self.exit_code:
            return "upstream_error"
        return "ok"


def split_tool(full: str) -> tuple[str, str]:
    """`filesystem.write_file` -> ("filesystem", "write_file"); the server is what precedes the first dot."""
    server, dot, tool = full.partition(".")
    return (server, tool) if dot else ("", full)
