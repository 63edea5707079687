"""The proxy lists a server's tools itself before a session's first `tools/call`, as mcpwrap does per process.

Rules that read what the server said about its tools (annotations, pins, look-alike names, output schemas)
must hold whether or not the agent listed first: an agent that skips `tools/list` would otherwise be judged
against nothing. So before the first judged call of an (agent, server, session), the proxy sends its own
`tools/list` (paginated, bounded) to where that call goes: the address it was judged at (the connection pin,
`servers.X.upstream`, refused like any connection to the control plane or the proxy), with the agent's own
headers (Authorization, Mcp-Session-Id, Mcp-Protocol-Version: the server may need them). The pages are fed to
the same path a client's listing takes (McpHandler.visible, Gate.observe_tools). The listing is never shown to
the agent and is not a call record (the Gate may record events for it, as for mcpwrap's).

Sent with httpx from the hook rather than as a mitmproxy replay: a replayed flow would come back through this
addon (judged, recorded, tracked as the agent's), its response would arrive in other hooks with nothing to
await here, and a replay cannot be told to connect to the judged address. httpx is awaited in place, bounded
in time and size, and connects exactly where it is told.

Any failure (connection, timeout, HTTP status, unreadable or too large answer, a JSON-RPC error, pins that
cannot be compared) raises LearnFailed: the call is refused, never judged without what the listing says.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import certifi
import httpx
from mitmproxy import http

from addons.sse_stream import SseParser
from addons.upstream import Upstream, upstream_path
from policy.wire.jsonrpc import id_key

MAX_PAGES = 50  # as mcpwrap (MAX_LIST_PAGES): a server listing more pages than this is cut short
MAX_BYTES = 8 * 1024 * 1024  # one page's answer; more is refused as too large to learn from
SECONDS = 10.0  # one page, connection included (mcpwrap waits as long for its own requests)
SESSIONS = 8192  # sessions remembered as learned; beyond, all are forgotten (each lists once more)
# Headers of the agent's request not copied onto the listing: hop-by-hop, framing, body-bound, routing.
_DROPPED = frozenset(
    {
        "host", "content-length", "content-type", "content-encoding", "transfer-encoding", "connection",
        "keep-alive", "te", "trailer", "upgrade", "proxy-authorization", "proxy-connection", "accept",
        "accept-encoding", "expect", "last-event-id", "mcp-method", "mcp-name",
    }
)  # fmt: skip


async def as_asked(flow: http.HTTPFlow, server: str) -> Destination:
    """The destination as the request names it (for a fetch of a test's or an embedding program's own)."""
    return Destination(flow.request.url, flow.request.host_header or flow.request.host)


class LearnFailed(Exception):
    """The server's tools could not be learned: the call waiting on them is refused."""


@dataclass(frozen=True, slots=True)
class Destination:
    """Where the listing goes: `url` names the judged address; `host` is the Host header; `sni` the TLS name."""

    url: str
    host: str
    sni: str | None = None


@dataclass(frozen=True, slots=True)
class PageRequest:
    """One `tools/list` request of the proxy's own, ready to send."""

    destination: Destination
    headers: tuple[tuple[str, str], ...]
    request_id: str
    body: bytes
    on_stream: bool = False  # a 2024-11-05 session: the answer comes on its event stream, not on the POST


type Fetch = Callable[[PageRequest], Awaitable[Mapping[str, Any]]]  # one page -> the JSON-RPC response
type Feed = Callable[[Mapping[str, Any]], None]  # one page's result -> remembered (raises LearnFailed)
type Address = Callable[[str, str, int], Awaitable[str]]  # (client, host, port) -> the address to connect to


async def destination(
    request: http.Request, client: str, upstream: Upstream | None, base_path: str, address: Address
) -> Destination:
    """Where the call in `request` goes, as the call's own connection would: to `servers.X.upstream` when
    set (path rewritten as `send_upstream` does), at the address judged for this client (the pin), else
    resolved and checked (`address` raises ValueError for a refused or unresolvable one)."""
    scheme, host, port, path = request.scheme, request.host, request.port, request.path
    sent_as = request.host_header if upstream is None else None  # the Host the call itself carries
    if upstream is not None:
        scheme, host, port, path = (
            upstream.scheme,
            upstream.host,
            upstream.port,
            upstream_path(upstream, base_path, path),
        )
    ip = await address(client, host, port)
    shown = f"[{ip}]" if ":" in ip else ip
    name = f"[{host}]" if ":" in host else host
    default = port == {"http": 80, "https": 443}.get(scheme)
    return Destination(f"{scheme}://{shown}:{port}{path}", sent_as or (name if default else f"{name}:{port}"),
                       host if scheme == "https" and host != ip else None)  # fmt: skip


