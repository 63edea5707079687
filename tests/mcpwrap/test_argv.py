"""Naming command lines as tools: global options never pose as the subcommand."""

from __future__ import annotations

import pytest

from mcpwrap.argv import tool_of


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["git", "push", "--force"], ("git", "push")),
        (["git", "-c", "x=y", "push"], ("git", "push")),
        (["git", "-C", "dir", "push"], ("git", "push")),
        (["git", "--git-dir=.git", "--no-pager", "log"], ("git", "log")),
        (["git", "--git-dir", ".git", "status"], ("git", "status")),
        (["/usr/bin/git", "-C", "/repo", "-c", "a=b", "commit", "-m", "x"], ("git", "commit")),
        (["git", "--version"], ("", "git")),
        (["git"], ("", "git")),
        (["kubectl", "-n", "prod", "delete", "pod", "web"], ("kubectl", "delete")),
        (["kubectl", "--context", "prod", "--namespace=x", "get", "pods"], ("kubectl", "get")),
        (["kubectl", "-nprod", "apply", "-f", "x.yaml"], ("kubectl", "apply")),
        (["docker", "--context", "x", "rm", "c1"], ("docker", "rm")),
        (["docker", "-H", "tcp://h:2375", "--debug", "run", "img"], ("docker", "run")),
        (["podman", "--url", "unix:///x", "rmi", "img"], ("podman", "rmi")),
        (["helm", "--kube-context", "prod", "uninstall", "app"], ("helm", "uninstall")),
        (["npm", "--prefix", "dir", "publish"], ("npm", "publish")),
        (["aws", "--profile", "p", "--region", "eu-west-1", "s3", "rm", "s3://b/k"], ("aws", "s3")),
        (["gh", "-R", "o/r", "pr", "merge"], ("gh", "pr")),
        (["terraform", "-chdir=infra", "destroy"], ("terraform", "destroy")),
        (["git", "--", "push"], ("git", "push")),
        (["rm", "-rf", "/tmp/x"], ("", "rm")),
        (["curl", "https://example.com"], ("", "curl")),
        (["./scripts/deploy.sh", "prod"], ("", "deploy.sh")),
    ],
)
def test_a_command_line_is_named_bin_dot_subcommand(argv: list[str], expected: tuple[str, str]) -> None:
    assert tool_of(argv) == expected


@pytest.mark.parametrize("argv", [[], [""], ["/"]])
def test_an_empty_command_is_refused_with_a_precise_message(argv: list[str]) -> None:
    with pytest.raises(ValueError, match="no command given"):
        tool_of(argv)
