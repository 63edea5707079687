"""Property tests: decide() never raises and never allows where a matching deny rule comes first."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policy import ToolCall, compile_policies, decide, load_config_text
from policy.core.config import default_config_text
from policy.core.model import Action, HttpInfo

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
arguments = st.dictionaries(
    st.sampled_from(["path", "amount", "argv", "x", "namespace", ""]) | st.text(max_size=6), json_values, max_size=5
)
names = st.text(alphabet="abcdefgh._-*?[]/", min_size=0, max_size=16)

CONFIG = """
version: 1
policies:
  - name: guarded
    agent: "*"
    rules:
      - tools: ["fs.write_*", "*.delete*"]
        when: {args.path: {glob: "/etc/**"}}
        action: deny
      - tools: ["*"]
        when: {args.amount: {gt: 10}}
        action: deny
      - tools: ["*"]
        any: [{args.argv: {contains: "--force"}}, {args.namespace: {startswith: prod}}]
        action: deny
      - tools: ["*"]
        when: {args.path: {regex: "^/tmp/"}}
        action: allow
      - tools: ["*"]
        not: {args.x: {exists: true}}
        action: allow
      - tools: ["*"]
        action: human_approval
"""
PS = compile_policies(load_config_text(CONFIG, "prop.yaml"))
DENY_RULES = [r for r in PS.policies[0].rules if r.action is Action.DENY]


@settings(max_examples=400, deadline=None)
@given(agent=names, server=names, tool=names, args=arguments)
def test_decide_never_raises_and_never_allows_past_a_matching_deny(
    agent: str, server: str, tool: str, args: dict[str, Any]
) -> None:
    call = ToolCall(agent, "mcp_stdio", server, tool, args)
    decision = decide(call, PS)
    assert decision.action in set(Action)
    for rule in DENY_RULES:
        if not rule.matches_tool(call.full_name):
            continue
        try:
            holds = rule.predicate is None or rule.predicate(call)
        except Exception:
            holds = True  # an evaluation error must fail closed
        if holds:
            assert decision.action is Action.DENY, (rule.id, decision)
            break


@settings(max_examples=200, deadline=None)
@given(tool=names, args=arguments)
def test_an_evaluation_error_never_becomes_an_allow(tool: str, args: dict[str, Any]) -> None:
    call = ToolCall("a", "mcp_stdio", "fs", "write_file", {**args, "amount": "not a number"})
    assert decide(call, PS).action is Action.DENY


# --- paths are compared as paths: no spelling of a path outside /tmp passes a /tmp rule ---------------

PATHS = compile_policies(
    load_config_text(
        """
version: 1
policies:
  - name: paths
    rules:
      - {name: starts, tools: [t.starts], when: {args.path: {startswith: /tmp/}}, action: allow}
      - {name: globbed, tools: [t.globbed], when: {args.path: {glob: "/tmp/**"}}, action: allow}
      - {name: exact, tools: [t.exact], when: {args.path: {eq: /tmp/notes.txt}}, action: allow}
      - {name: listed, tools: [t.listed], when: {args.path: {in: [/tmp/notes.txt, /tmp/todo.txt]}}, action: allow}
      - {name: not-passwd, tools: [t.ne], when: {args.path: {ne: /etc/passwd}}, action: allow}
      - {name: uri, tools: [t.uri], when: {args.path: {startswith: "file:///tmp/"}}, action: allow}
