"""Approval notifications: signed, retried with backoff on a background thread, sent on pending and resolution."""

from __future__ import annotations

import json
import threading

import httpx
import pytest

from policy.control import ControlPlane, Notifier, sign, verify
from policy.control.notify import SIGNATURE_HEADER, retryable
from tests.policy.control.conftest import Call


class Recorder:
    """An httpx transport (the third-party edge) answering queued statuses, then 200."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.requests: list[httpx.Request] = []
        self.done = threading.Condition()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self.done:
            self.requests.append(request)
            self.done.notify_all()
        return httpx.Response(self.statuses.pop(0) if self.statuses else 200)

    def wait(self, n: int) -> list[httpx.Request]:
        with self.done:
            assert self.done.wait_for(lambda: len(self.requests) >= n, 5)
            return list(self.requests)


def test_a_signature_is_an_hmac_of_the_exact_body() -> None:
    sig = sign("s3cret", b'{"a":1}')
    assert sig.startswith("sha256=")
    assert verify("s3cret", b'{"a":1}', sig)
    assert not verify("s3cret", b'{"a": 1}', sig)
    assert not verify("other", b'{"a":1}', sig)
    assert not verify("s3cret", b'{"a":1}', None)


@pytest.mark.parametrize(("status", "again"), [(500, True), (503, True), (429, True), (408, True), (400, False),
                                               (401, False), (404, False)])  # fmt: skip
def test_server_errors_and_throttling_are_retried_client_errors_are_not(status: int, again: bool) -> None:
    assert retryable(status) is again


def test_a_failed_delivery_is_retried_until_it_succeeds() -> None:
    rec = Recorder(503, 500)
    notifier = Notifier("http://hooks.test/x", "k", backoff=0.001, transport=httpx.MockTransport(rec))
    notifier.send("approval.pending", {"approval": {"id": "abc"}})
    requests = rec.wait(3)
    notifier.close()
    assert notifier.delivered == 1
    assert len({r.content for r in requests}) == 1  # the same body, so the same signature, every time
    body = json.loads(requests[-1].content)
    assert body["event"] == "approval.pending"
    assert verify("k", requests[-1].content, requests[-1].headers[SIGNATURE_HEADER])


def test_a_delivery_gives_up_after_its_attempts_or_on_a_client_error() -> None:
    rec = Recorder(500, 500, 500, 400)
    notifier = Notifier("http://hooks.test/x", None, attempts=3, backoff=0.001, transport=httpx.MockTransport(rec))
    notifier.send("approval.pending", {})
    notifier.send("approval.denied", {})
    rec.wait(4)
    notifier.close()
    assert (notifier.delivered, notifier.failed) == (0, 2)
    assert SIGNATURE_HEADER not in rec.requests[0].headers


def test_sending_never_waits_for_the_receiver() -> None:
    release = threading.Event()

    def slow(request: httpx.Request) -> httpx.Response:
        release.wait(5)
        return httpx.Response(200)

    notifier = Notifier("http://hooks.test/x", None, transport=httpx.MockTransport(slow))
    for i in range(50):
        notifier.send("approval.pending", {"n": i})  # returns at once although the receiver hangs
    release.set()
    notifier.close()
    assert notifier.delivered == 50


async def test_the_watcher_notifies_pending_and_resolved_approvals(plane: ControlPlane, call: Call) -> None:
    rec = Recorder()
    plane.watcher.notifier = Notifier("http://hooks.test/x", "k", transport=httpx.MockTransport(rec))
    assert plane.watcher.step() == []  # the first poll starts from the history
    v = await call("fs.write_file", {"path": "/x", "password": "hunter2"})
    events = plane.watcher.step()
    assert [e.kind for e in events] == ["trace", "approvals"]
    plane.operator.approve(v.approval_id or "", by="bob", reason="fine")
    assert [e.kind for e in plane.watcher.step()] == ["approvals"]
    requests = rec.wait(2)
    plane.watcher.notifier.close()
    bodies = [json.loads(r.content) for r in requests]
    assert [b["event"] for b in bodies] == ["approval.pending", "approval.approved"]
    assert bodies[0]["approval"]["arguments"] == {"path": "/x", "password": "[REDACTED]"}
    assert bodies[1]["approval"]["resolved_by"] == "bob"
