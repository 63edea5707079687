"""A/B of mitmdump variants under bench/proxy.py's load: all stay up, rounds alternate them in ABBA order.

For chasing the proxy's throughput: each variant is `NAME=ARGS`, ARGS being mitmdump arguments after the
listen options, where CONFIG stands for a bench config file (state in a temporary dir). The first variant is
the baseline; each line prints its median req/s and the median and middle half of its per-round ratio.

    .venv/bin/python bench/tools/proxy_ab.py plain= \
        mesh="-s addons/mesh_addon.py --set mesh_config=CONFIG" \
        noop="-s my_noop_addon.py" --rounds 12 --seconds 2
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import statistics
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import proxy as bench


async def run(variants: dict[str, list[str]], rounds: int, seconds: float) -> None:
    upstream = bench.free_port()
    server = await asyncio.get_running_loop().create_server(bench.Upstream, "127.0.0.1", upstream)
    counter = iter(range(10**9))
    rates: dict[str, list[float]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory(prefix="proxy-ab-") as tmp, ExitStack() as stack:
        config = Path(tmp) / "agent-mesh.yaml"
        config.write_text(bench.CONFIG.format(state=Path(tmp) / "state", port=upstream))
        ports: dict[str, int] = {}
        for name, extra in variants.items():
            ports[name] = bench.free_port()
            args = ["--set", f"confdir={Path(tmp) / 'mitmproxy'}", *(a.replace("CONFIG", str(config)) for a in extra)]
            stack.enter_context(bench.mitmdump(ports[name], args))
        for port in ports.values():  # warm-up
            await bench.throughput(port, upstream, True, 1.0, counter)
        names = list(variants)
        for round_no in range(rounds):
            for name in names if round_no % 2 == 0 else names[::-1]:
                _, rate = await bench.throughput(ports[name], upstream, True, seconds, counter)
                rates[name].append(rate)
    server.close()
    base = names[0]
    for name in names:
        ratios = [a / b for a, b in zip(rates[name], rates[base], strict=True)]
        q1, _, q3 = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else (ratios[0],) * 3
        print(
            f"{name:16} {statistics.median(rates[name]):7.0f} req/s  {statistics.median(ratios):6.1%} of {base}"
            f"  (middle half {q1:.0%}-{q3:.0%})"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="+", help="NAME=ARGS (mitmdump arguments; CONFIG = a bench config)")
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    variants: dict[str, list[str]] = {}
    for spec in args.variants:
        name, eq, extra = spec.partition("=")
        if not eq or not name:
            parser.error(f"{spec!r} is not NAME=ARGS")
        variants[name] = shlex.split(extra)
    asyncio.run(run(variants, args.rounds, args.seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
