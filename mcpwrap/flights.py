"""What the relay keeps about client requests (in flight, being judged, inside a batch), and the checks each
client message passes first: a JSON-RPC message, an id not already in flight, params its kind
(policy.wire.kinds) can judge. Pure functions and plain records; the Relay holds the state."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mcpwrap.frame_judge import CallTicket
from policy import RequestKind, classify_request
from policy.wire import jsonrpc, rejects
from policy.wire.jsonrpc import Message
from policy.wire.names import misspelled_method

# Ids of the requests mcpwrap sends the server itself (server/discover, tools/list); a client may not use them.
INTERNAL_ID_PREFIX = "agent-mesh/mcpwrap:"

# Whether a client response (to a server request) or notification is to be forwarded.
type Route = Callable[[Message], bool]
type Plan = list[tuple[Message, RequestKind | None]]


@dataclass(slots=True)
class InFlight:
    """A client request the server has not answered yet."""

    request_id: Any
    method: str
    ticket: CallTicket | None = None
    batch: Batch | None = None


@dataclass(slots=True)
class Judging:
    """A client call being judged (or held): answered by `abandon_judging` if the server goes first."""

    request_id: Any
    task: asyncio.Task[None] | None = None
    solo: bool = True  # False inside a batch: one element's cancellation cannot stop the others' task
    cancelled: bool = False  # inside a batch, cancelled by the client: never forwarded whatever its verdict


@dataclass(slots=True)
class Batch:
    """Answers mcpwrap gave inside a client batch, merged into the server's array response."""

    answers: list[Message]
    sent: bool = False


def unsent(flight: InFlight | None) -> list[Batch]:
    """The batch this response belongs to, if mcpwrap's own answers for it are still to be sent."""
    batch = flight.batch if flight is not None else None
    if batch is None or batch.sent or not batch.answers:
        return []
    batch.sent = True
    return [batch]


def admit(msg: Message, busy: Callable[[str], bool]) -> RequestKind | Message:
    """The kind of a client request, or the error that answers it (its id in flight, params it cannot judge)."""
    request_id = msg["id"]
    if busy(jsonrpc.id_key(request_id)) or (isinstance(request_id, str) and request_id.startswith(INTERNAL_ID_PREFIX)):
        why = f"mcpwrap: request id {request_id!r} is already in flight; this request was not run"
        return jsonrpc.error(request_id, jsonrpc.INVALID_REQUEST, why)
    imitated = misspelled_method(msg["method"])
    if imitated is not None:
        return rejects.misspelt_method(request_id, msg["method"], imitated)
    try:
        return classify_request(msg["method"], msg.get("params"))
    except ValueError as exc:
        return rejects.unreadable(request_id, exc)


def sort_batch(
    items: list[Any], busy: Callable[[str], bool], answered: Route, notified: Route
) -> tuple[Plan, list[Message]]:
    """A client batch's elements to forward or judge, as (element, kind; None for a response or notification),
    and the errors answering the others (not JSON-RPC, an id in flight or repeated in the batch, bad params)."""
    plan: Plan = []
    errors: list[Message] = []
    keys: set[str] = set()
    for item in items:
        why = jsonrpc.invalid(item)
        if why is not None:
            errors.append(jsonrpc.error(jsonrpc.id_of(item), jsonrpc.INVALID_REQUEST, f"mcpwrap: {why}"))
        elif "method" not in item:
            if answered(item):
                plan.append((item, None))
        elif "id" not in item:
            if notified(item):
                plan.append((item, None))
        else:
            admitted = admit(item, lambda key: key in keys or busy(key))
            if isinstance(admitted, RequestKind):
                keys.add(jsonrpc.id_key(item["id"]))
                plan.append((item, admitted))
            else:
                errors.append(admitted)
    return plan, errors
