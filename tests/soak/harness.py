"""The fault-injection soak (issue 14): governed traffic through the real proxy, `agent-mesh serve` and several
mcpwrap processes, while a killer SIGKILLs one of them (or the proxy's trace worker) at random moments and
restarts it. Then every call an upstream executed must have exactly one decision record, and
`agent-mesh traces verify` must pass.

The upstreams are the ground truth and are never killed: an HTTP server on a thread of this process (each
request's `nonce` noted before it answers) and, under each mcpwrap, tests/soak/upstream_stdio.py (each
executed call's `nonce` appended to a log before it answers). Every call carries a fresh nonce; a client
whose call failed sends a new one. A fifth of the calls are ones the policy denies: they must never run.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.soak.processes import BIN, CALL_SECONDS, START_SECONDS, Managed, Wrapped, http_call, upstream
from tests.support.net import free_port

AGENT_MESH = BIN / "agent-mesh"
# Between two calls of one mcpwrap client: unpaced, three clients write ~4,000 records/s and the trace, not
# the kills, is what the run measures; paced, a kill still lands mid-call most of the time.
PACE_SECONDS = 0.004

CONFIG = """
version: 1
state_dir: {state}
servers:
  up: {{base_url: "http://127.0.0.1:{up}"}}
control: {{listen: "127.0.0.1:{control}"}}
traces: {{checkpoint_every: {every}}}
policies:
  - name: soak
    agent: "*"
    rules:
      - {{name: run, tools: ["up.POST /items", "soak.echo"], action: allow}}
      - {{name: never, tools: ["up.DELETE *", "soak.forbidden"], action: deny}}
