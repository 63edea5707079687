"""`traces export`: a bundle of the chain's records since a time, their checkpoints and the public key, that
scripts/verify_bundle.py checks offline with nothing of the mesh installed.

A bundle is a folder: `records.jsonl` (the chain's lines from the first record at or after `since` to the
end, unchanged), `checkpoints.jsonl` (every checkpoint from the one just before the first record on),
`trace-key.pub` and `bundle.json` (`format`, `first`: the chain position of the first record, `records`,
`since`, `exported_at`). The export signs a checkpoint of the head first, under the same hold of the chain
lock as the read, so the bundle ends exactly on a signed checkpoint.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from policy.store.db import DB_NAME
from policy.trace.append import chain_lock, trace_files
from policy.trace.checkpoint import CHECKPOINTS_NAME, KEY_NAME, PUBLIC_NAME, read_checkpoints
from policy.trace.signer import Checkpointer

FORMAT = "agent-mesh-trace-bundle/1"
RECORDS_NAME = "records.jsonl"
MANIFEST_NAME = "bundle.json"


@dataclass(frozen=True, slots=True)
class Exported:
    """What an export wrote: where, from which chain position, how many records and checkpoints."""

    out: Path
    first: int
    records: int
    checkpoints: int
    signed: bool  # False when this user cannot read the private key: the bundle may end past a checkpoint


def export_bundle(state_dir: str | Path, out: str | Path, *, since: float | None) -> Exported:
    """Write the bundle into `out` (made; must be missing or empty). Raises ValueError when there is nothing
    to export or `out` is in the way, OSError when the state cannot be read."""
    folder, target = Path(state_dir), Path(out)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ValueError(f"{target} exists and is not an empty folder")
    if not (folder / PUBLIC_NAME).exists() and not (folder / KEY_NAME).exists():
        raise ValueError(f"{folder} has no trace key: nothing was ever checkpointed there")
    files = trace_files(folder)
    db = folder / DB_NAME
    signer = Checkpointer(folder, jsonl=bool(files), table=db.exists())
    target.mkdir(parents=True, exist_ok=True)
    records_path = target / RECORDS_NAME
    with chain_lock(folder):
        signed = True
        try:
            signer.sign_now()
        except PermissionError:
            signed = False  # an auditor's copy without the private key: export what is signed already
        first, count = 0, 0
        with records_path.open("w", encoding="utf-8") as sink:
            for position, line in enumerate(_chain_lines(folder), start=1):
                if not first and (since is None or _ts(line) >= since):
                    first = position
                if first:
                    sink.write(line + "\n")
                    count += 1
        entries, _ = read_checkpoints(folder / CHECKPOINTS_NAME)
    if not count:
        shutil.rmtree(target)
        raise ValueError("no trace records at or after that time")
    kept = [line for checkpoint, line in entries if checkpoint.count >= first - 1]
    (target / CHECKPOINTS_NAME).write_text("".join(line + "\n" for line in kept), encoding="ascii")
    shutil.copyfile(folder / PUBLIC_NAME, target / PUBLIC_NAME)
    manifest = {"format": FORMAT, "first": first, "records": count, "since": since, "exported_at": time.time()}
    (target / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return Exported(target, first, count, len(kept), signed)


def _chain_lines(folder: Path) -> Iterator[str]:
    """The chain's lines in order: from the files when there are any, else from the table's sealed records."""
    files = trace_files(folder)
    if files:
        for path in files:
            with path.open("rb") as f:
                for raw in f:
                    if raw.endswith(b"\n"):  # a torn last line was never a record
                        yield raw[:-1].decode("utf-8", errors="replace")
        return
    db = folder / DB_NAME
    if db.exists():
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            for (line,) in conn.execute("SELECT record FROM traces ORDER BY seq"):
                yield str(line)


def _ts(line: str) -> float:
    try:
        value = json.loads(line).get("ts")
    except (ValueError, AttributeError):
        return 0.0
    return float(value) if isinstance(value, int | float) else 0.0
