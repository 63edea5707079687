"""An entry point in miniature: `python -m tests.policy.trace.otel_worker ENDPOINT` wires the SDK with
configure_otel, records one call through the API, and shuts the provider down (which exports)."""

from __future__ import annotations

import sys

from policy import Outcome
from policy.trace import MemoryTraceSink, configure_otel, record_call
from tests.policy.trace.factories import call, verdict


def main() -> int:
    provider = configure_otel(sys.argv[1])
    record_call(
        MemoryTraceSink(), call(), verdict(), Outcome(True, latency_ms=2.0), policy_hash="p", redact_keys=[], ts=100.0
    )
    provider.shutdown()  # type: ignore[attr-defined]  # the SDK provider; the API type has no shutdown
    return 0


if __name__ == "__main__":
    sys.exit(main())
