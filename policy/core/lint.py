"""`agent-mesh check` as a linter: every error and warning of a config, each with a stable code and file:line.

Errors (the config is refused, exit 2) come from loading (`problems_of(ConfigError)`: every pydantic error,
every bad policy file) and from compiling each rule on its own (`compile_problems`), so one run shows all.
Warnings (the config loads, but says something it likely does not mean) come from `warnings`:

- W001 unknown-agent: a policy for an agent `agents:` does not list (only when `agents:` lists any);
- W002 unknown-tool: a tool name or glob whose server part is literal names no known server, or none of the
  known tools of its server (policy/core/catalogue.py); globs with a wildcard in the server part are generic
  and never warned about;
- W003 shadowed-rule: a rule an earlier rule of the same policy, with no condition, always answers first;
- W004 agent-without-token: an agent with no token next to agents with one (the proxy lets anyone claim it);
- W005 unreadable-spec: a server's local OpenAPI spec that cannot be read for its tool names.

Pure: reads nothing but the catalogue it is handed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from policy.core.catalogue import ToolCatalogue
from policy.core.conditions import compile_glob_linear, is_glob
from policy.core.config import LoadedConfig, PolicySpec, Rule
from policy.core.didyoumean import closest, hint
from policy.core.engine import _compile_rule
from policy.core.errors import ConfigError

Severity = Literal["error", "warning"]

CODES: dict[str, str] = {
    "E000": "config-error",
    "E001": "invalid-yaml",
    "E002": "unknown-key",
    "E003": "missing-key",
    "E004": "invalid-value",
    "E005": "duplicate-policy",
    "E006": "invalid-rule",
    "W001": "unknown-agent",
    "W002": "unknown-tool",
    "W003": "shadowed-rule",
    "W004": "agent-without-token",
    "W005": "unreadable-spec",
}


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding: its code (`W003`), name (`shadowed-rule`), where it is, and what is wrong."""

    code: str
    file: str | None
    line: int | None
    path: str
    message: str

    @property
    def name(self) -> str:
        return CODES[self.code]

    @property
    def severity(self) -> Severity:
        return "error" if self.code.startswith("E") else "warning"

    def __str__(self) -> str:
        where = self.file or "<config>"
        if self.line is not None:
            where = f"{where}:{self.line}"
        key = f" {self.path}:" if self.path else ""
        kind = " warning:" if self.severity == "warning" else ""  # an error reads as load errors always have
        return f"{where}:{kind}{key} {self.message} [{self.code} {self.name}]"

    def as_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "name": self.name,
            "severity": self.severity,
            "file": self.file,
            "line": self.line,
            "path": self.path,
            "message": self.message,
        }


def _from(code: str, err: ConfigError) -> Problem:
    return Problem(code, err.file, err.line, err.path, err.message)


def _code_of(err: ConfigError) -> str:
    msg = err.message
    if msg.startswith(("invalid YAML", "duplicate key", "YAML ", "more than", "a YAML alias", "a key must")):
        return "E001"
    if msg.startswith("unknown key"):
        return "E002"
    if msg == "required key is missing":
        return "E003"
    if msg.startswith("duplicate policy name"):
        return "E005"
    if err.path:
        return "E004"
    return "E000"


def problems_of(exc: ConfigError) -> list[Problem]:
    """Every error a failed load stands for (a ConfigErrors holds many), as problems."""
    return [_from(_code_of(err), err) for err in exc.every]


_UNKNOWN = re.compile(r"unknown (?:field|operator) '([^']*)' \(use ([^()]*)\)")


def _with_guess(err: ConfigError) -> ConfigError:
    """`unknown operator 'glb' (use eq, …, glob, …)` gains ` (did you mean 'glob'?)` from the names it lists."""
    m = _UNKNOWN.search(err.message)
    if m is None:
        return err
    choices = [c.strip() for c in re.split(r",| or ", m.group(2)) if c.strip() and "<" not in c]
    guess = hint(m.group(1), choices)
    if not guess:
        return err
    message = err.message[: m.end()] + guess + err.message[m.end() :]
    return ConfigError(message, file=err.file, line=err.line, path=err.path)


