"""`agent-mesh discover` against the real filesystem server: its annotations become a starter policy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from policy import ToolCall, compile_policies, decide, load_config_text
from tests.support.targets import Targets

MESH = str(Path(sys.executable).with_name("agent-mesh"))


def test_discover_turns_the_filesystem_servers_annotations_into_a_starter_policy(
    targets: Targets, tmp_path: Path
) -> None:
    server = [str(targets.node20), str(targets.npm_bin("mcp-server-filesystem")), str(tmp_path)]
    done = subprocess.run(
        [MESH, "discover", "--server", "filesystem", "--", *server],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "filesystem.write_file  (" in done.stderr
    policies = compile_policies(load_config_text(done.stdout, "starter.yaml"))

    def action(tool: str) -> str:
        return decide(ToolCall("claude", "mcp_stdio", "filesystem", tool), policies).action.value

    assert action("read_text_file") == "allow"
    assert action("write_file") == "human_approval"
    assert action("move_file") == "human_approval"