""",
        "paths.yaml",
    )
)
segments = st.sampled_from(["etc", "passwd", "tmp", "home", "x", "notes.txt", "todo.txt", "..", ".", ""])


def _canonical(parts: list[str]) -> str:
    out: list[str] = []
    for p in parts:
        if p in ("", "."):
            continue
        if p == "..":
            if out:
                out.pop()
        else:
            out.append(p)
    return "/" + "/".join(out)


@st.composite
def spellings(draw: st.DrawFn) -> tuple[str, str]:
    """(a hostile spelling of a path, the path it names): `.`/`..`/empty segments, leading `//`, file URIs
    with percent-encoded bytes."""
    parts = draw(st.lists(segments, min_size=1, max_size=8))
    text = "/" * draw(st.integers(1, 3)) + "/".join(parts)
    if draw(st.booleans()):
        encoded = "".join(f"%{ord(c):02X}" if c in "." and draw(st.booleans()) else c for c in text)
        text = draw(st.sampled_from(["file://", "FILE://", "file://localhost"])) + "/" + encoded.lstrip("/")
    return text, _canonical(parts)


@settings(max_examples=500, deadline=None)
@given(spelling=spellings())
def test_every_path_operator_judges_a_spelling_as_the_path_it_names(spelling: tuple[str, str]) -> None:
    text, path = spelling
    inside = path.startswith("/tmp/")

    def allowed(tool: str) -> bool:
        return decide(ToolCall("a", "mcp_stdio", "t", tool, {"path": text}), PATHS).action is Action.ALLOW

    assert allowed("starts") is inside
    assert allowed("uri") is inside
    assert allowed("globbed") is inside
    assert allowed("exact") is (path == "/tmp/notes.txt")
    assert allowed("listed") is (path in ("/tmp/notes.txt", "/tmp/todo.txt"))
    assert allowed("ne") is (path != "/etc/passwd")


@settings(max_examples=200, deadline=None)
@given(name=st.text(alphabet="abc/._-*", max_size=40), pattern=st.text(alphabet="abc/.*?", min_size=1, max_size=10))
def test_tool_globs_match_on_re2_exactly_as_the_python_translation_does(name: str, pattern: str) -> None:
    from policy.core.conditions import compile_glob, compile_glob_linear

    for path_mode in (False, True):
        expected = compile_glob(pattern, path_mode=path_mode).match(name) is not None
        assert compile_glob_linear(pattern, path_mode=path_mode).match(name) is expected


# --- the built-in default cannot be talked into allowing a write -----------------------------------------

DEFAULT = compile_policies(load_config_text(default_config_text(), "default.yaml"))
READ_WORDS = ["read", "get", "list", "search", "find", "query", "describe", "show", "view", "resources/read"]
GENUINE_READ = re.compile(r"(?:read|get|list|search|find|query|describe|show|view)(?:[_\-A-Z]|$)")
hostile_text = st.lists(
    st.sampled_from([*READ_WORDS, ".", "/", ";", "_", "-", "%2E", "..", "?", "#", "x", "delete", " ", "GET"]),
    max_size=12,
).map("".join)


@settings(max_examples=400, deadline=None)
@given(
    method=st.sampled_from(["POST", "PUT", "PATCH", "DELETE", "get", "Get", "PROPFIND", "CONNECT"]),
    path=hostile_text,
    surface=st.sampled_from(["http", "openapi"]),
    host=st.sampled_from(["api", "api.example", "get.example", "read"]),
)
def test_the_default_never_allows_a_write_method_whatever_its_path(
    method: str, path: str, surface: str, host: str
) -> None:
    call = ToolCall("a", surface, host, f"{method} /{path}", {}, None, HttpInfo(method, host, "/" + path))  # type: ignore[arg-type]
    assert decide(call, DEFAULT).action is not Action.ALLOW


@settings(max_examples=400, deadline=None)
@given(
    first=st.sampled_from(["delete", "write", "create", "run", "exec", "x", "", "readwrite", "getaway", "GET"]),
    rest=hostile_text,
    surface=st.sampled_from(["mcp_stdio", "mcp_http", "cli"]),
    server=st.sampled_from(["fs", "get", "evil.example", ""]),
)
def test_the_default_reads_an_mcp_or_cli_tool_only_by_its_first_word(
    first: str, rest: str, surface: str, server: str
) -> None:
    tool = first + rest
    if GENUINE_READ.match(tool) or tool in ("resources/read", "prompts/get", "completion/complete"):
        return  # a genuine read name: the decision table covers those
    call = ToolCall("a", surface, server, tool, {})  # type: ignore[arg-type]
    assert decide(call, DEFAULT).action is not Action.ALLOW


@settings(max_examples=300, deadline=None)
@given(
    spelling=spellings(),
    pid=st.sampled_from(["self", "1", "thread-self", "self/task/7"]),
    climb=st.integers(0, 3),
)
def test_a_path_through_proc_root_names_the_same_file(spelling: tuple[str, str], pid: str, climb: int) -> None:
    """`/proc/PID/root` is the root (`..` after it stays there): prefixed to any spelling, the judgement stays."""
    text, path = spelling
    if text.lower().startswith("file:"):
        return
    text = f"/proc/{pid}/root" + "/.." * climb + text

    def allowed(tool: str) -> bool:
        return decide(ToolCall("a", "mcp_stdio", "t", tool, {"path": text}), PATHS).action is Action.ALLOW

    assert allowed("starts") is path.startswith("/tmp/")
    assert allowed("globbed") is path.startswith("/tmp/")
    assert allowed("ne") is (path != "/etc/passwd")


@pytest.mark.parametrize("text", ["/proc/self/cwd/x", "/tmp/../proc/1/cwd/tmp/x", "/dev/fd/3/x", "/proc/self/fd/4"])
def test_a_path_through_another_process_s_cwd_or_descriptors_is_under_no_folder(text: str) -> None:
    assert decide(ToolCall("a", "mcp_stdio", "t", "starts", {"path": text}), PATHS).action is not Action.ALLOW