"""


@dataclass
class SoakResult:
    """What one soak did and found."""

    kills: Counter[str] = field(default_factory=Counter)
    calls: Counter[str] = field(default_factory=Counter)  # sent, by surface and kind
    executed: int = 0
    missing: list[str] = field(default_factory=list)  # executed, no decision record
    duplicated: list[str] = field(default_factory=list)  # executed, more than one decision record
    denied_ran: list[str] = field(default_factory=list)  # a call the policy denies reached an upstream
    verify_status: int = -1
    verify_output: str = ""
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)  # the soak itself went wrong (a restart failed)
    weights: dict[str, int] = field(default_factory=dict)
    executed_at: dict[str, float] = field(default_factory=dict)  # HTTP nonce -> when the upstream ran it
    events: list[tuple[float, str]] = field(default_factory=list)  # (time, what was killed)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.duplicated or self.denied_ran or self.errors) and self.verify_status == 0

    def summary(self) -> str:
        kills = ", ".join(f"{k} {n}" for k, n in sorted(self.kills.items()))
        calls = ", ".join(f"{k} {n}" for k, n in sorted(self.calls.items()))
        lines = [
            f"{sum(self.kills.values())} kills ({kills}) in {self.seconds:.0f}s; calls sent: {calls}",
            f"{self.executed} calls executed upstream; {len(self.missing)} without a decision record, "
            f"{len(self.duplicated)} with more than one, {len(self.denied_ran)} denied calls that ran",
            f"traces verify: exit {self.verify_status}: {self.verify_output.strip()[:2000]}",
        ]
        lines += self.errors
        if self.missing:
            lines.append(f"unrecorded: {self.missing[:10]}")
        if self.duplicated:
            lines.append(f"recorded twice: {self.duplicated[:10]}")
        return "\n".join(lines)


WEIGHTS = {"mcpwrap": 60, "worker": 20, "proxy": 10, "serve": 10}


def run_soak(
    folder: Path,
    *,
    kills: int,
    seed: int,
    wrapped: int = 5,
    every: int = 50,
    max_seconds: float | None = None,
    weights: dict[str, int] | None = None,
) -> SoakResult:
    """Run until `kills` processes were killed (or `max_seconds` passed), then stop everything cleanly and
    check the trace."""
    rng = random.Random(seed)
    result = SoakResult()
    state = folder / "state"
    started = time.monotonic()
    with upstream() as (up, server):
        config = folder / "agent-mesh.yaml"
        control = free_port()
        config.write_text(CONFIG.format(state=state, up=up, control=control, every=every))
        proxy_port, serve_port = free_port(), free_port()
        proxy = Managed("proxy", [str(AGENT_MESH), "proxy", "--config", str(config), "--quiet",
                                  "--listen", f"127.0.0.1:{proxy_port}"], cwd=folder, port=proxy_port,
                        log=folder / "proxy.log")  # fmt: skip
        serve = Managed("serve", [str(AGENT_MESH), "serve", "--config", str(config),
                                  "--listen-proxy", f"127.0.0.1:{serve_port}"], cwd=folder, port=serve_port,
                        log=folder / "serve.log")  # fmt: skip
        wraps = [Wrapped(i, config, folder) for i in range(wrapped)]
        stop = threading.Event()
        counts_lock = threading.Lock()

        def count(kind: str) -> None:
            with counts_lock:
                result.calls[kind] += 1

        def http_client(entry: Managed, seed: int) -> None:
            local = random.Random(seed)
            while not stop.is_set():
                if not entry.up.wait(START_SECONDS):
                    continue
                method = "DELETE" if local.random() < 0.2 else "POST"
                count(f"http {method}")
                http_call(entry.port or 0, up, method, f"h-{uuid.uuid4().hex}")

        def mcp_client(w: Wrapped, seed: int) -> None:
            local = random.Random(seed)
            while not stop.is_set():
                tool = "forbidden" if local.random() < 0.2 else "echo"
                count(f"mcp {tool}")
                try:
                    w.call(tool, f"{'d' if tool == 'forbidden' else 'm'}-{uuid.uuid4().hex}")
                except Exception as exc:  # the soak's own failure: reported, and this client carries on
                    result.errors.append(f"mcp client {w.index}: {type(exc).__name__}: {exc}")
                stop.wait(PACE_SECONDS)

        try:
            proxy.start()
            serve.start()
            for w in wraps:
                w.start()
            threads = [threading.Thread(target=http_client, args=(e, rng.random()), daemon=True)
                       for e in (proxy, serve, proxy)]  # fmt: skip
            threads += [threading.Thread(target=mcp_client, args=(w, rng.random()), daemon=True) for w in wraps]
            for t in threads:
                t.start()
            deadline = started + (max_seconds if max_seconds is not None else 120 + 3 * kills)
            while sum(result.kills.values()) < kills and time.monotonic() < deadline:
                stop.wait(rng.uniform(0.01, 0.12))  # a random moment: mid-call, mid-batch, mid-start
                chosen = weights or WEIGHTS
                target = rng.choices(list(chosen), weights=list(chosen.values()))[0]
                if target == "mcpwrap" and rng.choice(wraps).kill():
                    result.kills["mcpwrap"] += 1
                    result.events.append((time.time(), "mcpwrap"))
                elif target == "worker":
                    found = _workers(state)
                    workers = [rng.choice(found)] if found else []
                    for pid in workers:
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(pid, signal.SIGKILL)
                    if workers:
                        result.kills["trace worker"] += 1
                        result.events.append((time.time(), "trace worker"))
                elif target == "proxy" and proxy.kill():
                    result.kills["proxy"] += 1
                    result.events.append((time.time(), "proxy"))
                elif target == "serve" and serve.kill():
                    result.kills["serve"] += 1
                    result.events.append((time.time(), "serve"))
        finally:
            stop.set()
            for w in wraps:
                w.stop()
            proxy.stop()
            serve.stop()
            result.errors += [m.failed for m in (proxy, serve) if m.failed] + [h for w in wraps for h in w.hangs]
            for t in threads if "threads" in locals() else []:
                t.join(CALL_SECONDS * 3)
        executed_http = list(server.executed)  # type: ignore[attr-defined]
    _adopt(state)
    result.seconds = time.monotonic() - started
    _check(result, state, executed_http, [n for w in wraps for n in w.executed()])
    done = subprocess.run([str(AGENT_MESH), "traces", "verify", "--state-dir", str(state)],
                          capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    result.verify_status, result.verify_output = done.returncode, done.stdout + done.stderr
    return result


def _workers(state: Path) -> list[int]:
    """The pids of the trace worker processes writing to `state` (the proxy's and serve's)."""
    found = []
    mark = json.dumps(str(state)).encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"policy.trace.worker" in cmdline and mark in cmdline:
                found.append(int(entry.name))
    return found


def _adopt(state: Path) -> None:
    """What any mesh process does at start: chain the write-ahead entries of processes that died."""
    code = (
        "import sys; from policy.core.config import TraceSettings; from policy.trace import TraceWriter; "
        "TraceWriter(sys.argv[1], TraceSettings()).close()"
    )
    subprocess.run([str(BIN / "python"), "-c", code, str(state)], check=True, timeout=120)


def _records(state: Path) -> list[dict[str, Any]]:
    from policy.trace.append import trace_files

    out = []
    for path in trace_files(state):
        for line in path.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
    return out


def _check(result: SoakResult, state: Path, http: list[tuple[str, str, float]], stdio: list[str]) -> None:
    decisions: Counter[str] = Counter()
    for record in _records(state):
        args = record.get("args")
        nonce = args.get("nonce") if isinstance(args, dict) else None
        if isinstance(nonce, str) and record.get("kind", "call") == "call":
            decisions[nonce] += 1
    ran = [n for m, n, _ in http if m == "POST"] + [n for n in stdio if n.startswith("m-")]
    result.denied_ran = [n for m, n, _ in http if m != "POST"] + [n for n in stdio if not n.startswith("m-")]
    result.executed_at = {n: t for _, n, t in http}
    result.executed = len(ran)
    result.missing = [n for n in ran if decisions[n] == 0]
    result.duplicated = [n for n in ran if decisions[n] > 1]
