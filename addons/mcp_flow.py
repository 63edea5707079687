"""One POSTed JSON-RPC body to an MCP server: judge each call (every request kind policy.wire.kinds says is
one, and the client's answers to its server's requests), then answer, forward, or forward with refused
elements swapped for pings whose answers become the refusals (batches, the 2024-11-05 transport)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from mitmproxy import http

from addons.classify import McpBody
from addons.flow_judge import REFUSED_ICON, REFUSED_MARK, Judge, annotate
from addons.mcp_asked import Asked, AskedRequests
from addons.mcp_exchange import ResponseTracker
from addons.mcp_learn import (
    Destination,
    LearnFailed,
    PageRequest,
    ToolLearner,
    listing_headers,
    page_body,
    through_stream,
)
from addons.proxy_auth import Identity
from policy import (
    HttpInfo,
    Outcome,
    RequestKind,
    RequestRole,
    ToolCall,
    Verdict,
    classify_request,
    policy_hides,
)
from policy.gate.listing import Hidden
from policy.wire import era, refusals, rejects
from policy.wire.headers import SESSION_HEADER
from policy.wire.jsonrpc import HEADER_MISMATCH, INTERNAL_ERROR, INVALID_PARAMS, REFUSED, dump, error
from policy.wire.messages import RpcMessage
from policy.wire.names import imitated, misspelled_method

JSON = {"content-type": "application/json"}
LEARN_RULE = "mcp.tools_unknown"  # the rule of a call refused because its server's tools could not be listed
type Locate = Callable[[http.HTTPFlow, str], Awaitable[Destination]]  # where a flow's server listing goes
MAX_LISTED = 4096  # tool names remembered per server (lookalike checks); a flood of listed names is not kept
PROXY_AUTHORIZATION = "proxy-authorization"


@dataclass(slots=True)
class _Judged:
    msg: RpcMessage
    call: ToolCall
    modern: bool
    verdict: Verdict | None = None
    is_tool: bool = False
    asked: Asked | None = None  # set when this is the client's answer to its server's request
    input_of: bool = False  # an input request a 2026-07-28 retry answers (its message is `msg`)
    continues: bool = False  # a 2026-07-28 retry carrying input: the Gate binds it to its original call


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
        # Tool names each server listed: a call naming a lookalike of one is refused (policy.wire.names).
        self.listed: dict[str, set[str]] = {}
        self.asked = AskedRequests(self.denies, self._withheld, self._continues)
        # The proxy's own tools/list before a session's first call (addons/mcp_learn); None: not learned.
        self.learner: ToolLearner | None = None
        self.locate: Locate | None = None

    def hides(self, agent: str, server: str, session: str | None) -> Hidden:
        """What to hide from this agent's resources/prompts lists of `server` (policy.gate.listing)."""
        return policy_hides(self.judge.gate, agent=agent, surface="mcp_http", server=server, session=session)

    def denies(self, agent: str, server: str, kind: RequestKind, session: str | None) -> bool:
        """Whether the Gate refuses a server's request to the client without waiting (checked inside its event
        stream: the policy alone, the guard and a stop; the client's answer is judged by the whole ladder)."""
        call = ToolCall(agent, "mcp_http", server, kind.tool, kind.arguments or {}, session)
        return self.judge.gate.policy_refusal(call) is not None

    def visible(self, agent: str, server: str, session: str | None, tool: dict[str, Any]) -> bool:
        """tools/list filtering; remembers each tool's annotations for the calls that follow."""
        name = tool.get("name")
        if not isinstance(name, str):
            return False
        names = self.listed.setdefault(server, set())
        if len(names) < MAX_LISTED:
            names.add(name)
        ann = tool.get("annotations") if server in self.trusted else None
        if isinstance(ann, dict):
            self.annotations[(server, name)] = ann
        if tool.get("outputSchema") is not None:
            self.with_output_schema.add((server, name))
        call = ToolCall(agent, "mcp_http", server, name, session_id=session, annotations=ann or {})
        return self.judge.gate.visible(call)

    def listing(self, agent: str, server: str, session: str | None, result: Any) -> tuple[Any, int]:
        """A tools/list result as this agent may see it -> (result, entries removed): the Gate compares the
        tools with their pins and leaves out what the agent may not see (Gate.observe_tools, as mcpwrap)."""
        tools = result.get("tools") if isinstance(result, dict) else None
        if not isinstance(tools, list):
            return result, 0
        for tool in tools:
            if isinstance(tool, dict):
                self.visible(agent, server, session, tool)  # remembers annotations and output schemas
        seen = self.judge.gate.observe_tools(server, agent, tools, surface="mcp_http", session_id=session)
        if len(seen.tools) == len(tools):
            return result, 0
        return {**result, "tools": seen.tools}, len(tools) - len(seen.tools)

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
        mcp_session = headers.get(SESSION_HEADER) or ""
        session = mcp_session or identity.session or flow.client_conn.id
        if mcp_session:
            self.asked.met(mcp_session, agent, body.server)
        tracker.owner = (agent, body.server)  # requests its server sends in this POST's stream are this agent's
        judged: list[_Judged] = []
        answers: dict[int, dict[str, Any]] = {}
        has_inputs = False
        unlearned = await self._learn(flow, agent, body, session, tracker if legacy else None) if self.learner else None
        for i, msg in enumerate(body.messages):
            if msg.method is None:
                asked = self.asked.answered(mcp_session, msg.raw)
                if asked is not None:  # the client answers its server's request: that request is the call
                    args = asked.kind.arguments or {}
                    call = ToolCall(agent, "mcp_http", body.server, asked.kind.tool, args, session, info)
                    judged.append(_Judged(msg, call, False, asked=asked))
                continue
            if not msg.has_id:
                if not msg.method.startswith("notifications/"):
                    answers[i] = {}  # a call without an id cannot be answered, so cannot be refused: not run
                continue
            params = msg.raw.get("params")
            misspelled = misspelled_method(msg.method)
            if misspelled is not None:  # as mcpwrap: never judged as an unknown method a lenient server might run
                answers[i] = rejects.misspelt_method(msg.id, msg.method, misspelled)
                continue
            try:
                kind = classify_request(msg.method, params)
            except ValueError as exc:
                answers[i] = rejects.unreadable(msg.id, exc)
                continue
            if kind.role is not RequestRole.CALL:
                if kind.role is RequestRole.LIST:
                    tracker.track_list(msg.id, agent, body.server, session, msg.method)
                continue
            version = era.protocol_version(msg.raw, headers)
            modern = era.is_modern_request(msg.raw)
            is_tool = msg.method == "tools/call"
            if is_tool and unlearned is not None:  # fail closed: never judged without what the listing says
                version = era.protocol_version(msg.raw, headers)
                call = ToolCall(agent, "mcp_http", body.server, kind.tool, kind.arguments or {}, session, info, version)
                answers[i] = self._unlearned(msg, call, era.is_modern_request(msg.raw), unlearned)
                continue
            lookalike = imitated(kind.tool, self.listed.get(body.server, ())) if is_tool else None
            if lookalike is not None:  # rules for the listed tool would miss it; a lenient server might run that tool
                answers[i] = rejects.lookalike_tool(msg.id, kind.tool, lookalike)
                continue
            # Annotations describe tools: a resource read or an unknown method has none to trust.
            ann = self.annotations.get((body.server, kind.tool), {}) if is_tool else {}
            args = kind.arguments or {}
            call = ToolCall(agent, "mcp_http", body.server, kind.tool, args, session, info, version, ann)
            if isinstance(params, dict) and "inputResponses" in params:
                # A 2026-07-28 retry: each input request it answers is a call of its own, judged with it.
                inputs = self.asked.input_responses(call, msg.params)
                if inputs is None:
                    why = "inputResponses answer input requests agent-mesh did not see the server make"
                    answers[i] = error(msg.id, INVALID_PARAMS, why)
                    continue
                has_inputs = True
                for k in inputs:
                    asked_call = ToolCall(agent, "mcp_http", body.server, k.tool, k.arguments or {}, session, info)
                    judged.append(_Judged(msg, asked_call, modern, input_of=True))
            judged.append(_Judged(msg, call, modern, is_tool=is_tool, continues=era.is_continuation(params)))
        if len(judged) == 1:
            verdicts = [await self.judge.judge(flow, judged[0].call, continues=judged[0].continues)]
        else:
            verdicts = list(
                await asyncio.gather(*(self.judge.judge(flow, j.call, continues=j.continues) for j in judged))
            )
        for j, verdict in zip(judged, verdicts, strict=True):
            j.verdict = verdict
        annotate(flow, [(j.call, v) for j, v in zip(judged, verdicts, strict=True)])
        index: dict[int, int] = {}
        replaced: dict[int, dict[str, Any]] = {}
        withheld = self._inputs_refused([j for j in judged if j.input_of]) if has_inputs else {}
        for j in judged:
            assert j.verdict is not None
            if j.input_of:
                continue
            refused_input = withheld.get(id(j.msg))
            if refused_input is not None:
                index = index or {id(m): i for i, m in enumerate(body.messages)}
                why = "one of its input responses was refused"
                outcome = Outcome(False, error=why) if j.verdict.allowed else Outcome(False)
                self.judge.gate.finish(j.call, j.verdict, outcome)
                answers[index[id(j.msg)]] = refusals.refusal_error(j.msg.id, refused_input)
                continue
            if j.verdict.allowed and j.asked is None:
                tracker.track_call(j.msg.id, j.call, j.verdict)
                continue
            index = index or {id(m): i for i, m in enumerate(body.messages)}
            if j.asked is not None:
                self._answer_to_server(j, j.verdict, replaced, index[id(j.msg)])
                continue
            self.judge.gate.finish(j.call, j.verdict, Outcome(False))
            if not j.is_tool:  # only a tool call has a result shape for errors
                answers[index[id(j.msg)]] = refusals.refusal_error(j.msg.id, j.verdict)
                continue
            answers[index[id(j.msg)]] = refusals.refusal(
                j.msg.id,
                j.verdict,
                modern=j.modern,
                refuse_as=self.refuse_as,
                structured=(body.server, j.call.tool) not in self.with_output_schema,
            )
        if replaced:
            body = _replaced(body, replaced)
            if not answers:
                raws = [m.raw for m in body.messages]
                flow.request.content = dump(raws if body.is_batch else raws[0])
        if answers:
            self._apply(flow, body, answers, tracker, legacy)

    async def _learn(
        self, flow: http.HTTPFlow, agent: str, body: McpBody, session: str, stream: ResponseTracker | None
    ) -> str | None:
        """Before a session's first tools/call, list the server's tools (addons/mcp_learn): None when they
        are known, else why they could not be learned (the calls are refused). `stream`: the 2024-11-05
        session's event stream, where the listing is answered."""
        assert self.learner is not None
        key = (agent, body.server, session)
        if self.learner.knows(key):
            return None
        first = next((m for m in body.messages if m.method == "tools/call" and m.has_id), None)
        if first is None:
            return None
        meta = first.params.get("_meta") if isinstance(first.params, dict) else None
        modern = era.is_modern_request(first.raw)
        envelope: dict[str, Any] = {"_meta": meta} if modern else {}
        try:
            if self.locate is None:
                raise LearnFailed("no way to reach the server")
            where = await self.locate(flow, body.server)
            headers = listing_headers(flow.request.headers.fields, where.host, modern)

            def page(request_id: str, params: Mapping[str, Any]) -> PageRequest:
                content = page_body(request_id, {**envelope, **params})
                return PageRequest(where, headers, request_id, content, on_stream=stream is not None)

            def feed(result: Mapping[str, Any]) -> None:
                tools = result.get("tools")
                if not isinstance(tools, list):
                    raise LearnFailed("the listing has no tools array")
                for tool in tools:
                    if isinstance(tool, dict):
                        self.visible(agent, body.server, session, tool)  # annotations, output schemas, names
                seen = self.judge.gate.observe_tools(body.server, agent, tools, surface="mcp_http", session_id=session)
                if seen.error is not None:
                    raise LearnFailed(f"the tools could not be compared with their pins: {seen.error}")

            fetch = self.learner.fetch if stream is None else partial(through_stream, self.learner.fetch, stream.own)
            await self.learner.learn(key, page, feed, fetch)
        except (LearnFailed, ValueError) as exc:
            return str(exc)
        return None

    def _unlearned(self, msg: RpcMessage, call: ToolCall, modern: bool, why: str) -> dict[str, Any]:
        """A call whose server's tools could not be learned: refused either way, recorded. When the policy
        (a stop, the guard) refuses it whatever the tools say, that refusal, as after a listing; else answered
        as mcpwrap answers a call it could not judge (a JSON-RPC internal error)."""
        gate = self.judge.gate
        verdict = gate.policy_refusal(call)
        if verdict is not None:
            gate.finish(call, verdict, Outcome(False))
            structured = (call.server, call.tool) not in self.with_output_schema
            return refusals.refusal(msg.id, verdict, modern=modern, refuse_as=self.refuse_as, structured=structured)
        reason = f"agent-mesh could not learn the server's tools ({why}); the call was not run"
        gate.finish(call, gate.refuse(LEARN_RULE, reason), Outcome(False))
        return error(msg.id, INTERNAL_ERROR, reason)

    def _inputs_refused(self, inputs: list[_Judged]) -> dict[int, Verdict]:
        """Record each judged input response; the first refused one of each message (keyed by id(msg))."""
        refused: dict[int, Verdict] = {}
        for j in inputs:
            assert j.verdict is not None
            self.judge.gate.finish(j.call, j.verdict, Outcome(j.verdict.allowed))
            if not j.verdict.allowed:
                refused.setdefault(id(j.msg), j.verdict)
        return refused

    def _withheld(self, call: ToolCall) -> Verdict | None:
        """A server's input request inside a response: the Gate's refusal, recorded, when it refuses it without
        waiting (Gate.policy_refusal); None to let it pass (the client's answer is judged when it comes)."""
        verdict = self.judge.gate.policy_refusal(call)
        if verdict is not None:
            self.judge.gate.finish(call, verdict, Outcome(False))
        return verdict

    def _continues(self, call: ToolCall, verdict: Verdict | None) -> None:
        """`call` was answered `input_required`: its retry may continue it (`verdict`, the call's own), or, its
        input refused (None), may not. The Gate keeps which (Gate.check_continuation)."""
        if verdict is None:
            self.judge.gate.inputs_refused(call)
        else:
            self.judge.gate.input_required(call, verdict)

    def _answer_to_server(self, j: _Judged, verdict: Verdict, replaced: dict[int, dict[str, Any]], i: int) -> None:
        """The client's answer to its server's request: forwarded if the request is allowed, else an error."""
        assert j.asked is not None
        if verdict.allowed and not j.asked.withheld:
            self.judge.gate.finish(j.call, verdict, Outcome(True))
            return
        if verdict.allowed:
            # Withheld in the stream while the policy denied it, allowed now (a reload): the client never saw it.
            why = "agent-mesh withheld this request from the client while the policy denied it"
            self.judge.gate.finish(j.call, verdict, Outcome(False, error=why))
            replaced[i] = error(j.msg.id, REFUSED, why)
            return
        self.judge.gate.finish(j.call, verdict, Outcome(False))
        replaced[i] = refusals.refusal_error(j.msg.id, verdict)

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
                flow.response = http.Response.make(200, dump(replies), JSON)
            else:
                flow.response = http.Response.make(200, dump(replies[0]), JSON)
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
        flow.request.content = dump(out if body.is_batch else out[0])


