#!/usr/bin/env python3
"""Check an agent-mesh trace bundle offline: python3 verify_bundle.py BUNDLE [--key HEX].

Needs only the standard library and `cryptography` (pip install cryptography); imports nothing of the mesh,
so an auditor can run it anywhere. A bundle is what `agent-mesh traces export --since TIME --out BUNDLE`
writes: records.jsonl, checkpoints.jsonl, trace-key.pub, bundle.json.

It checks that every record's hash matches its content and links to the one before; that every checkpoint
is signed by the key (the bundle's, or the one given with --key, which must be the same) and links to the
checkpoint before it; that the record at each checkpoint's count has the checkpoint's head hash; and that
the records end exactly at the last checkpoint. Exit 0 when all hold, 1 with one line per problem otherwise,
2 when the bundle cannot be read. Keep `signed_bytes` and the record hash in step with policy/trace/.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

SIGNED_PREFIX = b"agent-mesh trace checkpoint v1\n"
GENESIS = "0" * 64
FORMAT = "agent-mesh-trace-bundle/1"


def canonical(value: Any, *, ascii_only: bool = False) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=ascii_only)


def record_hash(record: dict[str, Any]) -> str:
    body = canonical({k: v for k, v in record.items() if k != "hash"})
    return hashlib.sha256((str(record["prev_hash"]) + body).encode("utf-8")).hexdigest()


def signature_holds(checkpoint: dict[str, Any], public: str) -> bool:
    body = {k: v for k, v in checkpoint.items() if k != "sig"}
    try:
        key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public))
        key.verify(bytes.fromhex(str(checkpoint["sig"])), SIGNED_PREFIX + canonical(body, ascii_only=True).encode())
    except (InvalidSignature, ValueError, KeyError):
        return False
    return checkpoint.get("key") == public


def check(bundle: Path, pinned: str | None) -> list[str]:
    manifest = json.loads((bundle / "bundle.json").read_text(encoding="utf-8"))
    if manifest.get("format") != FORMAT:
        return [f"bundle.json: format is {manifest.get('format')!r}, not {FORMAT!r}"]
    first = manifest.get("first")
    if type(first) is not int or first < 1:
        return ["bundle.json: first is not a positive integer"]
    public = (bundle / "trace-key.pub").read_text(encoding="ascii").strip()
    problems: list[str] = []
    if pinned is not None and pinned != public:
        problems.append(f"trace-key.pub is {public[:16]}…, not the expected key {pinned[:16]}…")
        public = pinned
    checkpoints: list[tuple[int, dict[str, Any], str]] = []
    prev = None
    for number, line in enumerate((bundle / "checkpoints.jsonl").read_text(encoding="utf-8").splitlines(), 1):
        try:
            checkpoint = json.loads(line)
            count = int(checkpoint["count"])
        except (ValueError, KeyError, TypeError):
            problems.append(f"checkpoints.jsonl:{number}: not a checkpoint")
            continue
        if not signature_holds(checkpoint, public):
            problems.append(f"checkpoints.jsonl:{number}: the signature does not verify with key {public[:16]}…")
        if prev is not None and checkpoint.get("prev") != prev:
            problems.append(f"checkpoints.jsonl:{number}: does not link to the checkpoint before it")
        prev = hashlib.sha256(line.encode("utf-8")).hexdigest()
        checkpoints.append((count, checkpoint, line))
    if not checkpoints:
        return [*problems, "no checkpoint: nothing anchors these records"]
    heads: dict[int, str] = {}
    position, tip = first - 1, None
    for number, line in enumerate((bundle / "records.jsonl").read_text(encoding="utf-8").splitlines(), 1):
        where = f"records.jsonl:{number} (record {first + number - 1})"
        try:
            record = json.loads(line)
            claimed, link = str(record["hash"]), str(record["prev_hash"])
        except (ValueError, KeyError, TypeError):
            problems.append(f"{where}: not a trace record")
            break
        if tip is None:
            heads[position] = link  # the record before the first: a checkpoint may anchor the start
        elif link != tip:
            problems.append(f"{where}: prev_hash does not link to the record before")
            break
        if record_hash(record) != claimed:
            problems.append(f"{where}: hash does not match the record's content")
            break
        position, tip = position + 1, claimed
        heads[position] = claimed
    for count, checkpoint, _ in checkpoints:
        found = heads.get(count)
        if found is not None and found != checkpoint.get("head"):
            problems.append(f"record {count}: its hash is not the signed checkpoint's head: the chain was rewritten")
    last = checkpoints[-1][0]
    if position < last:
        problems.append(f"the records end at {position}, but the last checkpoint covers {last}: records were removed")
    elif position > last:
        problems.append(f"records {last + 1}..{position} are past the last checkpoint: nothing signed covers them")
    if manifest.get("records") != position - first + 1:
        problems.append(f"bundle.json says {manifest.get('records')} records, the bundle holds {position - first + 1}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path, help="the folder `agent-mesh traces export --out` wrote")
    parser.add_argument("--key", help="the public key you expect (64 hex digits, from `agent-mesh traces key`)")
    args = parser.parse_args(argv)
    try:
        problems = check(args.bundle, args.key)
    except (OSError, ValueError) as exc:
        print(f"cannot read the bundle: {exc}", file=sys.stderr)
        return 2
    if problems:
        for problem in problems:
            print(f"BROKEN: {problem}")
        return 1
    manifest = json.loads((args.bundle / "bundle.json").read_text(encoding="utf-8"))
    print(f"OK: {manifest['records']} records from position {manifest['first']}, every one under a signed checkpoint")
    return 0


if __name__ == "__main__":
    sys.exit(main())
