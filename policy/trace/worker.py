"""The trace writer's own process: records built, chained and written away from the adapter's GIL.

In the proxy every microsecond another thread holds the GIL costs the event loop several (hand-offs, on a
busy 2-core machine): building, sealing and writing records on a thread of the proxy cost ~100 µs of event
loop time per call (the addon's hooks driven in-process), and the addon with this worker kept 9-15 % more
requests/s than with the thread in the same bench/proxy.py runs.

With `TraceWriter(..., process=True)` the caller hands each call over as a tuple of plain values
(`flatten`); the writer's thread pickles a batch (C code, but for a late outcome's `__reduce__`), writes it
to this process's stdin and waits for the batch's acknowledgement on its stdout. This process rebuilds the calls,
builds the records, chains and writes them with the writer's usual retries and reports (stderr is the
parent's), and emits their spans when `traces.otlp_endpoint` is set.

It runs in a session of its own and ignores SIGINT and SIGTERM, so a Ctrl-C or a kill of the process group
does not cost the batches its parent still sends while shutting down; it exits at the end of its stdin,
when the parent closes it or dies, having written everything it received.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from policy.core.model import Action, Decision, HttpInfo, Outcome, ToolCall, Verdict, VerdictKind
from policy.trace.ahead import hold_lock
from policy.trace.append import ChainAppender
from policy.trace.otel import configure_otel
from policy.trace.record import placeholder
from policy.trace.signer import DEFAULT_EVERY
from policy.trace.sink import HandedCall, LateOutcome

RETRY_DELAYS = (0.05, 0.25)
_HEAD = 4  # bytes of the big-endian length before each pickled batch

# ("c", agent, surface, server, tool, arguments, session, http, version, annotations, kind, action, rule,
#  decision reason, policy, decided_by, reason, trace_id, approval_id, retry_after, precedents, decision_ms,
#  outcome, policy_hash, redact_keys, ts): a call as plain values; the outcome a tuple of Outcome's fields or
#  a picklable LateOutcome.
Flat = tuple[Any, ...]
Report = Callable[..., None]  # report(message, force=False): a line on stderr


class WorkerGone(Exception):
    """The worker process died, or answered something that is not an acknowledgement."""


class Unpicklable(Exception):
    """A batch holds something only this process can read (a late outcome that is a closure, say)."""


def flatten(
    call: ToolCall,
    verdict: Verdict,
    outcome: Outcome | LateOutcome,
    policy_hash: str,
    redact_keys: Iterable[str],
    ts: float,
) -> Flat:
    """One call as plain values, cheap to pickle: attribute reads only (it runs on the adapter's hot path)."""
    http = call.http
    decision = verdict.decision
    out: Any = (
        (outcome.forwarded, outcome.status, outcome.is_error, outcome.exit_code, outcome.error, outcome.latency_ms)
        if isinstance(outcome, Outcome)
        else outcome
    )
    return (
        "c",
        call.agent,
        call.surface,
        call.server,
        call.tool,
        call.arguments,
        call.session_id,
        None if http is None else (http.method, http.host, http.path, http.port, http.scheme, http.digest),
        call.mcp_protocol_version,
        call.annotations,
        verdict.kind.value,
        decision.action.value,
        decision.rule,
        decision.reason,
        decision.policy,
        verdict.decided_by,
        verdict.reason,
        verdict.trace_id,
        verdict.approval_id,
        verdict.retry_after,
        verdict.precedents,
        verdict.decision_ms,
        out,
        policy_hash,
        redact_keys,
        ts,
    )


def flat_trace_id(item: Flat) -> str:
    return str(item[17])


def record_of(item: Flat) -> dict[str, Any]:
    """The trace record of a flattened call (and its span, when an SDK is installed)."""
    (_, agent, surface, server, tool, args, session, http, version, annotations, kind, action, rule, why, policy,
     decided_by, reason, trace_id, approval_id, retry_after, precedents, decision_ms, out, policy_hash, redact_keys,
     ts) = item  # fmt: skip
    call = ToolCall(
        agent, surface, server, tool, args, session, HttpInfo(*http) if http else None, version, annotations
    )
    decision = Decision(Action(action), rule, why, policy)
    verdict = Verdict(
        VerdictKind(kind), decision, decided_by, reason, trace_id, approval_id, retry_after, precedents, decision_ms
    )
    outcome = Outcome(*out) if isinstance(out, tuple) else out
    return HandedCall(call, verdict, outcome, policy_hash, redact_keys, ts).record()


def records_of(
    items: Sequence[Mapping[str, Any] | Flat | HandedCall], report: Report
) -> tuple[list[Mapping[str, Any]], int]:
    """The records of a batch of records and calls (handed over or flattened), and how many calls could not
    be recorded."""
    records: list[Mapping[str, Any]] = []
    bad = 0
    for item in items:
        if not isinstance(item, tuple | HandedCall):
            records.append(item)
            continue
        try:
            records.append(record_of(item) if isinstance(item, tuple) else item.record())
        except Exception as exc:  # one bad call must not cost the batch, nor its own record
            try:
                trace_id = flat_trace_id(item) if isinstance(item, tuple) else item.verdict.trace_id
            except Exception:
                trace_id = "unknown"
            report(f"could not build the record of trace {trace_id}: {type(exc).__name__}: {exc}")
            records.append(placeholder({"trace_id": trace_id, **_identity(item)}, exc, "built"))
    return records, bad


def _identity(item: Flat | HandedCall) -> dict[str, Any]:
    """Who called what, and the verdict: what a placeholder record keeps of a call whose record failed."""
    try:
        return _fields(item)
    except Exception:  # a malformed item still leaves its trace id
        return {}


def _fields(item: Flat | HandedCall) -> dict[str, Any]:
    if isinstance(item, HandedCall):
        call, verdict = item.call, item.verdict
        return {"agent": call.agent, "surface": call.surface, "server": call.server, "tool": call.full_name,
                "verdict": verdict.kind.value, "decided_by": verdict.decided_by, "ts": item.ts}  # fmt: skip
    return {"agent": item[1], "surface": item[2], "server": item[3], "tool": f"{item[3]}.{item[4]}",
            "verdict": item[10], "decided_by": item[15], "ts": item[-1]}  # fmt: skip


def append_with_retries(
    appender: ChainAppender, batch: list[Mapping[str, Any]], report: Callable[..., None]
) -> tuple[int, int, int]:
    """Append a batch, retried briefly, else given up: (written, dropped, errors); never raises."""
    errors = 0
    if not batch:
        return 0, 0, 0
    for delay in (*RETRY_DELAYS, None):
        try:
            written = appender.append(batch)
        except Exception as exc:  # a failing disk or database must never reach the caller
            errors += 1
            report(f"cannot write {len(batch)} trace record(s): {type(exc).__name__}: {exc}")
            if delay is not None:
                time.sleep(delay)  # a short back-off on the writer's own thread, between retries
            continue
        return written, len(batch) - written, errors
    report(f"dropped {len(batch)} trace record(s) after {len(RETRY_DELAYS) + 1} attempts", force=True)
    return 0, len(batch), errors


class WriterProcess:
    """The parent's handle on a worker: `send` a batch, get (written, dropped, errors) back."""

    def __init__(
        self,
        state_dir: str | Path,
        *,
        jsonl: bool,
        sqlite: bool,
        max_bytes: int,
        otlp: str | None,
        checkpoint_every: int = DEFAULT_EVERY,
        ahead_lock: str | None = None,
    ) -> None:
        """`ahead_lock`: the lock of the parent's write-ahead log, which the worker shares for its life, so the
        log is not adopted while this worker may still write the records of the calls in it."""
        if not Path(sys.executable).name.startswith("python"):
            # A frozen host (a bundled mitmdump, say) is not an interpreter to run `-c` with.
            raise OSError(f"{sys.executable} is not a Python interpreter")
        options = {
            "state_dir": str(state_dir),
            "jsonl": jsonl,
            "sqlite": sqlite,
            "max_bytes": max_bytes,
            "otlp": otlp,
            "checkpoint_every": checkpoint_every,
            "ahead_lock": ahead_lock,
        }
        root = str(Path(__file__).resolve().parents[2])  # where `policy` is importable from, installed or not
        path = os.environ.get("PYTHONPATH")
        env = {**os.environ, "PYTHONPATH": root if not path else f"{root}{os.pathsep}{path}"}
        self._proc = subprocess.Popen(
            [sys.executable, "-c", "from policy.trace.worker import main; main()", json.dumps(options)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            # Its own session: a Ctrl-C or a kill of this process group, which may come while it is still
            # importing (before main() ignores them), must not cost the batches sent during the shutdown.
            start_new_session=True,
        )
        assert self._proc.stdin is not None
        assert self._proc.stdout is not None
        self._in: IO[bytes] = self._proc.stdin
        self._out: IO[bytes] = self._proc.stdout

    @property
    def pid(self) -> int:
        return self._proc.pid

    def send(self, items: Sequence[Mapping[str, Any] | Flat]) -> tuple[int, int, int]:
        """Write a batch and wait until the worker has written it. Raises WorkerGone, or Unpicklable (and then
        sends nothing)."""
        try:
            data = pickle.dumps(list(items), protocol=pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            raise Unpicklable(str(exc)) from None
        try:
            self._in.write(len(data).to_bytes(_HEAD, "big"))
            self._in.write(data)
            self._in.flush()
            line = self._out.readline()
        except (OSError, ValueError) as exc:  # a broken pipe, or a pipe closed by `close`
            raise WorkerGone(self._gone(str(exc))) from None
        try:
            written, dropped, errors = (int(n) for n in line.split())
        except ValueError:
            raise WorkerGone(self._gone(f"it answered {line[:80]!r}" if line else "its output ended")) from None
        return written, dropped, errors

    def _gone(self, why: str) -> str:
        code = self._proc.poll()
        return f"the trace writer process {self._proc.pid} stopped ({why}; exit status {code})"

    def close(self, timeout: float | None) -> bool:
        """End its input: it writes what it received and exits. True when it did within `timeout`."""
        with contextlib.suppress(OSError):
            self._in.close()
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
            return False
        finally:
            self._out.close()
        return True


def serve(options: Mapping[str, Any], source: IO[bytes], sink: IO[bytes], report: Report) -> None:
    """The worker's loop: batches in, acknowledgements out, until its input ends."""
    appender = ChainAppender(
        options["state_dir"],
        jsonl=options["jsonl"],
        sqlite=options["sqlite"],
        max_bytes=options["max_bytes"],
        checkpoint_every=options.get("checkpoint_every", DEFAULT_EVERY),
    )
    provider = configure_otel(options["otlp"]) if options.get("otlp") else None
    try:
        while True:
            head = source.read(_HEAD)
            if len(head) < _HEAD:
                return
            size = int.from_bytes(head, "big")
            data = source.read(size)
            if len(data) < size:
                report(f"the last batch was cut short ({len(data)} of {size} bytes): its records are lost")
                return
            records, bad = records_of(pickle.loads(data), report)
            written, dropped, errors = append_with_retries(appender, records, report)
            with contextlib.suppress(OSError):  # the parent is gone: its input ends next, and so does this loop
                sink.write(f"{written} {dropped + bad} {errors}\n".encode())
                sink.flush()
    finally:
        appender.checkpoints.final()
        appender.close()
        shutdown = getattr(provider, "shutdown", None)
        if shutdown is not None:
            shutdown()  # export the spans still batched


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)

    def report(message: str, *, force: bool = False) -> None:  # every report is printed here
        print(f"agent-mesh trace: {message}", file=sys.stderr, flush=True)

    # The acknowledgements get their own descriptor; anything else printed goes to stderr, not into them.
    options = json.loads(sys.argv[1])
    if options.get("ahead_lock"):
        hold_lock(options["ahead_lock"])  # held until this process exits
    acks = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    serve(options, sys.stdin.buffer, acks, report)


if __name__ == "__main__":
    main()
