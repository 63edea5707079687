"""Approval notifications: a JSON event POSTed to `approval.notify_url` when an approval is queued and when
it is resolved, signed with HMAC-SHA256 (`approval.notify_secret`), retried with backoff on a background
thread so nothing on a call's path ever waits for the receiver.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import queue
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from policy.core.secrets import SecretRef

log = logging.getLogger("agent_mesh.notify")

SIGNATURE_HEADER = "X-Agent-Mesh-Signature"
EVENT_HEADER = "X-Agent-Mesh-Event"
DELIVERY_HEADER = "X-Agent-Mesh-Delivery"
ATTEMPTS = 5
BACKOFF_SECONDS = 0.5
TIMEOUT_SECONDS = 5.0


def sign(secret: str, body: bytes) -> str:
    """The signature header value: `sha256=` + hex HMAC-SHA256 of the exact body bytes."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str | None) -> bool:
    """What a receiver does: recompute the signature and compare in constant time."""
    return header is not None and hmac.compare_digest(sign(secret, body), header)


def retryable(status: int) -> bool:
    """Server errors, timeouts and throttling are retried; other client errors never succeed on retry."""
    return status >= 500 or status in (408, 425, 429)


@dataclass(frozen=True, slots=True)
class Delivery:
    id: str
    event: str
    body: bytes


class Notifier:
    """Delivers events in order on one daemon thread; `send` only enqueues."""

    def __init__(
        self,
        url: str | SecretRef,
        secret: str | SecretRef | None,
        *,
        attempts: int = ATTEMPTS,
        backoff: float = BACKOFF_SECONDS,
        timeout: float = TIMEOUT_SECONDS,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        # `{$env}`/`{$file}` secrets of approval.notify_*: read by the notifier, the one surface that uses them.
        self.url = url.resolve() if isinstance(url, SecretRef) else url
        self._secret = secret.resolve() if isinstance(secret, SecretRef) else secret
        self._attempts = attempts
        self._backoff = backoff
        self._client = httpx.Client(timeout=timeout, transport=transport, trust_env=False)
        self._queue: queue.SimpleQueue[Delivery | None] = queue.SimpleQueue()
        self._stop = threading.Event()
        self.delivered = 0
        self.failed = 0
        self._thread = threading.Thread(target=self._run, name="agent-mesh-notify", daemon=True)
        self._thread.start()

    def send(self, event: str, payload: Mapping[str, Any]) -> str:
        """Queue one event; returns its delivery id (also in the body and the delivery header)."""
        delivery_id = secrets.token_hex(8)
        doc = {"id": delivery_id, "event": event, "ts": time.time(), **payload}
        body = json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str).encode("utf-8")
        self._queue.put(Delivery(delivery_id, event, body))
        return delivery_id

    def close(self, timeout: float = 5.0) -> None:
        """Stop after the queued events (giving up their retries once `timeout` has passed)."""
        self._queue.put(None)
        self._thread.join(timeout)
        self._stop.set()
        self._thread.join(1.0)
        self._client.close()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self._deliver(item):
                self.delivered += 1
            else:
                self.failed += 1

    def _deliver(self, item: Delivery) -> bool:
        headers = {"Content-Type": "application/json", EVENT_HEADER: item.event, DELIVERY_HEADER: item.id}
        if self._secret:
            headers[SIGNATURE_HEADER] = sign(self._secret, item.body)
        why = ""
        for attempt in range(self._attempts):
            if attempt and self._stop.wait(self._backoff * 2 ** (attempt - 1)):
                break
            try:
                response = self._client.post(self.url, content=item.body, headers=headers)
            except httpx.HTTPError as exc:
                why = f"{type(exc).__name__}: {exc}"
                continue
            if response.is_success:
                return True
            why = f"HTTP {response.status_code}"
            if not retryable(response.status_code):
                break
        log.warning("agent-mesh: notification %s (%s) to %s failed: %s", item.id, item.event, self.url, why)
        return False
