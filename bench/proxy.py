"""Benchmark the HTTP adapter: small JSON-RPC `tools/call` POSTs through plain mitmdump and through mitmdump with
the governance addon (gate check, SQLite store, batched trace writer, outcome parsing), and direct for reference.

Throughput: requests/s with CONCURRENCY keep-alive connections for a fixed time. Direct is measured once, as the
client's own ceiling; the two proxies (both up all along) alternate in rounds, in ABBA order (plain first on even
rounds, the addon first on odd ones), so a slow spell of the machine hits both and neither always runs after the
other; the ratio is the median of the rounds' ratios. Latency: p50/p99 of one connection's sequential requests.
Ratios are against plain mitmdump measured in the same run. A third mitmdump runs the addon without its
write-ahead step (bench/tools/no_write_ahead.py, the path before write-ahead), in the same rotation, to show
what making each allowed call's decision record durable before forwarding costs.
Run: `make bench` or `.venv/bin/python bench/proxy.py [--seconds S] [--rounds R] [--requests N]`.
Targets: the addon keeps >= 85 % of plain mitmdump's throughput and adds <= 0.5 ms at p50.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MITMDUMP = Path(sys.executable).with_name("mitmdump")
ADDON = ROOT / "addons" / "mesh_addon.py"
CONCURRENCY = 8
PLAIN, MESH = "plain mitmdump", "mitmdump + agent-mesh"
BARE = "  without write-ahead"
NO_WRITE_AHEAD = ROOT / "bench" / "tools" / "no_write_ahead.py"
START_SECONDS = 30.0
CONFIG = """
version: 1
state_dir: {state}
agents: {{bench: {{token: t0ken}}}}
servers:
  bench: {{mcp_url: "http://127.0.0.1:{port}/mcp"}}
policies:
  - name: bench
    agent: bench
    rules:
      - {{tools: ["bench.echo"], action: allow}}
"""
AUTH = "Basic " + base64.b64encode(b"bench:t0ken").decode()
REPLY = json.dumps({"jsonrpc": "2.0", "id": 1, "result": {"content": [{"type": "text", "text": "ok"}]}}).encode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Upstream(asyncio.Protocol):
    """A minimal keep-alive HTTP/1.1 server answering every request with the same small JSON-RPC result."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            head_end = self.buf.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buf[:head_end].lower()
            length = 0
            for line in head.split(b"\r\n"):
                if line.startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            end = head_end + 4 + length
            if len(self.buf) < end:
                return
            body, self.buf = self.buf[head_end + 4 : end], self.buf[end:]
            reply = REPLY
            if b'"tools/list"' in body:  # the proxy lists the tools before a connection's first call (mcp_learn)
                listed = {"jsonrpc": "2.0", "id": json.loads(body)["id"], "result": {"tools": []}}
                reply = json.dumps(listed).encode()
            out = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
            self.transport.write(out % (len(reply), reply))  # type: ignore[attr-defined]


def request(i: int, upstream: int, via_proxy: bool) -> bytes:
    body = json.dumps(
        {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo", "arguments": {"n": i}}}
    ).encode()
    target = f"http://127.0.0.1:{upstream}/mcp" if via_proxy else "/mcp"
    auth = f"proxy-authorization: {AUTH}\r\n" if via_proxy else ""
    return (
        f"POST {target} HTTP/1.1\r\nhost: 127.0.0.1:{upstream}\r\n{auth}content-type: application/json\r\n"
        f"accept: application/json, text/event-stream\r\ncontent-length: {len(body)}\r\n\r\n"
    ).encode() + body


async def read_response(reader: asyncio.StreamReader) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"unexpected answer: {head[:200]!r}")
    length = next(int(h.split(b":")[1]) for h in head.lower().split(b"\r\n") if h.startswith(b"content-length:"))
    await reader.readexactly(length)


async def connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def latency(port: int, upstream: int, via_proxy: bool, n: int, counter: Iterator[int]) -> tuple[float, float]:
    reader, writer = await connect(port)
    samples: list[float] = []
    for k in range(n + n // 10):
        start = time.perf_counter()
        writer.write(request(next(counter), upstream, via_proxy))
        await read_response(reader)
        if k >= n // 10:  # the first tenth warms up
            samples.append((time.perf_counter() - start) * 1000)
    writer.close()
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]


async def throughput(
    port: int, upstream: int, via_proxy: bool, seconds: float, counter: Iterator[int]
) -> tuple[int, float]:
    """Requests answered, and requests/s."""
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        reader, writer = await connect(port)
        while time.perf_counter() < deadline:
            writer.write(request(next(counter), upstream, via_proxy))
            await read_response(reader)
            done += 1
        writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return done, done / (time.perf_counter() - start)