def listing_headers(fields: tuple[tuple[bytes, bytes], ...], host: str, modern: bool) -> tuple[tuple[str, str], ...]:
    """The agent's request headers as the listing carries them: its credentials and MCP session/protocol
    headers kept; framing, hop-by-hop and routing headers replaced by the listing's own."""
    out = [("host", host), ("content-type", "application/json"), ("accept", "application/json, text/event-stream")]
    for raw_key, raw_value in fields:
        key = raw_key.decode("latin-1").lower()
        if key not in _DROPPED:
            out.append((key, raw_value.decode("latin-1")))  # sent back as the very bytes (fetch_over_http)
    if modern or any(k.lower() == b"mcp-method" for k, _ in fields):
        out.append(("mcp-method", "tools/list"))
    return tuple(out)


def page_body(request_id: str, params: Mapping[str, Any]) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "method": "tools/list", "params": dict(params)}).encode()


def answer_from(body: bytes, content_type: str, request_id: str) -> Mapping[str, Any]:
    """The JSON-RPC response to `request_id` in an HTTP answer (JSON or an SSE stream). Raises ValueError."""
    if content_type.split(";", 1)[0].strip().lower() == "text/event-stream":
        parser = SseParser()
        for event in parser.feed(body + b"\n\n"):
            if not event.data:
                continue
            try:
                msg = json.loads(event.data)
            except ValueError:
                continue  # not JSON: not the answer (a server may send other events)
            if isinstance(msg, dict) and msg.get("id") == request_id and ("result" in msg or "error" in msg):
                return msg
        raise ValueError("the event stream ended without the answer to the listing")
    try:
        msg = json.loads(body)
    except ValueError as exc:
        raise ValueError(f"the answer is not JSON ({exc})") from None
    if not isinstance(msg, dict) or msg.get("id") != request_id:
        raise ValueError("the answer is not the JSON-RPC response to the listing")
    return msg


def _verify() -> ssl.SSLContext | bool:
    """Upstream certificates are checked as mitmproxy checks them: its `ssl_insecure` option, and the CAs of
    `ssl_verify_upstream_trusted_ca` / `_confdir` (certifi + `proxy.extra_ca` under agent-mesh serve/proxy),
    else certifi's; like mitmproxy's OpenSSL, without Python 3.13's X.509 strict mode."""
    cafile: str | None = None
    capath: str | None = None
    try:
        from mitmproxy import ctx

        options = ctx.options
        if options.ssl_insecure:
            return False
        cafile = options.ssl_verify_upstream_trusted_ca or None
        capath = options.ssl_verify_upstream_trusted_confdir or None
    except (AttributeError, KeyError):
        pass
    context = ssl.create_default_context(cafile=cafile or (None if capath else certifi.where()), capath=capath)
    context.verify_flags &= ~ssl.VERIFY_X509_STRICT
    return context


async def fetch_over_http(page: PageRequest) -> Mapping[str, Any]:
    """Send one page request with httpx (no proxy from the environment: straight to the judged address)."""
    extensions = {"sni_hostname": page.destination.sni} if page.destination.sni else None
    try:
        async with (
            httpx.AsyncClient(verify=_verify(), trust_env=False, timeout=SECONDS, follow_redirects=False) as client,
            asyncio.timeout(SECONDS),
        ):
            request = client.build_request(
                "POST",
                page.destination.url,
                headers=[(k.encode("latin-1"), v.encode("latin-1")) for k, v in page.headers],
                content=page.body,
                extensions=extensions,
            )
            response = await client.send(request, stream=True)
            try:
                if not 200 <= response.status_code < 300:
                    raise LearnFailed(f"the server answered the listing with HTTP {response.status_code}")
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_BYTES:
                        raise LearnFailed(f"the listing is over {MAX_BYTES} bytes")
                kind = response.headers.get("content-type", "")
                if page.on_stream:
                    return {}  # accepted: the answer comes on the session's event stream (through_stream)
            finally:
                await response.aclose()
    except TimeoutError:
        raise LearnFailed(f"the server did not answer the listing within {SECONDS:g} s") from None
    except httpx.HTTPError as exc:
        raise LearnFailed(f"the listing could not be sent ({type(exc).__name__}: {exc})") from None
    try:
        return answer_from(bytes(body), kind, page.request_id)
    except ValueError as exc:
        raise LearnFailed(str(exc)) from None


