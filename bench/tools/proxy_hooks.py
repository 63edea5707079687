"""The addon's hooks driven in-process, without mitmproxy's proxy around them: µs (or instructions) per request.

For finding where the addon's own time goes: N small `tools/call` flows, as bench/proxy.py sends them, go
through `request`, `responseheaders` and `response` of one Governance (the bench config, a real gate, store,
trace writer and worker), after WARM-UP ones. Warm caches: in the proxy the same code runs about 3x slower.

    .venv/bin/python bench/tools/proxy_hooks.py [-n 3000]           # µs per request
    .venv/bin/python bench/tools/proxy_hooks.py --profile tottime    # cProfile of the timed requests
    valgrind --tool=callgrind --instr-atstart=no .venv/bin/python bench/tools/proxy_hooks.py --callgrind
        # instructions counted around the timed requests only: "Collected" / N = instructions per request
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import proxy as bench  # noqa: E402 - bench/proxy.py: the same config and requests
from mitmproxy import http  # noqa: E402
from mitmproxy.test import taddons, tflow  # noqa: E402

from addons.governance import Governance  # noqa: E402
from addons.mcp_learn import PageRequest  # noqa: E402

WARM_UP = 300
UPSTREAM = "127.0.0.1:9"


async def _no_tools(page: PageRequest) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": page.request_id, "result": {"tools": []}}


def flow(i: int) -> http.HTTPFlow:
    body = json.dumps(
        {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo", "arguments": {"n": i}}}
    ).encode()
    headers = {
        "host": UPSTREAM,
        "proxy-authorization": bench.AUTH,
        "content-type": "application/json",
        "accept": "application/json, text/event-stream",
    }
    f = tflow.tflow()
    f.request = http.Request.make("POST", f"http://{UPSTREAM}/mcp", body, headers)
    return f


def callgrind(switch: str) -> None:
    subprocess.run(["callgrind_control", "-i", switch, str(os.getpid())], capture_output=True, check=False)


async def run(n: int, profile: str | None, count: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="proxy-hooks-") as tmp:
        config = Path(tmp) / "agent-mesh.yaml"
        config.write_text(bench.CONFIG.format(state=Path(tmp) / "state", port=9))
        addon = Governance(fetch_tools=_no_tools)  # each flow is a session: its first call lists (mcp_learn)
        with taddons.context(addon) as tctx:
            tctx.configure(addon, mesh_config=str(config))
            pairs = [(flow(i), http.Response.make(200, bench.REPLY, {"content-type": "application/json"}))
                     for i in range(WARM_UP + n)]  # fmt: skip

            async def one(f: http.HTTPFlow, response: http.Response) -> None:
                await addon.request(f)
                if f.response is not None:
                    raise RuntimeError(f"the addon answered instead of forwarding: {f.response.content!r}")
                f.response = response
                addon.responseheaders(f)
                addon.response(f)

            for f, response in pairs[:WARM_UP]:
                await one(f, response)
            profiler = cProfile.Profile() if profile else None
            if count:
                callgrind("on")
            if profiler is not None:
                profiler.enable()
            start = time.perf_counter()
            for f, response in pairs[WARM_UP:]:
                await one(f, response)
            elapsed = time.perf_counter() - start
            if profiler is not None:
                profiler.disable()
            if count:
                callgrind("off")
            await addon.done()
    if profiler is not None:
        pstats.Stats(profiler).sort_stats(profile or "tottime").print_stats(40)
    print(f"{elapsed / n * 1e6:.1f} µs per request over {n} requests")
    if count:
        print(f"instructions per request: valgrind's 'Collected' / {n}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=3000, help="timed requests")
    parser.add_argument("--profile", metavar="SORT", help="cProfile the timed requests, sorted by SORT (tottime)")
    parser.add_argument("--callgrind", action="store_true", help="switch callgrind's counting on around them")
    args = parser.parse_args()
    asyncio.run(run(args.n, args.profile, args.callgrind))
    return 0


if __name__ == "__main__":
    sys.exit(main())
