"""A `{$file: PATH}` secret whose file is not a file: a FIFO would block the reader (the proxy's start, the
notifier, a hot reload re-reading a secret) until someone writes to it, and `/dev/zero` never ends. Each is
refused at once as not a regular file, by the surface that reads it."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from policy.core.secrets import SecretMissing, SecretRef


def ref(path: Path) -> SecretRef:
    return SecretRef("file", str(path), file="agent-mesh.yaml", line=3, path="agents.claude.token", base_dir="/")


@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
def test_a_secret_file_that_is_no_regular_file_is_refused_without_waiting(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "token"
    if kind == "fifo":
        os.mkfifo(path, 0o600)
    else:
        path.symlink_to("/dev/zero")
    errors: list[BaseException] = []

    def read() -> None:
        try:
            ref(path).resolve()
        except BaseException as exc:
            errors.append(exc)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(20)
    if reader.is_alive():  # unblock the reader so the test process can end, then fail
        with open(path, "w"):
            pass
        pytest.fail("reading the secret blocked on the FIFO")
    assert len(errors) == 1
    assert isinstance(errors[0], SecretMissing)
    assert "not a regular file" in str(errors[0])