def compile_problems(loaded: LoadedConfig) -> list[Problem]:
    """Every rule and agent glob that does not compile (the engine stops at the first; this goes on)."""
    servers = frozenset(loaded.config.servers)
    out: list[Problem] = []
    for spec, src in zip(loaded.config.policies, loaded.sources, strict=True):
        try:
            compile_glob_linear(spec.agent)
        except ValueError as exc:
            out.append(_from("E006", src.error(("agent",), str(exc))))
        for i, rule in enumerate(spec.rules):
            try:
                _compile_rule(spec, i, rule, src, servers)
            except ConfigError as exc:
                out.append(_from("E006", _with_guess(exc)))
    return out


def warnings(loaded: LoadedConfig, catalogue: ToolCatalogue) -> list[Problem]:
    """Every warning, in file order of what it points at."""
    out = _agent_warnings(loaded) + _token_warnings(loaded) + _spec_warnings(loaded, catalogue)
    for spec, src in zip(loaded.config.policies, loaded.sources, strict=True):
        for i, rule in enumerate(spec.rules):
            for j, pattern in enumerate(rule.tools):
                try:
                    message = unknown_tool(pattern, catalogue, loaded.config.proxy.unknown_hosts)
                except ValueError:
                    continue  # a bad glob: an error already (E006)
                if message:
                    out.append(_from("W002", src.error(("rules", i, "tools", j), message)))
        out += [_from("W003", src.error(("rules", i), msg)) for i, msg in shadowed(spec)]
    return sorted(out, key=lambda p: (p.file or "", p.line or 0, p.code))


def _agent_warnings(loaded: LoadedConfig) -> list[Problem]:
    agents = sorted(loaded.config.agents)
    if not agents:  # no agents: names come from the proxy user name or --agent, any name is fine
        return []
    out = []
    for spec, src in zip(loaded.config.policies, loaded.sources, strict=True):
        try:
            rx = compile_glob_linear(spec.agent)
        except ValueError:
            continue  # an error already (E006)
        if any(rx.match(a) for a in agents):
            continue
        what = "matches no agent" if is_glob(spec.agent) else "is not an agent"
        message = f"policy {spec.name!r} is for {spec.agent!r}, which {what} in agents: ({', '.join(agents)})"
        out.append(_from("W001", src.error(("agent",), message + hint(spec.agent, agents))))
    return out


def _token_warnings(loaded: LoadedConfig) -> list[Problem]:
    agents = loaded.config.agents
    with_token = sorted(n for n, a in agents.items() if a.token is not None)
    if not with_token:
        return []
    out = []
    for name in sorted(n for n, a in agents.items() if a.token is None):
        message = (
            f"agent {name!r} has no token while {', '.join(with_token)} "
            f"{'has one' if len(with_token) == 1 else 'have one'}: the proxy accepts any password for {name!r}, "
            "so any client may call as it"
        )
        out.append(_from("W004", loaded.lines.error(("agents", name), message)))
    return out


def _spec_warnings(loaded: LoadedConfig, catalogue: ToolCatalogue) -> list[Problem]:
    return [
        _from("W005", loaded.lines.error(("servers", t.server, "openapi"), f"{t.message}: its tool names are unknown"))
        for t in catalogue.troubles
    ]


_WILD = "*?["


def _literal_prefix(pattern: str) -> str:
    cut = min((pattern.index(c) for c in _WILD if c in pattern), default=len(pattern))
    return pattern[:cut]


