"""The own-user recipe runs offline, checks its own story and leaves nothing behind."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from tests.support.recipes import load_recipe


def leftovers() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("own-user-*")}


@pytest.mark.skipif(os.geteuid() != 0, reason="plays the mesh's user and the agent's user: needs root")
def test_as_root_the_agent_user_is_kept_out_until_the_state_dir_is_opened(capsys: pytest.CaptureFixture[str]) -> None:
    before = leftovers()
    assert load_recipe("own_user").main() == 0
    out = capsys.readouterr().out
    assert "doctor --as-user nobody: exit 0, ok=True, mesh runs as its own user: True" in out
    assert "the mesh refuses to start: ...Run: chmod 700 " in out
    assert "opened again, doctor --as-user nobody: exit 1, reaches ['operator token', 'state dir']" in out
    assert leftovers() == before


def test_as_the_mesh_s_own_user_the_agent_reaches_everything(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    module = load_recipe("own_user")
    monkeypatch.setattr(module, "AGENT", "no-such-user-for-this-recipe")  # the other branch, also as root
    assert module.main() == 0
    out = capsys.readouterr().out
    assert "the user that owns the state: exit 1" in out
    assert "after the fix, the mesh starts again" in out