def _replaced(body: McpBody, replaced: dict[int, dict[str, Any]]) -> McpBody:
    """`body` with some of the client's responses replaced (refusals of its server's requests)."""
    messages = [RpcMessage(replaced[i], None, True) if i in replaced else m for i, m in enumerate(body.messages)]
    return McpBody(body.server, messages, body.is_batch)


def header_mismatch(flow: http.HTTPFlow, body: McpBody, message: str) -> None:
    """Answer a request whose Mcp-Method / Mcp-Name header disagrees with its body, as the SDK does."""
    first = body.messages[0]
    reply = error(first.id if not body.is_batch else None, HEADER_MISMATCH, message)
    flow.response = http.Response.make(400, dump(reply), JSON)
    flow.comment = f"{REFUSED_ICON} refused: {message}"
    flow.marked = REFUSED_MARK


def header_value(headers: http.Headers, name: str) -> str | None:
    """`headers.get(name)` for a lower-case name, read from the raw fields (repeated fields joined with ", ")."""
    raw = name.encode("latin-1")
    found: str | None = None  # one field is the usual case: no list, no join
    for key, value in headers.fields:
        if key.lower() == raw:
            text = value.decode("utf-8", "surrogateescape")
            found = text if found is None else f"{found}, {text}"
    return found


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
