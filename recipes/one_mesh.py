"""One policy wherever a call runs: the same notes server behind `mcpwrap` (stdio) and behind `agent-mesh proxy`
(MCP over HTTP), one config, one state dir, one answer.

The story, each step checked:

1. The same `delete_note` call is refused on both surfaces, by the same rule, with the same reason; the same
   `read_note` passes on both.
2. `agent-mesh explain` says what the live gate then does, guard included: a read of the state dir's
   `operator.token` is refused by `guard/state-dir`, in explain and on both surfaces.
3. `agent-mesh stop --all --reason …` refuses the calls on both surfaces with the stop's reason, and
   `agent-mesh resume --all` lets them through again (each within a fraction of a second: the stop is read from
   state.db, so a call already on its way may still pass; the recipe allows 2 s and prints what it took).
4. A hot reload: the config is edited (reads are closed) and the running mcpwrap and proxy refuse the next
   reads within 2 s, with no restart.
5. `agent-mesh status` shows both processes on the same policy hash, the one the config on disk gives.

Offline (loopback only), HOME and XDG dirs in a temp folder, every process stopped:

    .venv/bin/python recipes/one_mesh.py
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx2
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult, TextContent

from policy.control.auth import load_or_create_token

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
START_SECONDS = 30.0
BOUND_SECONDS = 2.0  # the bound for a stop, a resume or an edited config to reach every running process
CONFIG = """
version: 1
state_dir: {state}
agents: {{claude: {{token: recipe-agent-token}}}}
servers:
  notes: {{mcp_url: "{url}"}}
policies:
  - name: claude
    agent: claude
    loop_detection: {{enabled: false}}  # the recipe repeats one call while it waits for a stop or a reload
    rules:
      - {{name: keep-notes, tools: ["notes.delete_*"], action: deny, reason: notes are kept forever}}
      - {{name: reads, tools: ["notes.read_*"], action: {reads}, reason: reads are closed for the audit}}
      - {{name: the-rest, tools: ["notes.*"], action: allow}}
"""


def text(result: CallToolResult) -> str:
    return "".join(c.text for c in result.content if isinstance(c, TextContent))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(proc: subprocess.Popen[bytes], port: int, what: str) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with status {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"{what} did not listen on {port} within {START_SECONDS:g}s")


@contextmanager
def started(argv: list[str], port: int, what: str, env: dict[str, str]) -> Iterator[None]:
    """A long-running process in its own group, up once `port` listens; SIGTERM (then SIGKILL) on the way out."""
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for_port(proc, port, what)
        yield
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def cli(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "agent-mesh"), *argv], env=env, capture_output=True, text=True, timeout=60)


@asynccontextmanager
async def both_surfaces(config: Path, url: str, proxy: int, env: dict[str, str]) -> AsyncIterator[dict[str, Client]]:
    """An SDK client on mcpwrap's stdio and one through the proxy to the HTTP server: the same notes either way."""
    argv = ["-m", "mcpwrap", "--config", str(config), "--agent", "claude", "--server", "notes", "--"]
    argv += [sys.executable, str(HERE / "notes_server.py")]
    stdio = Client(StdioServerParameters(command=sys.executable, args=argv, env=env))
    proxied = httpx2.AsyncClient(proxy=f"http://claude:recipe-agent-token@127.0.0.1:{proxy}", timeout=30)
    http = Client(streamable_http_client(url, http_client=proxied))
    async with stdio as wrapped, proxied, http as through_proxy:
        yield {"mcpwrap": wrapped, "proxy": through_proxy}


async def call_everywhere(clients: dict[str, Client], tool: str, args: dict[str, Any]) -> dict[str, CallToolResult]:
    results = {name: await client.call_tool(tool, args) for name, client in clients.items()}
    for name, result in results.items():
        print(f"  {name:8} {tool} {json.dumps(args)} -> {'refused' if result.is_error else 'ok'}: {text(result)[:110]}")
    return results


async def until(client: Client, name: str, done: Callable[[CallToolResult], bool]) -> CallToolResult:
    """Call read_note until `done` says the change arrived, for at most BOUND_SECONDS; say how long it took."""
    start = time.monotonic()
    while True:
        result = await client.call_tool("read_note", {"name": "todo"})
        took = time.monotonic() - start
        if done(result) or took > BOUND_SECONDS:
            verdict = "refused" if result.is_error else "ok"
            print(f"  {name:8} read_note after {took:.2f}s -> {verdict}: {text(result)[:100]}")
            return result
        await asyncio.sleep(0.05)


def trace_rules(env: dict[str, str], config: Path, calls: int) -> list[tuple[str, str, str, str]]:
    """(surface, tool, verdict, decided_by) of every traced call, once `calls` are written (writers batch)."""
    rows: list[dict[str, Any]] = []
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        done = cli(env, "traces", "query", "--config", str(config), "--json", "--limit", "0")
        rows = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
        if len(rows) >= calls:
            break
        time.sleep(0.1)
    return [(r["surface"], r["tool"], r["verdict"], r["decided_by"]) for r in rows]


