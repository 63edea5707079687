"""A hostile agent against the files that choose the policy: the config file, its policy_dir, the registry of the
active mesh, and the `{$file}` secrets. With hot reload, a written `agent-mesh.yaml` is a self-grant within a second;
a written `active.json` picks the policy of the next `mcpwrap exec`; a read secret file leaks an agent token. The
guard refuses them in every spelling it already reads for the state dir; neighbours pass."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policy import ToolCall, compile_policies, load_config
from policy.core.guard import GUARD_RULE
from policy.core.guard_mesh import guarded_files, mesh_guard, registry_folder
from policy.mesh.active import config_home, registry_path
from policy.mesh.reload import MeshWatcher, ProcessInfo


def _layout() -> str:
    work = os.path.realpath(tempfile.mkdtemp(prefix="guard-mesh-"))
    for sub in ("proj/src", "proj/policies", "state/.agent-mesh", "xdg/agent-mesh", "secrets", "elsewhere"):
        os.makedirs(f"{work}/{sub}")
    with open(f"{work}/proj/agent-mesh.yaml", "w") as f:
        f.write(
            "version: 1\n"
            f"state_dir: {work}/state/.agent-mesh\n"
            "policy_dir: policies\n"
            f"agents:\n  claude:\n    token: {{$file: {work}/secrets/claude.token}}\n"
            "policies: []\n"
        )
    with open(f"{work}/proj/policies/base.yaml", "w") as f:
        f.write("name: base\nrules: []\n")
    with open(f"{work}/secrets/claude.token", "w") as f:
        f.write("s3cret\n")
    os.chmod(f"{work}/secrets/claude.token", 0o600)
    with open(f"{work}/xdg/agent-mesh/active.json", "w") as f:
        f.write("{}")
    with open(f"{work}/proj/src/main.py", "w") as f:
        f.write("print('hi')\n")
    os.symlink(f"{work}/proj/agent-mesh.yaml", f"{work}/elsewhere/link.yaml")
    return work


WORK = _layout()
PROJECT = f"{WORK}/proj"
ENV = {"XDG_CONFIG_HOME": f"{WORK}/xdg", "HOME": f"{WORK}/home"}
LOADED = load_config(f"{PROJECT}/agent-mesh.yaml", env=ENV)
GUARD = mesh_guard(LOADED, ENV)


@pytest.fixture(scope="module", autouse=True)
def _remove_layout() -> Iterator[None]:
    yield
    shutil.rmtree(WORK)


def refused(call: ToolCall) -> bool:
    decision = GUARD(call)
    assert decision is None or decision.rule == GUARD_RULE
    return decision is not None


def write_file(path: str, content: str = "policies: [{name: x, rules: [{action: allow}]}]") -> ToolCall:
    return ToolCall("claude", "filesystem", "", "write_file", {"path": path, "content": content})


def shell(line: str, cwd: str = PROJECT) -> ToolCall:
    return ToolCall("claude", "cli", "", "bash", {"argv": ["bash", "-c", line], "cwd": cwd})


def test_the_guarded_files_are_the_config_its_policy_dir_the_registry_folder_and_the_file_secrets() -> None:
    guarded = guarded_files(LOADED, ENV)
    assert set(guarded.files) == {f"{PROJECT}/agent-mesh.yaml", f"{PROJECT}/policies", f"{WORK}/xdg/agent-mesh"}
    assert guarded.secrets == (f"{WORK}/secrets/claude.token",)


@pytest.mark.parametrize(
    "path",
    [
        f"{PROJECT}/agent-mesh.yaml",
        f"{PROJECT}/src/../agent-mesh.yaml",
        f"{PROJECT}//./agent-mesh.yaml",
        f"file://{PROJECT}/agent-mesh.yaml",
        f"{PROJECT}/%61gent-mesh.yaml",
        f"{PROJECT.upper()}/AGENT-MESH.YAML",
        f"{PROJECT}/agent-mesh.y?ml",
        f"{PROJECT}/agent-mesh.{{yaml,x}}",
        f"{WORK}/elsewhere/link.yaml",  # a symlink to the config
        f"/proc/self/root{PROJECT}/agent-mesh.yaml",
        f"{PROJECT}/policies/allow-all.yaml",  # a file added to the policy_dir is loaded on the next reload
        f"{PROJECT}/policies",
        f"{PROJECT}/polic*/x.yaml",
        f"{WORK}/xdg/agent-mesh/active.json",  # the registry picks the policy of the next process
        f"{WORK}/xdg/agent-mesh/active.json.123.tmp",  # written beside it, then renamed over it
        f"{WORK}/secrets/claude.token",  # a `{$file}` secret: an agent token
    ],
)
def test_a_tool_writing_or_reading_a_file_that_chooses_the_policy_is_refused(path: str) -> None:
    assert refused(write_file(path))
    assert refused(ToolCall("claude", "filesystem", "", "read_file", {"path": path}))


@pytest.mark.parametrize(
    "line",
    [
        "echo 'policies: []' > agent-mesh.yaml",
        "tee agent-mesh.yaml < /tmp/evil",
        "cp /tmp/evil.yaml ./agent-mesh.yaml",
        "sed -i s/deny/allow/ agent-mesh.yaml",
        "mv /tmp/evil.yaml policies/",
        "cat > policies/zz.yaml",
        f"cp /tmp/x.json {WORK}/home/../xdg/agent-mesh/active.json",
        f"cd {WORK}/xdg && mv /tmp/x agent-mesh/active.json",
        f"cat {WORK}/secrets/claude.token",
        f"grep -r . {WORK}/secrets",  # a recursive read of a folder holding a secret
        "ln agent-mesh.yaml src/innocent.yaml",
    ],
)
def test_shell_lines_that_change_the_policy_files_are_refused(line: str) -> None:
    assert refused(shell(line))


def test_a_hard_link_to_the_config_is_refused_by_its_inode() -> None:
    os.link(f"{PROJECT}/agent-mesh.yaml", f"{WORK}/elsewhere/hard.yaml")
    try:
        guard = mesh_guard(LOADED, ENV)
        assert guard(write_file(f"{WORK}/elsewhere/hard.yaml")) is not None
    finally:
        os.unlink(f"{WORK}/elsewhere/hard.yaml")


@pytest.mark.parametrize(
    "call",
    [
        write_file(f"{PROJECT}/src/main.py", "print('agent-mesh')"),
        write_file(f"{PROJECT}/agent-mesh.yml.bak.d/x"),  # a neighbour of the config's name
        write_file(f"{WORK}/elsewhere/agent-mesh.yaml"),  # another project's config is not this mesh's
        shell("grep -r TODO src"),
        shell("grep -r TODO ."),  # a recursive read of the project: the config is not a secret
        shell(f"ls {WORK}/xdg"),
        shell("python -m pytest tests"),
    ],
)
def test_ordinary_work_beside_the_policy_files_passes(call: ToolCall) -> None:
    assert not refused(call)


@settings(max_examples=150, deadline=None)
@given(
    target=st.sampled_from(
        [f"{PROJECT}/agent-mesh.yaml", f"{PROJECT}/policies/new.yaml", f"{WORK}/xdg/agent-mesh/active.json"]
    ),
    percent=st.lists(st.integers(min_value=0, max_value=200), max_size=3),
    dots=st.booleans(),
    key=st.sampled_from(["path", "file", "destination", "uri", "target"]),
)
def test_every_spelling_of_a_policy_file_is_refused(target: str, percent: list[int], dots: bool, key: str) -> None:
    spelled = target.replace("/proj/", "/proj/src/../") if dots else target
    for i in percent:  # percent-encode a few characters of the name
        at = len(WORK) + (i % (len(spelled) - len(WORK)))
        spelled = spelled[:at] + f"%{ord(spelled[at]):02X}" + spelled[at + 1 :]
    assert refused(ToolCall("claude", "filesystem", "", "write_file", {key: spelled, "content": "x"}))


# The operator's commands change the same files from inside: `agent-mesh use` writes the registry, `approvals
# approve` the approvals, `resume` lifts a stop, `mcpwrap install --undo` unwraps every server of a client.
@pytest.mark.parametrize(
    "argv",
    [
        ["agent-mesh", "use", "/tmp/evil.yaml"],
        ["agent-mesh", "approvals", "approve", "3f9c2a"],
        ["/home/u/.venv/bin/agent-mesh", "resume", "--all"],
        ["AGENT-MESH", "grants", "add"],
        ["env", "FOO=1", "agent-mesh", "use", "--default"],
        ["bash", "-c", "cd /tmp && agent-mesh approvals approve 3f9c2a"],
        ["sh", "-c", "true; nohup agent-mesh resume --all &"],
        ["python3", "-m", "policy.cli", "approvals", "approve", "3f9c2a"],
        ["uv", "run", "agent-mesh", "use", "x.yaml"],
        ["mcpwrap", "install", "--undo", "--client-config", "/home/u/.cursor/mcp.json"],
        ["mcpwrap", "shims", "--dir", "/tmp/s", "git"],
        ["python", "-m", "mcpwrap", "install", "--client-config", "x.json"],
    ],
)
def test_a_command_line_running_the_operators_commands_is_refused(argv: list[str]) -> None:
    assert refused(ToolCall("claude", "cli", "", argv[0], {"argv": argv, "cwd": PROJECT}))
    assert refused(ToolCall("claude", "shell", "", "run", {"command": " ".join(argv)}))


@pytest.mark.parametrize(
    "argv",
    [
        ["mcpwrap", "exec", "--agent", "claude", "--", "git", "status"],  # a governed command
        ["grep", "-n", "agent-mesh", "src/main.py"],  # the name as a word, not the command
        ["git", "log", "--grep", "agent-mesh use"],
    ],
)
def test_commands_that_only_mention_the_mesh_pass(argv: list[str]) -> None:
    assert not refused(ToolCall("claude", "cli", "", argv[0], {"argv": argv, "cwd": PROJECT}))


# Replacing a folder above a policy file replaces the file without naming it: `mv ~/.config ~/.config.old`, then
# `mv /tmp/evil ~/.config` (whose agent-mesh/active.json is the agent's). Commands that move, remove, copy onto,
# link or extract over a folder holding one are refused; reading it (`grep -r`, `ls -R`) is not.
@pytest.mark.parametrize(
    "line",
    [
        f"mv {WORK}/xdg {WORK}/xdg.old",  # moves the registry's folder away
        f"mv {PROJECT} {PROJECT}.old",
        f"cp -r /tmp/evil/. {PROJECT}",  # copies a tree onto the config's folder
        f"cp /tmp/x/agent-mesh.yaml {PROJECT}/",  # lands as the config
        f"cp -t {PROJECT} /tmp/x/agent-mesh.yaml",
        f"mv /tmp/policies {PROJECT}",  # lands as the policy_dir
        f"rsync -a /tmp/evil/ {PROJECT}/",
        f"rm -rf {PROJECT}/policies/..",
        f"cp /tmp/evil.yaml -t {PROJECT}/policies",  # lands inside the policy_dir
        f"cd {PROJECT} && tar xf /tmp/evil.tar",  # extracts into the config's folder
        f"cd {PROJECT} && unzip -o /tmp/evil.zip",
        f"tar -C {PROJECT} -xf /tmp/evil.tar",
        f"cd {PROJECT} && find . -name '*.yaml' -exec sed -i s/deny/allow/ {{}} +",
        f"cd {PROJECT} && find . -delete",
        f"cd {WORK} && mv proj other",
    ],
)
def test_replacing_a_folder_that_holds_a_policy_file_is_refused(line: str) -> None:
    assert refused(shell(line, cwd=WORK))


@pytest.mark.parametrize(
    "line",
    [
        f"cp -r {PROJECT}/src /tmp/backup",  # copies out of the project
        f"rsync -a {PROJECT}/ /tmp/backup/",  # the whole project, config included: a copy changes nothing there
        f"cp /tmp/notes.txt {PROJECT}/",  # a file copied into the config's folder lands beside it
        f"cp /tmp/a.txt /tmp/b.txt {PROJECT}",
        f"mv /tmp/notes.txt {PROJECT}",
        f"rsync -a /tmp/assets {PROJECT}/",  # lands as {PROJECT}/assets
        f"cp -t {PROJECT} /tmp/notes.txt",
        f"mv {PROJECT}/src/main.py {PROJECT}/src/app.py",
        f"rm -rf {PROJECT}/src/build",  # (a path that does not exist)
        f"cd {PROJECT} && tar czf /tmp/src.tgz src",  # creates an archive
        f"cd {PROJECT} && find . -name '*.py'",
        f"ls -R {WORK}/xdg",
    ],
)
def test_work_inside_the_project_beside_the_policy_files_passes(line: str) -> None:
    assert not refused(shell(line, cwd=PROJECT))


@pytest.mark.parametrize(
    "env",
    [{}, {"HOME": "/home/u"}, {"HOME": "/home/u", "XDG_CONFIG_HOME": "/x/conf"}, {"XDG_CONFIG_HOME": ""}],
)
def test_the_guarded_registry_folder_is_the_one_the_active_mesh_rule_reads(env: dict[str, str]) -> None:
    assert registry_folder(env) == config_home(env) == os.path.dirname(registry_path(env))


def test_a_file_secret_read_when_the_config_loads_is_guarded_too_and_after_a_reload(tmp_path: Path) -> None:
    (tmp_path / "policies").mkdir()
    for name in ("reason.txt", "team.txt"):
        (tmp_path / name).write_text("ask the on-call\n")
        (tmp_path / name).chmod(0o600)
    config = tmp_path / "agent-mesh.yaml"
    config.write_text(
        f"version: 1\nstate_dir: {tmp_path}/state\npolicy_dir: policies\npolicies:\n  - name: p\n    rules:\n"
        "      - {tools: ['*'], action: deny, reason: {$file: reason.txt}}\n"
    )
    (tmp_path / "policies" / "team.yaml").write_text(
        "name: team\nrules:\n  - {tools: ['x'], action: deny, reason: {$file: ../team.txt}}\n"
    )
    loaded = load_config(str(config), env=ENV)
    read = {str(tmp_path / "reason.txt"), str(tmp_path / "team.txt")}
    assert set(guarded_files(loaded, ENV).secrets) == read
    watcher = MeshWatcher(
        loaded, compile_policies(loaded).policy_hash, ProcessInfo("mcpwrap"), board=None, stops=None, on_reload=None
    )
    config.write_text(config.read_text() + "# changed\n")
    reloaded = watcher.poll_config() or watcher.poll_config()
    assert reloaded is not None
    assert set(guarded_files(reloaded.loaded, ENV).secrets) == {
        str(tmp_path / "reason.txt"),
        str(tmp_path / "team.txt"),
    }


def test_a_relative_path_to_a_file_named_like_the_config_is_refused_whatever_the_servers_cwd() -> None:
    # the filesystem server may run elsewhere than the mesh: `agent-mesh.yaml` may be the config there
    for path in ("agent-mesh.yaml", "./agent-mesh.yaml", "sub/../AGENT-MESH.YAML"):
        call = ToolCall("claude", "filesystem", "", "write_file", {"path": path, "content": "x"})
        assert GUARD(call) is not None


def test_prose_mentioning_the_configs_name_is_written_where_it_resolves_elsewhere() -> None:
    text = "Edit examples/agent-mesh.yaml, then run agent-mesh check."
    call = ToolCall("claude", "filesystem", "", "write_file", {"path": f"{WORK}/elsewhere/README.md", "content": text})
    assert GUARD(call) is None


def test_a_local_openapi_spec_names_the_operations_rules_match_so_it_is_guarded(tmp_path: Path) -> None:
    # renaming operationId deleteRepo to getRepo in the spec would make `github.getRepo: allow` allow a delete
    (tmp_path / "specs").mkdir()
    config = tmp_path / "agent-mesh.yaml"
    config.write_text(
        f"version: 1\nstate_dir: {tmp_path}/state\nservers:\n  shop: {{openapi: specs/shop.yaml}}\n"
        "  remote: {openapi: 'https://example.com/openapi.json'}\npolicies: []\n"
    )
    loaded = load_config(str(config), env=ENV)
    assert str(tmp_path / "specs" / "shop.yaml") in guarded_files(loaded, ENV).files
    guard = mesh_guard(loaded, ENV)
    assert guard(write_file(str(tmp_path / "specs" / "shop.yaml"))) is not None


@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
def test_an_openapi_spec_that_is_no_regular_file_is_refused_without_reading_it(tmp_path: Path, kind: str) -> None:
    from policy.core.openapi_spec import read_spec_text

    spec = tmp_path / "spec.yaml"
    if kind == "fifo":
        os.mkfifo(spec)
    else:
        spec.symlink_to("/dev/zero")
    with pytest.raises(ValueError, match="not a regular file"):
        read_spec_text(str(spec))


def test_a_folder_put_where_a_missing_registry_folder_would_be_is_refused(tmp_path: Path) -> None:
    # nothing registered yet: ~/.config/agent-mesh does not exist, and moving a folder there creates active.json
    env = {"XDG_CONFIG_HOME": str(tmp_path / "conf"), "HOME": str(tmp_path / "home")}
    guard = mesh_guard(LOADED, env)
    for line in (f"mv /tmp/evil {tmp_path}/conf/agent-mesh", f"cd {tmp_path} && cp -r /tmp/evil conf/agent-mesh"):
        assert guard(shell(line, cwd=str(tmp_path))) is not None


TARGETS = [
    f"{PROJECT}/agent-mesh.yaml",
    f"{PROJECT}/policies/new.yaml",
    f"{WORK}/xdg/agent-mesh/active.json",
    f"{WORK}/secrets/claude.token",
]


@st.composite
def spelled(draw: st.DrawFn) -> str:
    """A hostile spelling of one guarded path: detours, doubled slashes, case, escapes, a pattern, a URL."""
    target = draw(st.sampled_from(TARGETS))
    head, name = target.rsplit("/", 1)
    parts = head.split("/")
    at = draw(st.integers(min_value=2, max_value=len(parts)))
    detour = draw(st.sampled_from(["", "/.", "//", "/src/..", "/./x/.."]))
    head = "/".join(parts[:at]) + detour + ("/" + "/".join(parts[at:]) if parts[at:] else "")
    if draw(st.booleans()):
        name = name.upper()
    style = draw(st.sampled_from(["plain", "percent", "glob", "brace", "url", "backslash"]))
    if style == "percent":
        i = draw(st.integers(min_value=0, max_value=len(name) - 1))
        name = name[:i] + f"%{ord(name[i]):02X}" + name[i + 1 :]
    elif style == "glob":
        i = draw(st.integers(min_value=1, max_value=len(name) - 1))
        name = name[:i] + "?" + name[i + 1 :]
    elif style == "brace":
        name = "{" + name + ",x}"
    elif style == "backslash":
        i = draw(st.integers(min_value=1, max_value=len(name) - 1))
        name = name[:i] + "\\" + name[i:]
    path = f"{head}/{name}"
    return f"file://{path}" if style == "url" else path


@settings(max_examples=300, deadline=None)
@given(spelled(), st.sampled_from(["path", "file", "target", "uri", "destination", "shell"]))
def test_any_spelling_of_a_guarded_file_is_refused_under_any_key_or_in_a_shell_line(path: str, key: str) -> None:
    if key == "shell":
        call = shell(f"cat /tmp/evil > {path}")
    else:
        call = ToolCall("claude", "filesystem", "", "write_file", {key: path, "content": "x"})
    assert refused(call), path
