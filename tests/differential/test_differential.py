"""A request the proxy judged as one operation never runs upstream as another, with other arguments or on
another host: thousands of hostile variants, against Starlette, Flask, Express and the MCP SDK's server
behind the real proxy, Starlette over HTTPS through CONNECT tunnels (with SNI spellings), and Starlette on a
port no server entry names (judged as plain HTTP: the method and path it ran must be the judged ones).

`DIFF_EXAMPLES` sets the requests per upstream (default 1000, rounded up to batches of 30; CI derandomizes,
so every run sends the same ones); `DIFF_RANDOM=1` draws new ones; `DIFF_SHRINK=1` lets hypothesis shrink a
failing batch; with `DIFF_SURVEY=FILE` the property tests do not fail but append every finding to FILE as
JSON lines.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.differential import known, oracle
from tests.differential.harness import FRAMEWORKS, MCP, TLS, UNLISTED, Mesh, Outcome
from tests.differential.mcp_mutations import mcp_cases
from tests.differential.mutations import Case, cases, tunnelled_cases

BATCH = 30
EXAMPLES = int(os.environ.get("DIFF_EXAMPLES", "1000"))
SURVEY = os.environ.get("DIFF_SURVEY")
PHASES = [Phase.explicit, Phase.generate] + ([Phase.shrink] if os.environ.get("DIFF_SHRINK") else [])
REFUSED: list[Outcome] = []
REFUSED_UNRECORDED: list[Outcome] = []
EXECUTED: Counter[tuple[str, str]] = Counter()
BATCHES = settings(
    max_examples=-(-EXAMPLES // BATCH),  # whole batches, rounded up
    derandomize=not os.environ.get("DIFF_RANDOM"),
    database=None,
    deadline=None,
    phases=PHASES,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)
# A tunnelled request costs two TLS handshakes in the proxy (about 6 times a plain one): a third as many.
TUNNEL_BATCHES = settings(BATCHES, max_examples=-(-EXAMPLES // (3 * BATCH)))

# e2e: real third-party servers (make test runs it, make test-fast leaves it out).
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(max(900, EXAMPLES // 5))]  # 1,000 requests take ~20 s


def _describe(outcome: Outcome, findings: list[oracle.Finding]) -> str:
    answer = f"{outcome.response.status} {outcome.response.body[:160]!r}" if outcome.response else outcome.error
    lines = [
        f"[{outcome.framework}] {' '.join(outcome.case.tags) or 'unmutated'}",
        f"  request: {outcome.request.describe()}",
        f"  proxy answered: {answer}",
    ]
    lines += [f"  {f.kind}: {f.detail}" for f in findings]
    return "\n".join(lines)


def _survey(outcome: Outcome, findings: list[oracle.Finding]) -> None:
    assert SURVEY is not None
    with Path(SURVEY).open("a") as f:
        for finding in findings:
            answer = f"{outcome.response.status} {outcome.response.body[:200]!r}" if outcome.response else outcome.error
            row = {"framework": outcome.framework, "kind": finding.kind, "tags": outcome.case.tags,
                   "request": outcome.request.describe(), "answer": answer, "detail": finding.detail}  # fmt: skip
            f.write(json.dumps(row) + "\n")


def _refused_before_http(outcome: Outcome) -> bool:
    """Refused before any HTTP request reached the addon: by mitmproxy's HTTP layer (a user name in the
    request line's URL), or in a tunnel whose TLS handshake failed. There is no call to record."""
    response = outcome.response
    if response is not None:
        return response.status == 400 and b"Bad HTTP request line" in response.body
    return outcome.case.sni is not None and outcome.error is not None


def check_batch(mesh: Mesh, framework: str, batch: list[Case]) -> None:
    failures = []
    for outcome in mesh.run(framework, batch):
        port = mesh.ports[framework]
        if framework == MCP:
            findings = oracle.check_mcp(framework, outcome.case.calls, outcome.seen, outcome.records)
        elif framework == UNLISTED:
            findings = oracle.check_plain(port, outcome.seen, outcome.records)
        else:
            findings = oracle.check(framework, port, outcome.seen, outcome.records)
        EXECUTED.update((framework, s["op"]) for s in outcome.seen if s.get("op"))
        # A refused MCP request of plumbing only (ping, tools/list) holds no call to record.
        if not outcome.seen and (framework != MCP or outcome.case.calls) and not _refused_before_http(outcome):
            REFUSED.append(outcome)
            if not outcome.records:
                unrecorded = oracle.Finding(oracle.REFUSED_UNRECORDED, "refused with no trace record")
                if SURVEY:
                    _survey(outcome, [unrecorded])
                if not known.open_class(outcome, unrecorded):
                    REFUSED_UNRECORDED.append(outcome)
        if not SURVEY:
            findings = [f for f in findings if not known.open_class(outcome, f)]
        if findings:
            if SURVEY:
                _survey(outcome, findings)
            else:
                failures.append(_describe(outcome, findings))
    assert not failures, f"{len(failures)} of {len(batch)} requests broke the property:\n" + "\n".join(failures)


@pytest.mark.parametrize("framework", FRAMEWORKS)
@BATCHES
@given(batch=st.lists(cases(), min_size=BATCH, max_size=BATCH))
def test_the_upstream_runs_only_what_the_proxy_judged(mesh: Mesh, framework: str, batch: list[Case]) -> None:
    check_batch(mesh, framework, batch)


@BATCHES
@given(batch=st.lists(mcp_cases(), min_size=BATCH, max_size=BATCH))
def test_the_mcp_server_runs_only_the_calls_the_proxy_judged(mesh: Mesh, batch: list[Case]) -> None:
    check_batch(mesh, MCP, batch)


@TUNNEL_BATCHES
@given(batch=st.lists(tunnelled_cases(), min_size=BATCH, max_size=BATCH))
def test_a_tunnelled_upstream_runs_only_what_the_proxy_judged(mesh: Mesh, batch: list[Case]) -> None:
    check_batch(mesh, TLS, batch)


@TUNNEL_BATCHES
@given(batch=st.lists(cases(), min_size=BATCH, max_size=BATCH))
def test_a_host_no_server_names_is_judged_on_what_it_runs(mesh: Mesh, batch: list[Case]) -> None:
    check_batch(mesh, UNLISTED, batch)


def test_the_generated_requests_ran_allowed_operations_on_every_framework() -> None:
    # A proxy that refused everything would pass the property: the runs above must have executed calls.
    for framework in (*FRAMEWORKS, TLS, UNLISTED):
        for op in ("getNote", "updateNote"):
            assert EXECUTED[framework, op] > 0, f"{framework} never ran {op} (DIFF_EXAMPLES too small?): {EXECUTED}"
    for tool in ("read_note", "write_note"):
        assert EXECUTED[MCP, tool] > 0, f"the MCP server never ran {tool} (DIFF_EXAMPLES too small?): {EXECUTED}"


def test_every_refused_request_leaves_one_trace_record() -> None:
    assert REFUSED, "the property tests above sent no request the proxy refused"
    unrecorded = Counter(" ".join(o.case.tags) for o in REFUSED_UNRECORDED)
    assert not REFUSED_UNRECORDED, (
        f"{len(REFUSED_UNRECORDED)} of {len(REFUSED)} refused requests left no trace record, e.g.:\n"
        + "\n".join(_describe(o, []) for o in REFUSED_UNRECORDED[:5])
        + f"\nby mutation: {unrecorded.most_common(10)}"
    )