def unknown_tool(pattern: str, catalogue: ToolCatalogue, unknown_hosts: str = "policy") -> str | None:
    """Why a tool name or glob names nothing known, or None when it may match a known server or tool."""
    lit = _literal_prefix(pattern)
    if "." not in lit:
        return None  # a wildcard in the server part (`*.read_*`, `*`), or no server (`sh`): generic
    servers = [s for s in catalogue.servers if lit.startswith(s + ".")]
    if not servers:
        if " " in pattern:  # `METHOD /path` under a host the config does not list (plain HTTP)
            if unknown_hosts == "policy":
                return None
            return (
                f"{pattern!r} names no server in servers:, and proxy.unknown_hosts is {unknown_hosts}: "
                "calls to unlisted hosts never reach this rule"
            )
        server = lit.partition(".")[0]
        return (
            f"no server {server!r} is known (not in servers:){hint(server, catalogue.servers)}; "
            f"list it under servers: (a stdio MCP server or a CLI needs only a description) if it is right"
        )
    glob = compile_glob_linear(pattern) if is_glob(pattern) else None
    names: list[str] = []
    for server in servers:
        tools = catalogue.tools_of(server)
        tail = pattern[len(server) + 1 :]
        if tools is None or " " in tail:  # tools unknown, or a plain-HTTP request to the server
            return None
        full = [f"{server}.{t}" for t in tools]
        if any((glob.match(n) if glob else n == pattern) for n in full):
            return None
        names += full
    server = servers[-1]
    near = closest(pattern, names, n=3)
    also = f"; did you mean {', '.join(repr(n) for n in near)}?" if near else ""
    origin = catalogue.origins.get(server, "its tool list")
    message = f"{pattern!r} matches none of the {len(names)} tools of {server!r} (from {origin}){also}"
    if "pinned" not in origin:  # the spec names the REST operations only
        message += f"; the tools of an MCP server also named {server!r} are known once an adapter has pinned them"
    return message


def _conditional(rule: Rule) -> bool:
    return any(x is not None for x in (rule.when, rule.any, rule.not_, rule.condition, rule.conditions))


def shadowed(spec: PolicySpec) -> list[tuple[int, str]]:
    """(index, why) of each rule that can never decide: every tool pattern it has is covered by an earlier
    rule of the policy that has no condition, so that rule always answers first."""
    out: list[tuple[int, str]] = []
    earlier: list[tuple[str, str]] = []  # (pattern, rule label) of earlier unconditional rules
    for i, rule in enumerate(spec.rules):
        label = repr(rule.name) if rule.name else f"rules[{i}]"
        covers: list[str] = []
        for pattern in rule.tools:
            by = next((who for wide, who in earlier if covers_glob(wide, pattern)), None)
            if by is None:
                break
            covers.append(by)
        else:
            firsts = ", ".join(dict.fromkeys(covers))
            why = f"{firsts}, earlier and without a condition, matches every tool it names"
            out.append((i, f"rule {label} can never decide: {why}"))
        if not _conditional(rule):
            earlier += [(p, label) for p in rule.tools]
    return out


def covers_glob(wide: str, narrow: str) -> bool:
    """True when every name `narrow` matches, `wide` matches too (sound: False when unsure).

    Exact for globs made of literals and `*` (a `*` of `wide` may absorb anything, a `*` of `narrow` only
    a `*` of `wide`); with `?` or `[...]` only equal patterns and all-`*` ones are known to cover."""
    if wide == narrow or set(wide) == {"*"}:
        return True
    if any(c in wide + narrow for c in "?["):
        return False
    return _star_covers(wide, narrow)


def _star_covers(wide: str, narrow: str) -> bool:
    # matched[j]: wide[:i] matches narrow[:j], narrow's `*` being a token only a `*` of wide absorbs
    matched = [True] + [False] * len(narrow)
    for c in wide:
        if c == "*":
            for j in range(1, len(narrow) + 1):
                matched[j] = matched[j] or matched[j - 1]
        else:
            matched = [False] + [matched[j - 1] and narrow[j - 1] == c for j in range(1, len(narrow) + 1)]
    return matched[-1]
