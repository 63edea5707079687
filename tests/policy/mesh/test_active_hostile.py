"""The registry every command and mcpwrap read at start: a FIFO or a link to /dev/zero in its place is an
error at once (a start that hangs or fills memory is no start), never a fall back to another policy."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from policy.mesh.active import RegistryError, registry_path, resolve


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "huge"])
def test_a_registry_that_is_no_small_regular_file_is_an_error_at_once(tmp_path: Path, kind: str) -> None:
    env = {"HOME": str(tmp_path / "home"), "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    path = Path(registry_path(env))
    path.parent.mkdir(parents=True)
    if kind == "fifo":
        os.mkfifo(path, 0o600)
    elif kind == "dev-zero":
        path.symlink_to("/dev/zero")
    else:
        with open(path, "wb") as f:
            f.truncate(10 * 1024 * 1024)
        path.chmod(0o600)
    errors: list[BaseException] = []

    def read() -> None:
        try:
            resolve(None, env)
        except BaseException as exc:
            errors.append(exc)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(20)
    if reader.is_alive():
        with open(path, "w"):  # unblock it, then fail
            pass
        pytest.fail("reading the registry blocked")
    assert len(errors) == 1
    assert isinstance(errors[0], RegistryError)
