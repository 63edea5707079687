"""The policy in the README's story decides as the story says: reads pass, a force-push is refused whoever
asks, a write outside /tmp and a new issue (over MCP or REST) wait for a human."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from policy.core.config import load_config_text
from policy.core.engine import PolicySet, compile_policies, decide
from policy.core.model import ToolCall

README = Path(__file__).resolve().parents[2] / "README.md"
SECRETS = {"CLAUDE_MESH_TOKEN": "claude-token-for-the-test", "PYBOT_MESH_TOKEN": "pybot-token-for-the-test"}


def readme_policy(tmp_path: Path) -> PolicySet:
    text = README.read_text("utf-8")
    start = text.index("```yaml\n") + len("```yaml\n")
    yaml_text = text[start : text.index("```\n", start)]
    return compile_policies(load_config_text(yaml_text, "README.md", str(tmp_path), SECRETS))


@pytest.mark.parametrize(
    ("agent", "surface", "tool", "args", "action"),
    [
        ("claude", "mcp_stdio", "filesystem.read_text_file", {"path": "/srv/app/main.py"}, "allow"),
        ("pybot", "openapi", "github.repos/get", {"owner": "octo", "repo": "site"}, "allow"),
        ("claude", "cli", "git.push", {"argv": ["git", "push", "-f"], "force": True}, "deny"),
        ("pybot", "cli", "git.push", {"argv": ["git", "push", "--force"], "force": True}, "deny"),
        ("claude", "mcp_stdio", "filesystem.write_file", {"path": "/tmp/notes.txt"}, "allow"),
        ("claude", "mcp_stdio", "filesystem.write_file", {"path": "/srv/app/main.py"}, "human_approval"),
        ("claude", "mcp_stdio", "github.create_issue", {"title": "a bug"}, "human_approval"),
        ("pybot", "openapi", "github.issues/create", {"title": "a bug"}, "human_approval"),
    ],
)
def test_the_readme_policy_decides_as_the_story_says(
    tmp_path: Path, agent: str, surface: Any, tool: str, args: dict[str, Any], action: str
) -> None:
    server, _, name = tool.partition(".")
    decision = decide(ToolCall(agent, surface, server, name, args), readme_policy(tmp_path))
    assert decision.action == action, decision


def test_the_refusal_the_readme_shows_is_what_the_agent_reads(tmp_path: Path) -> None:
    text = README.read_text("utf-8")
    start = text.index("```yaml\n") + len("```yaml\n")
    (tmp_path / "agent-mesh.yaml").write_text(text[start : text.index("```\n", start)], "utf-8")
    block = text[text.index("```console\n$ mcpwrap exec") :]
    command, shown = block.split("\n")[1:3]
    argv = shlex.split(command.removeprefix("$ "))
    argv[0] = str(Path(sys.executable).with_name(argv[0]))
    env = {**os.environ, **SECRETS}
    ran = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert ran.returncode == 126
    assert ran.stderr.split(", trace ")[0] == shown.split(", trace ")[0]


def test_the_docs_home_page_tells_the_readme_story_with_the_same_policy() -> None:
    def first_yaml(text: str) -> str:
        start = text.index("\n", text.index("```yaml")) + 1
        return text[start : text.index("```\n", start)]

    home = (README.parent / "docs" / "index.md").read_text("utf-8")
    assert first_yaml(home) == first_yaml(README.read_text("utf-8"))
