"""Signed checkpoints of the trace chain: the format, the state dir's Ed25519 key, signing and checking.

A checkpoint is one line of `<state_dir>/checkpoints.jsonl`:
`{"count", "every", "head", "key", "kind": "checkpoint", "prev", "stores", "ts", "sig"}` — `head` is the hash
of the chain's `count`-th record, `prev` the sha256 of the previous checkpoint's line (GENESIS for the first),
`stores` which of `jsonl`/`table` the chain was written to, and `sig` an Ed25519 signature (hex) over
`SIGNED_PREFIX + canonical JSON of every other field`. scripts/verify_bundle.py re-implements `signed_bytes`
and `verify_signature` with the standard library and `cryptography` only: keep the two in step.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from policy.store.statedir import make_private_dir

CHECKPOINTS_NAME = "checkpoints.jsonl"
KEY_NAME = "trace-key.pem"  # the private key, PKCS#8 PEM, 0600
PUBLIC_NAME = "trace-key.pub"  # the public key, 64 hex digits: safe to copy anywhere (0600 like the rest)
SIGNED_PREFIX = b"agent-mesh trace checkpoint v1\n"  # domain separation: this key signs nothing else
GENESIS = "0" * 64
STORES = ("jsonl", "table")
_FIELDS = ("count", "every", "head", "key", "kind", "prev", "stores", "ts", "sig")


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """One signed statement: the chain held `count` records and the last one's hash was `head`."""

    count: int
    head: str
    ts: float
    every: int
    prev: str
    stores: tuple[str, ...]
    key: str
    sig: str

    def body(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "every": self.every,
            "head": self.head,
            "key": self.key,
            "kind": "checkpoint",
            "prev": self.prev,
            "stores": list(self.stores),
            "ts": self.ts,
        }

    def line(self) -> str:
        return json.dumps({**self.body(), "sig": self.sig}, sort_keys=True, separators=(",", ":"))


def signed_bytes(body: dict[str, Any]) -> bytes:
    """What the signature covers: the prefix and the canonical JSON of the checkpoint without `sig`."""
    return SIGNED_PREFIX + json.dumps(body, sort_keys=True, separators=(",", ":")).encode("ascii")


def line_digest(line: str) -> str:
    """The `prev` of the checkpoint after the one on this line."""
    return hashlib.sha256(line.encode("utf-8")).hexdigest()


def _hex(value: Any, name: str, length: int) -> str:
    if not isinstance(value, str) or len(value) != length or any(c not in "0123456789abcdef" for c in value):
        raise ValueError(f"{name} is not {length} lowercase hex digits")
    return value


def parse_checkpoint(line: str) -> Checkpoint:
    """A checkpoints.jsonl line -> Checkpoint. Raises ValueError naming the first field that is wrong."""
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(data, dict) or data.get("kind") != "checkpoint":
        raise ValueError("not a checkpoint object")
    if set(data) != set(_FIELDS):
        raise ValueError(f"fields {sorted(data)} are not {sorted(_FIELDS)}")
    count, every, ts, stores = data["count"], data["every"], data["ts"], data["stores"]
    if type(count) is not int or count < 1:
        raise ValueError("count is not a positive integer")
    if type(every) is not int or every < 1:
        raise ValueError("every is not a positive integer")
    if type(ts) not in (int, float):
        raise ValueError("ts is not a number")
    if not isinstance(stores, list) or not stores or any(s not in STORES for s in stores):
        raise ValueError(f"stores is not a non-empty list of {STORES}")
    return Checkpoint(
        count=count,
        head=_hex(data["head"], "head", 64),
        ts=float(ts),
        every=every,
        prev=_hex(data["prev"], "prev", 64),
        stores=tuple(stores),
        key=_hex(data["key"], "key", 64),
        sig=_hex(data["sig"], "sig", 128),
    )


def sign(
    key: Ed25519PrivateKey, *, count: int, head: str, ts: float, every: int, prev: str, stores: tuple[str, ...]
) -> Checkpoint:
    """The checkpoint of a chain whose `count`-th record has hash `head`, signed with `key`."""
    unsigned = Checkpoint(count, head, ts, every, prev, stores, public_hex(key.public_key()), "")
    signature = key.sign(signed_bytes(unsigned.body())).hex()
    return Checkpoint(count, head, ts, every, prev, stores, unsigned.key, signature)


def verify_signature(checkpoint: Checkpoint, public: str) -> bool:
    """True when `checkpoint` was signed by the key whose 64-hex public form is `public`."""
    if checkpoint.key != public:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public)).verify(
            bytes.fromhex(checkpoint.sig), signed_bytes(checkpoint.body())
        )
    except (InvalidSignature, ValueError):
        return False
    return True


def public_hex(key: Ed25519PublicKey) -> str:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def load_key(state_dir: str | Path, *, create: bool = True) -> Ed25519PrivateKey | None:
    """The state dir's signing key; made (0600, with its public half beside it) when missing and `create`.

    Several processes may race to make it: O_EXCL picks one, the others read what it wrote.
    """
    folder = Path(state_dir)
    path = folder / KEY_NAME
    for _ in range(50):
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            if not create:
                return None
            made = _make_key(folder)
            if made is not None:
                return made
            continue
        if not data.endswith(b"-----END PRIVATE KEY-----\n"):
            continue  # another process is still writing it
        _warn_if_open(path)
        key = serialization.load_pem_private_key(data, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} is not an Ed25519 private key")
        return key
    raise OSError(f"{path} stays incomplete: remove it to make a new key")


def _make_key(folder: Path) -> Ed25519PrivateKey | None:
    make_private_dir(folder)  # the state dir: 0700 (policy/store/statedir.py)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    try:
        fd = os.open(folder / KEY_NAME, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return None
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    public = folder / PUBLIC_NAME
    tmp = public.with_name(f".{PUBLIC_NAME}.{os.getpid()}")
    tmp.write_text(public_hex(key.public_key()) + "\n")
    tmp.chmod(0o600)  # not secret, but the state dir's rule is 0600 for every file (`traces key` prints it)
    tmp.replace(public)
    return key


def _warn_if_open(path: Path) -> None:
    with contextlib.suppress(OSError):
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            print(f"agent-mesh trace: {path} is readable by others: chmod 600 it", file=sys.stderr, flush=True)


def read_public(state_dir: str | Path) -> str | None:
    """The public key written beside the private one (64 hex digits), or None when there is none."""
    try:
        text = (Path(state_dir) / PUBLIC_NAME).read_text().strip()
    except FileNotFoundError:
        return None
    return _hex(text, PUBLIC_NAME, 64)


def read_checkpoints(path: Path) -> tuple[list[tuple[Checkpoint, str]], list[str]]:
    """Every checkpoint of a file with its line, and a problem per line that is not one (a torn last line
    is left out silently: a writer killed mid-line)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return [], []
    out: list[tuple[Checkpoint, str]] = []
    problems: list[str] = []
    lines = data.split(b"\n")
    torn = lines.pop()  # b"" when the file ends with a newline
    for number, raw in enumerate(lines, start=1):
        line = raw.decode("utf-8", errors="replace")
        try:
            out.append((parse_checkpoint(line), line))
        except ValueError as exc:
            problems.append(f"{path.name}:{number}: not a checkpoint: {exc}")
    del torn
    return out, problems
