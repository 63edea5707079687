"""The differential property for one request: what the upstream acted on is what the proxy judged (operation,
arguments, target), or the proxy refused it and the upstream saw nothing; and one trace record either way.

`Seen` is the upstream's own account (apps/*: one entry per request a handler or the not-found handler
received); `records` are the proxy's trace records for the request's session. Checks return `Finding`s
named by class, so a report groups them the way a fix would.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Any

# Classes of mismatch; REFUSED_UNRECORDED is checked by its own test (see test_differential.py).
EXECUTED_UNRECORDED = "executed-unrecorded"
FORWARDED_UNRECORDED = "forwarded-unrecorded"
MULTIPLE_RECORDS = "multiple-records"
EXECUTED_TWICE = "executed-twice"
EXECUTED_DESPITE_REFUSAL = "executed-despite-refusal"
OPERATION_DIFFERS = "operation-differs"
AMBIGUOUS_ARGUMENTS = "ambiguous-arguments"
ARGUMENTS_DIFFER = "arguments-differ"
HOST_DIFFERS = "host-differs"
REFUSED_UNRECORDED = "refused-unrecorded"


@dataclass(frozen=True)
class Finding:
    kind: str
    detail: str


def address_of(name: str) -> str | None:
    """The IPv4/IPv6 address a host name spells without DNS (numeric forms, `localhost`), else None."""
    bare = name.strip().strip("[]").lower().rstrip(".")
    if bare == "localhost":
        return "127.0.0.1"
    try:
        addr = ipaddress.ip_address(bare)
    except ValueError:
        try:
            return socket.inet_ntoa(socket.inet_aton(bare))  # 2130706433, 0x7f000001, 127.1, 0177.0.0.1
        except OSError:
            return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    return str(addr)


def split_authority(value: str) -> tuple[str, int | None]:
    host, sep, port = value.rpartition(":")
    if sep and port.isdigit() and not host.endswith(":"):
        return host, int(port)
    return value, None


def acted_arguments(seen: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Path params, query and body the handler read, as one argument object, and the keys whose sources
    disagree (the upstream could act on either value)."""
    body = seen.get("body")
    sources: list[dict[str, Any]] = [dict(seen.get("params") or {}), dict(seen.get("query") or {})]
    if isinstance(body, dict):
        sources.append(body)
    elif body is not None:
        sources.append({"body": body})
    merged: dict[str, Any] = {}
    conflicts: list[str] = []
    for source in sources:
        for key, value in source.items():
            if key in merged and merged[key] != value and key not in conflicts:
                conflicts.append(key)
            merged.setdefault(key, value)
    return merged, conflicts


def arguments_agree(acted: dict[str, Any], judged: dict[str, Any], *, body_read: bool) -> bool:
    """Every value the upstream acted on was judged with that value, and nothing else was judged, except the
    proxy's reading of a body the upstream did not read at all (JSON without a content type, which Starlette
    reads and Flask and Express do not; text; `body_size`/`body_sha256`): judged more, never less."""
    if body_read and judged.keys() - acted.keys():
        return False
    return all(key in judged and judged[key] == value for key, value in acted.items())


def check(server: str, port: int, seen: list[dict[str, Any]], records: list[dict[str, Any]]) -> list[Finding]:
    """Every way this request's handling breaks the property (empty when it holds)."""
    out: list[Finding] = []
    acted = [s for s in seen if s.get("op")]
    calls = {r.get("trace_id"): r for r in records}
    if len(calls) > 1:
        out.append(Finding(MULTIPLE_RECORDS, f"{len(calls)} trace records: {[r.get('tool') for r in records]}"))
    if len(acted) > 1:
        out.append(Finding(EXECUTED_TWICE, f"the upstream ran {[s['op'] for s in acted]}"))
    if not seen:
        return out  # refused: nothing ran (the record count of refusals is its own check)
    if not calls:
        kind = EXECUTED_UNRECORDED if acted else FORWARDED_UNRECORDED
        what = acted[0]["op"] if acted else "no operation (not found)"
        return [*out, Finding(kind, f"forwarded with no trace record; the upstream ran {what}: {seen[0]}")]
    record = next(iter(calls.values()))
    judged = f"judged {record.get('tool')} {record.get('args')} -> {record.get('verdict')}"
    if record.get("verdict") != "allow":
        out.append(Finding(EXECUTED_DESPITE_REFUSAL, f"{judged}, yet the upstream received {seen[0]}"))
    for entry in acted[:1]:
        if record.get("tool") != f"{server}.{entry['op']}":
            out.append(Finding(OPERATION_DIFFERS, f"{judged}; the upstream ran {entry['op']} {entry}"))
            continue
        args, conflicts = acted_arguments(entry)
        if conflicts:
            out.append(Finding(AMBIGUOUS_ARGUMENTS, f"{judged}; the upstream has two values for {conflicts}: {entry}"))
        elif not arguments_agree(args, record.get("args") or {}, body_read=entry.get("body") is not None):
            out.append(Finding(ARGUMENTS_DIFFER, f"{judged}; the upstream acted on {args}"))
    out += _host_findings(port, seen[0], record, judged)
    return out


