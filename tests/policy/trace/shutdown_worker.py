"""A process that emits records and then ends without calling close: `python -m
tests.policy.trace.shutdown_worker STATE_DIR COUNT exit|sigterm`."""

from __future__ import annotations

import sys
import threading

from policy.core.config import TraceSettings
from policy.trace import TraceWriter, exit_on_sigterm
from tests.policy.trace.factories import record


def main() -> int:
    state, count, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    exit_on_sigterm()
    writer = TraceWriter(state, TraceSettings())
    for i in range(count):
        writer.emit(record(i))
    print("emitted", flush=True)
    if mode == "sigterm":
        threading.Event().wait(60)  # until the test's SIGTERM arrives
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