@contextmanager
def mitmdump(port: int, extra: list[str]) -> Iterator[None]:
    argv = [str(MITMDUMP), "-q", "--listen-host", "127.0.0.1", "--listen-port", str(port), *extra]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"mitmdump did not start: {proc.stderr.read() if proc.stderr else ''}") from None
                time.sleep(0.05)
        yield
    finally:
        proc.terminate()
        proc.wait(10)


async def main_async(args: argparse.Namespace) -> int:
    upstream_port = free_port()
    server = await asyncio.get_running_loop().create_server(Upstream, "127.0.0.1", upstream_port)
    counter = iter(range(10**9))
    latencies: dict[str, tuple[float, float]] = {}
    rates: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-proxy-") as tmp, ExitStack() as stack:
        config = Path(tmp) / "agent-mesh.yaml"
        config.write_text(CONFIG.format(state=Path(tmp) / "state", port=upstream_port))
        bare_config = Path(tmp) / "bare.yaml"  # its own state dir: the trace count below is the addon's
        bare_config.write_text(CONFIG.format(state=Path(tmp) / "bare-state", port=upstream_port))
        confdir = ["--set", f"confdir={Path(tmp) / 'mitmproxy'}"]
        ports = {"direct": upstream_port}
        runs = {
            PLAIN: confdir,
            MESH: [*confdir, "-s", str(ADDON), "--set", f"mesh_config={config}"],
            BARE: [*confdir, "-s", str(NO_WRITE_AHEAD), "-s", str(ADDON), "--set", f"mesh_config={bare_config}"],
        }
        for name, extra in runs.items():
            ports[name] = free_port()
            stack.enter_context(mitmdump(ports[name], extra))
        for name, port in ports.items():
            via_proxy = name != "direct"
            latencies[name] = await latency(port, upstream_port, via_proxy, args.requests, counter)
        governed = args.requests + args.requests // 10
        # Direct is a reference for the client's own ceiling: measured once. The proxies alternate, and so does
        # their order (ABBA), so neither always runs second, after the other has warmed or tired the machine.
        _, rate = await throughput(upstream_port, upstream_port, False, args.seconds, counter)
        rates["direct"] = [rate]
        orders = list(itertools.permutations([PLAIN, MESH, BARE]))  # every order in turn: none always runs first
        for round_no in range(args.rounds):
            for name in orders[round_no % len(orders)]:
                done, rate = await throughput(ports[name], upstream_port, True, args.seconds, counter)
                rates.setdefault(name, []).append(rate)
                governed += done if name == MESH else 0
        stack.close()  # stops the proxies: the addon's trace writer flushes on SIGTERM
        traced = sum(1 for f in (Path(tmp) / "state").glob("traces*.jsonl") for _ in f.open("rb"))
    server.close()
    plain, mesh = PLAIN, MESH
    print(f"{'':24} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}   (proxies' req/s: median of {args.rounds} rounds)")
    for name in ports:
        p50, p99 = latencies[name]
        print(f"{name:24} {statistics.median(rates[name]):8.0f} {p50:8.2f} {p99:8.2f}")
    kept = [m / p for m, p in zip(rates[mesh], rates[plain], strict=True)]
    added, added99 = (latencies[mesh][i] - latencies[plain][i] for i in (0, 1))
    quartiles = statistics.quantiles(kept, n=4)
    spread = f"middle half of the rounds {quartiles[0]:.0%}-{quartiles[2]:.0%}, all {min(kept):.0%}-{max(kept):.0%}"
    print(f"addon keeps {statistics.median(kept):.0%} of plain mitmdump's throughput ({spread}; target >= 85 %)")
    print(f"adds {added:.2f} ms at p50 (target <= 0.5 ms) and {added99:.2f} ms at p99")
    ahead = statistics.median(m / b for m, b in zip(rates[mesh], rates[BARE], strict=True))
    ahead50 = latencies[mesh][0] - latencies[BARE][0]
    print(f"write-ahead step: the addon keeps {ahead:.0%} of its throughput without it, {ahead50:+.2f} ms at p50")
    print(f"{traced} trace records written for {governed} governed calls")
    if traced != governed:
        print("error: the addon did not trace every call, so these figures do not count", file=sys.stderr)
        return 1
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="throughput run per target and round")
    parser.add_argument("--rounds", type=int, default=16, help="throughput rounds, alternating the proxies")
    parser.add_argument("--requests", type=int, default=1000, help="sequential requests for latency")
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
