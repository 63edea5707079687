"""A process that writes trace records with its own TraceWriter: `python -m tests.policy.trace.worker
STATE_DIR COUNT NAME [MAX_BYTES]`. Prints "ready", waits for a line on stdin, writes, prints its stats."""

from __future__ import annotations

import dataclasses
import json
import sys

from policy.core.config import TraceSettings
from policy.trace import TraceWriter
from tests.policy.trace.factories import record


def main() -> int:
    state, count, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    settings = TraceSettings(max_bytes=int(sys.argv[4])) if len(sys.argv) > 4 else TraceSettings()
    writer = TraceWriter(state, settings)
    print("ready", flush=True)
    sys.stdin.readline()
    for i in range(count):
        writer.emit(record(i, trace_id=f"{name}-{i:06d}", agent=name))
    ok = writer.close(timeout=60)
    print(json.dumps({"closed": ok, **dataclasses.asdict(writer.stats())}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
