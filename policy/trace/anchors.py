"""What the signed checkpoints say about a chain: each tamper that a hash chain alone cannot see, named.

The chain proves only that its records follow each other; a checkpoint signed by the mesh's key proves how
far it reached. So against the last checkpoint (count C, head H): fewer than C records means records were
removed from the end (or the store emptied, or deleted); a record C whose hash is not H means the chain was
rewritten and resealed; many more records than the checkpoint interval past the last checkpoint, or records
with no checkpoint at all, mean checkpoints were removed. Pure functions over what `verify` read.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from policy.trace.checkpoint import GENESIS, Checkpoint, line_digest, verify_signature

# Records a chain may hold past its last checkpoint without a checkpoint having been removed: a checkpoint
# is signed as soon as the chain is `every` records past the last one, after the batch that crossed it; a
# writer killed between its batch (the trace writer's largest is 2,048 records) and its signature leaves
# that many more, until the next append by any process signs.
TAIL_SLACK = 2048


@dataclass(slots=True)
class Anchoring:
    """The checkpoints read from the state dir and what is wrong with them as a sequence."""

    checkpoints: list[Checkpoint] = field(default_factory=list)
    key: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def last(self) -> Checkpoint | None:
        return self.checkpoints[-1] if self.checkpoints else None


def when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


def check_sequence(entries: Sequence[tuple[Checkpoint, str]], key: str | None, pinned: str | None) -> Anchoring:
    """Signatures, links and counts of the checkpoints, in file order. `pinned`: the public key the operator
    expects (kept outside the state dir), which must match the state dir's."""
    out = Anchoring([c for c, _ in entries], key)
    if pinned is not None and key is not None and pinned != key:
        out.problems.append(f"the state dir's public key {key[:16]}… is not the expected {pinned[:16]}…")
    public = pinned or key
    if entries and public is None:
        out.problems.append("checkpoints exist but the public key (trace-key.pub) is missing: cannot check them")
        return out
    prev, count = GENESIS, 0
    for number, (checkpoint, line) in enumerate(entries, start=1):
        name = f"checkpoint {number} (count {checkpoint.count}, signed {when(checkpoint.ts)})"
        if public is not None and not verify_signature(checkpoint, public):
            out.problems.append(f"{name}: the signature does not verify with key {public[:16]}…: forged or edited")
        if checkpoint.prev != prev:
            out.problems.append(f"{name}: does not link to the one before it: checkpoints were removed or reordered")
        if checkpoint.count < count:
            out.problems.append(f"{name}: counts fewer records than the checkpoint before it ({count})")
        prev, count = line_digest(line), checkpoint.count
    return out


def against_store(
    store: str, label: str, present: bool, records: int, at: dict[int, str], anchoring: Anchoring
) -> list[str]:
    """Problems of one store (`jsonl` files or `table`) holding `records` chained records, against the
    checkpoints. `at`: the hash of the store's record at each checkpoint's count it reached."""
    problems: list[str] = []
    last = anchoring.last
    if last is None:
        if records:
            problems.append(
                f"{label} holds {records:,} records but there is no checkpoint: checkpoints.jsonl was deleted or "
                "emptied (or the trace predates checkpoints: the next record written signs one)"
            )
        return problems
    if store not in last.stores:
        return problems
    signed = f"the last checkpoint (signed {when(last.ts)}) covers {last.count:,}"
    if not present:
        problems.append(f"{label} is missing, but {signed} records written to it: it was deleted")
    elif records < last.count:
        if records == 0:
            problems.append(f"{label} holds no records, but {signed}: it was emptied")
        else:
            gone = last.count - records
            problems.append(f"{label} holds {records:,} records, but {signed}: the last {gone:,} were removed")
    for checkpoint in anchoring.checkpoints:
        found = at.get(checkpoint.count)
        if found is not None and found != checkpoint.head:
            problems.append(
                f"{label}: record {checkpoint.count:,} has hash {found[:16]}…, but the checkpoint signed "
                f"{when(checkpoint.ts)} says {checkpoint.head[:16]}…: the chain was rewritten and resealed"
            )
            break
    tail = records - last.count
    if tail > last.every + TAIL_SLACK:
        problems.append(
            f"{label} holds {tail:,} records past the last checkpoint, which is signed every {last.every:,} "
            "records: later checkpoints were removed"
        )
    return problems