async def story(folder: Path, env: dict[str, str], problems: list[str]) -> None:
    state = folder / "state"
    config = folder / "agent-mesh.yaml"
    server_port, proxy_port = free_port(), free_port()
    url = f"http://127.0.0.1:{server_port}/mcp"
    config.write_text(CONFIG.format(state=state, url=url, reads="allow"))
    secret, _ = load_or_create_token(state)  # what `agent-mesh serve` makes on its first start
    token = state / "operator.token"
    server = [sys.executable, __file__, "http-server", str(server_port)]
    proxy = [
        str(BIN / "agent-mesh"),
        "proxy",
        "--config",
        str(config),
        "--listen",
        f"127.0.0.1:{proxy_port}",
        "--quiet",
    ]
    with started(server, server_port, "the notes server", env), started(proxy, proxy_port, "agent-mesh proxy", env):
        async with both_surfaces(config, url, proxy_port, env) as clients:
            print("1. the same calls on both surfaces:")
            deleted = await call_everywhere(clients, "delete_note", {"name": "todo"})
            read = await call_everywhere(clients, "read_note", {"name": "todo"})
            if not all(r.is_error and "notes are kept forever" in text(r) for r in deleted.values()):
                problems.append("a surface did not refuse the delete with the rule's reason")
            if not all(not r.is_error and "buy milk" in text(r) for r in read.values()):
                problems.append("a surface did not pass the read")

            print("2. explain, then the live gate, on a read of the operator token:")
            done = cli(env, "explain", "--config", str(config), "--agent", "claude", "--tool", "notes.read_note",
                       "--args", json.dumps({"name": str(token)}), "--json")  # fmt: skip
            explained = json.loads(done.stdout)
            said = (explained["preview"]["verdict"], explained["rule"])
            print(f"  explain  -> {said[0]} by {said[1]}: {explained['reason'][:80]}")
            if said != ("deny", "guard/state-dir"):
                problems.append(f"explain did not name the state-dir guard: {explained}")
            guarded = await call_everywhere(clients, "read_note", {"name": str(token)})
            if not all(r.is_error and explained["reason"] in text(r) for r in guarded.values()):
                problems.append("a surface did not refuse the read of the operator token as explain said")
            if any(secret in text(r) for r in guarded.values()):
                problems.append("the operator token reached the agent")

            print("3. an emergency stop, then resume:")
            cli(env, "stop", "--all", "--config", str(config), "--reason", "recipe: hands off the notes", "--by", "ops")
            for name, client in clients.items():
                stopped = await until(client, name, lambda r: r.is_error)
                if not (stopped.is_error and "recipe: hands off the notes" in text(stopped)):
                    problems.append(f"{name} did not refuse the call with the stop's reason")
            cli(env, "resume", "--all", "--config", str(config), "--by", "ops")
            for name, client in clients.items():
                if (await until(client, name, lambda r: not r.is_error)).is_error:
                    problems.append(f"{name} still refused after `agent-mesh resume --all`")

            print("4. a hot reload: the config now closes reads")
            config.write_text(CONFIG.format(state=state, url=url, reads="deny"))
            for name, client in clients.items():
                flipped = await until(client, name, lambda r: r.is_error)
                if not (flipped.is_error and "reads are closed for the audit" in text(flipped)):
                    problems.append(f"the running {name} did not take the edited config within {BOUND_SECONDS:g}s")

            print("5. agent-mesh status:")
            status = json.loads(cli(env, "status", "--config", str(config), "--json").stdout)
            shown = [(p.get("kind"), p.get("policy_hash"), p.get("current")) for p in status["processes"]]
            for process in shown:
                print(f"  {process}")
            hashes = {h for _, h, _ in shown}
            if len(shown) < 2 or len(hashes) != 1 or not all(current for _, _, current in shown):
                problems.append(f"status does not show both processes on the config's policy: {shown}")

    seen = trace_rules(env, config, 12)
    print("the trace (surface, tool, verdict, rule):")
    for traced in seen:
        print(f"  {traced}")
    for surface in ("mcp_stdio", "mcp_http"):
        first_two = [(t, v, d) for s, t, v, d in seen if s == surface][:2]  # delete, then read
        if first_two != [("notes.delete_note", "deny", "policy:claude/keep-notes"),
                         ("notes.read_note", "allow", "policy:claude/reads")]:  # fmt: skip
            problems.append(f"{surface}: the trace does not hold the same rules: {first_two}")
        guard = [d for s, t, v, d in seen if s == surface and d == "policy:guard/state-dir"]
        if not guard:
            problems.append(f"{surface}: no call refused by guard/state-dir in the trace")


def main() -> int:
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="one-mesh-") as tmp:
        folder = Path(tmp)
        home = folder / "home"
        env = {**os.environ, "HOME": str(home), "XDG_DATA_HOME": str(home / ".local" / "share"),
               "XDG_CONFIG_HOME": str(home / ".config"), "XDG_STATE_HOME": str(home / ".local" / "state")}  # fmt: skip
        for key in ("AGENT_MESH_CONFIG", "HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy", "ALL_PROXY"):
            env.pop(key, None)
        asyncio.run(story(folder, env, problems))
    for problem in problems:
        print(f"FAILED: {problem}")
    print("one_mesh: OK" if not problems else "one_mesh: FAILED")
    return 1 if problems else 0


def http_server(port: int) -> None:
    """The same notes server as recipes/notes_server.py, over Streamable HTTP on 127.0.0.1:PORT."""
    sys.path.insert(0, str(HERE))
    from notes_server import server

    server.run("streamable-http", host="127.0.0.1", port=port)


if __name__ == "__main__":
    if sys.argv[1:2] == ["http-server"]:
        http_server(int(sys.argv[2]))
        sys.exit(0)
    sys.exit(main())