async def through_stream(
    fetch: Fetch, own: dict[str, asyncio.Future[dict[str, Any]]], page: PageRequest
) -> Mapping[str, Any]:
    """One page of a 2024-11-05 session: POSTed to its endpoint, answered on its event stream, where the
    stream's tracker (`own`, keyed by the request id's key) hands the answer here and keeps it from the client."""
    key = id_key(page.request_id)
    waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
    own[key] = waiter
    try:
        answer = await fetch(page)
        if "result" in answer or "error" in answer:
            return answer  # answered on the POST after all
        async with asyncio.timeout(SECONDS):
            return await waiter
    except TimeoutError:
        raise LearnFailed(f"the server did not answer the listing on its event stream within {SECONDS:g} s") from None
    except ConnectionError as exc:
        raise LearnFailed(f"the event stream ended before the listing was answered ({exc})") from None
    finally:
        own.pop(key, None)


class ToolLearner:
    """Which (agent, server, session) have had their server's tools listed; lists for those that have not."""

    def __init__(self, fetch: Fetch = fetch_over_http) -> None:
        self.fetch = fetch
        self._learned: set[tuple[str, str, str]] = set()
        self._inflight: dict[tuple[str, str, str], asyncio.Future[None]] = {}
        self._ids = 0

    def knows(self, key: tuple[str, str, str]) -> bool:
        return key in self._learned

    def learned(self, key: tuple[str, str, str]) -> None:
        """The tools of this session's server are known: all pages of the proxy's own listing were fed."""
        if len(self._learned) >= SESSIONS:
            self._learned.clear()
        self._learned.add(key)

    def forget(self, server: str | None) -> None:
        """The server said its tools changed (None: a server not known here): every session of it (of every
        server) lists again before its next call."""
        self._learned = {k for k in self._learned if server is not None and k[1] != server}

    async def learn(
        self,
        key: tuple[str, str, str],
        pages: Callable[[str, Mapping[str, Any]], PageRequest],
        feed: Feed,
        fetch: Fetch | None = None,
    ) -> None:
        """List (once, however many first calls arrive together) and feed each page. Raises LearnFailed."""
        running = self._inflight.get(key)
        if running is not None:
            await asyncio.shield(running)
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._inflight[key] = done
        try:
            await self._list(pages, feed, fetch or self.fetch)
        except asyncio.CancelledError:
            done.set_exception(LearnFailed("the listing was cancelled"))
            raise
        except LearnFailed as exc:
            done.set_exception(exc)
            raise
        except Exception as exc:  # a store that failed under observe_tools, a bug: never a silent allow
            failed = LearnFailed(f"{type(exc).__name__}: {exc}")
            done.set_exception(failed)
            raise failed from exc
        else:
            self.learned(key)
            done.set_result(None)
        finally:
            self._inflight.pop(key, None)
            if done.done() and not done.cancelled():
                done.exception()  # retrieved here: a failure with no other waiter is not "never retrieved"

    async def _list(self, pages: Callable[[str, Mapping[str, Any]], PageRequest], feed: Feed, fetch: Fetch) -> None:
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            self._ids += 1
            request_id = f"agent-mesh-learn-{self._ids}"
            page = pages(request_id, {} if cursor is None else {"cursor": cursor})
            answer = await fetch(page)
            result = answer.get("result")
            if not isinstance(result, dict):
                err = answer.get("error")
                why = err.get("message") if isinstance(err, dict) else None
                raise LearnFailed(f"the server answered the listing with an error: {why or 'no result'}")
            feed(result)
            cursor = result.get("nextCursor") if isinstance(result.get("nextCursor"), str) else None
            if cursor is None:
                return