TEMPLATES = {"getNote": "/v1/notes/{id}", "updateNote": "/v1/notes/{id}", "deleteNote": "/v1/notes/{id}",
             "purgeNote": "/v1/notes/{id}/purge"}  # fmt: skip


def check_plain(port: int, seen: list[dict[str, Any]], records: list[dict[str, Any]]) -> list[Finding]:
    """The property for a host no server entry names: the call is judged as plain HTTP `METHOD /path`, so the
    method the upstream ran (after any override) and the path it routed on (decoded) must be the judged
    ones, with the query and body it read as the judged arguments."""
    out: list[Finding] = []
    calls = {r.get("trace_id"): r for r in records}
    if len(calls) > 1:
        out.append(Finding(MULTIPLE_RECORDS, f"{len(calls)} trace records: {[r.get('tool') for r in records]}"))
    acted = [s for s in seen if s.get("op")]
    if not seen:
        return out
    if not calls:
        return [*out, Finding(EXECUTED_UNRECORDED if acted else FORWARDED_UNRECORDED, f"no record: {seen[0]}")]
    record = next(iter(calls.values()))
    judged = f"judged {record.get('tool')} {record.get('args')} -> {record.get('verdict')}"
    if record.get("verdict") != "allow":
        out.append(Finding(EXECUTED_DESPITE_REFUSAL, f"{judged}, yet the upstream received {seen[0]}"))
    for entry in acted[:1]:
        ran = f"{entry['method']} {TEMPLATES[entry['op']].format(**entry['params'])}"
        if not str(record.get("tool", "")).endswith(f".{ran}"):
            out.append(Finding(OPERATION_DIFFERS, f"{judged}; the upstream ran {ran} ({entry['op']})"))
            continue
        plain = dict(entry, params={})
        args, conflicts = acted_arguments(plain)
        if conflicts:
            out.append(Finding(AMBIGUOUS_ARGUMENTS, f"{judged}; the upstream has two values for {conflicts}: {entry}"))
        elif not arguments_agree(args, record.get("args") or {}, body_read=entry.get("body") is not None):
            out.append(Finding(ARGUMENTS_DIFFER, f"{judged}; the upstream acted on {args}"))
    return [*out, *_host_findings(port, seen[0], record, judged)]


def _host_findings(port: int, seen: dict[str, Any], record: dict[str, Any], judged: str) -> list[Finding]:
    header = seen.get("host")
    judged_host = (record.get("http") or {}).get("host")
    if not header or not judged_host:
        return [] if judged_host is None else [Finding(HOST_DIFFERS, f"{judged}; the upstream got no Host header")]
    name, header_port = split_authority(header)
    same_name = name.strip("[]").lower() == str(judged_host).strip("[]").lower()
    same_addr = address_of(name) is not None and address_of(name) == address_of(str(judged_host))
    if (same_name or same_addr) and header_port in (port, None if port == 80 else port):
        return []
    return [Finding(HOST_DIFFERS, f"{judged} for host {judged_host}; the upstream's Host header is {header!r}")]


def check_mcp(server: str, calls: int, seen: list[dict[str, Any]], records: list[dict[str, Any]]) -> list[Finding]:
    """The MCP form of the property: every tool call the server ran was judged, allowed, as that tool with
    those arguments (the judged arguments may hold more: a tool ignores arguments it does not take), one
    record each; no more records than the request holds calls (one for a request refused whole). `seen` has
    an entry without `op` for every request the server received, then one per tool it ran."""
    out: list[Finding] = []
    calls_by_id = {r.get("trace_id"): r for r in records}
    if len(calls_by_id) > max(calls, 1):
        out.append(Finding(MULTIPLE_RECORDS, f"{len(calls_by_id)} trace records for {calls} calls: {records}"))
    if seen and calls and not records:
        ran = [s["op"] for s in seen if s.get("op")]
        kind = EXECUTED_UNRECORDED if ran else FORWARDED_UNRECORDED
        return [*out, Finding(kind, f"{calls} calls forwarded with no trace record; the server ran {ran}")]
    unused = [r for r in calls_by_id.values() if r.get("verdict") == "allow"]
    for ran in (s for s in seen if s.get("op")):
        match = next(
            (r for r in unused if r.get("tool") == f"{server}.{ran['op']}" and _covers(r.get("args"), ran["args"])),
            None,
        )
        if match is not None:
            unused.remove(match)
            continue
        judged = [(r.get("tool"), r.get("args"), r.get("verdict")) for r in records]
        kind = EXECUTED_UNRECORDED if not records else OPERATION_DIFFERS
        out.append(Finding(kind, f"the server ran {ran['op']} {ran['args']}; judged: {judged}"))
    return out


def _covers(judged: Any, acted: dict[str, Any]) -> bool:
    return isinstance(judged, dict) and all(k in judged and judged[k] == v for k, v in acted.items())
