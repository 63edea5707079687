"""Shims: one executable per binary naming the real one, in a directory marked as shims."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mcpwrap.execute import SHIM_MARKER, resolve_binary
from mcpwrap.shims import shim_script, write_shims


def _fake_bin(folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("#!/bin/sh\necho real\n")
    path.chmod(0o755)
    return path


def test_a_shim_execs_mcpwrap_with_the_real_binary_and_passes_every_argument() -> None:
    text = shim_script("git", "/usr/bin/git", ["/venv/bin/mcpwrap", "exec", "--agent", "a b"])
    assert text.startswith("#!/bin/sh\n")
    assert text.endswith("""exec /venv/bin/mcpwrap exec --agent 'a b' -- /usr/bin/git "$@"\n""")


def test_shims_name_the_real_binary_found_outside_their_own_directory(tmp_path: Path) -> None:
    real = _fake_bin(tmp_path / "bin", "tool")
    shims = tmp_path / "shims"
    _fake_bin(shims, "tool")  # an older shim in the target dir must not be taken for the real one
    path = os.pathsep.join([str(shims), str(tmp_path / "bin")])
    (written,) = write_shims(shims, ["tool"], ["mcpwrap", "exec"], path=path)
    assert f"-- {real} " in written.read_text()
    assert os.access(written, os.X_OK)
    assert (shims / SHIM_MARKER).exists()


def test_resolving_a_binary_skips_shim_directories(tmp_path: Path) -> None:
    shims = tmp_path / "shims"
    _fake_bin(shims, "tool")
    (shims / SHIM_MARKER).write_text("")
    real = _fake_bin(tmp_path / "bin", "tool")
    assert resolve_binary("tool", os.pathsep.join([str(shims), str(tmp_path / "bin")])) == str(real)


@pytest.mark.parametrize(("name", "message"), [("nope-not-here", "not found on PATH"), ("a/b", "not a path")])
def test_a_shim_for_a_missing_binary_or_a_path_is_refused(tmp_path: Path, name: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        write_shims(tmp_path / "s", [name], ["mcpwrap"], path=str(tmp_path))
