"""Policy unit tests as YAML tables: a call plus the expected decision and rule (or the expected config error).

Used by `agent-mesh test` for users' own policies and by our own decision tables in tests/policy/cases/. The
judging is given (`Judge`): `agent-mesh test` judges with the gate's own preview (policy/gate/dryrun.py), so a
case sees what the live gate decides, the built-in state-dir guard included (`rule: guard/state-dir`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from policy.core.config import LoadedConfig, load_config_file, load_config_text, validation_error
from policy.core.errors import ConfigError
from policy.core.model import Decision, HttpInfo, Surface, ToolCall
from policy.core.yamlsrc import load_yaml


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CaseHttp(_Strict):
    method: str = "GET"
    host: str = ""
    path: str = "/"


class CaseCall(_Strict):
    agent: str
    tool: str
    args: dict[str, Any] = Field(default_factory=dict)
    surface: Surface = "mcp_stdio"
    http: CaseHttp | None = None
    annotations: dict[str, Any] = Field(default_factory=dict)
    session_id: str | None = None


class Expect(_Strict):
    decision: Literal["allow", "deny", "human_approval"] | None = None
    rule: str | None = None  # a policy's `name/rule`, `default`, or `guard/state-dir` (the built-in guard)
    # what the gate does on an empty state: a human_approval is `pending`
    verdict: Literal["allow", "deny", "pending", "rate_limited", "loop_detected"] | None = None
    reason_contains: str | None = None
    error: str | None = None
    line: int | None = None


class Case(_Strict):
    name: str
    config: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    call: CaseCall | None = None
    expect: Expect


class Suite(_Strict):
    config: str | None = None
    config_file: str | None = None
    cases: list[Case] = Field(min_length=1)


# What a case's call gets under one config: the decision (rule, reason) and the gate's verdict kind.
Judgement = tuple[Decision, str]
# Builds the judge of one loaded config (compiling it: may raise ConfigError).
Judge = Callable[[LoadedConfig], Callable[[ToolCall], Judgement]]
Loader = Callable[[str | None, Mapping[str, str]], LoadedConfig]


@dataclass
class LoadedSuite:
    file: str
    suite: Suite


@dataclass
class CaseResult:
    file: str
    name: str
    ok: bool
    expected: str
    got: str


def load_cases(path: str) -> LoadedSuite:
    """Parse a cases file strictly. Raises ConfigError with file and line."""
    try:
        text = Path(path).read_text("utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", file=path) from None
    data, lines = load_yaml(text, path, {})
    try:
        suite = Suite.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc, lines) from None
    return LoadedSuite(path, suite)


def to_call(c: CaseCall) -> ToolCall:
    server, dot, tool = c.tool.partition(".")
    if not dot:
        server, tool = "", c.tool
    http = HttpInfo(c.http.method.upper(), c.http.host, c.http.path) if c.http else None
    return ToolCall(c.agent, c.surface, server, tool, c.args, c.session_id, http, None, c.annotations)


def _expected(e: Expect) -> str:
    if e.error is not None:
        return f"config error {e.error!r}" + (f" at line {e.line}" if e.line else "")
    return f"{e.decision or '*'} by {e.rule or '*'}" + (f" ({e.verdict})" if e.verdict else "")


def run_cases(
    loaded: LoadedSuite, judge: Judge, config_path: str | None = None, load: Loader | None = None
) -> list[CaseResult]:
    """Run every case; config per case: its own `config:`, else the suite's, else --config, else the default.

    `load` finds and loads that last one (the active mesh's rule lives above the core: `policy.mesh.load`)."""
    base = Path(loaded.file).parent
    cache: dict[tuple[str | None, tuple[tuple[str, str], ...]], Callable[[ToolCall], Judgement] | ConfigError] = {}
    results = []
    for case in loaded.suite.cases:
        text = case.config if case.config is not None else loaded.suite.config
        key = (text, tuple(sorted(case.env.items())))
        if key not in cache:
            env = {**os.environ, **case.env}
            try:
                if text is not None:
                    label = f"{loaded.file}[{case.name}]" if case.config is not None else f"{loaded.file}[config]"
                    cache[key] = judge(load_config_text(text, label, str(base), env))
                elif loaded.suite.config_file:
                    cache[key] = judge(load_config_file(str(base / loaded.suite.config_file), env))
                elif load is not None:
                    cache[key] = judge(load(config_path, env))
                else:
                    raise ConfigError("a case names no config and no loader was given for the active mesh's")
            except ConfigError as exc:
                cache[key] = exc
        results.append(_run_one(loaded.file, case, cache[key]))
    return results


def _run_one(file: str, case: Case, judged: Callable[[ToolCall], Judgement] | ConfigError) -> CaseResult:
    e = case.expect
    expected = _expected(e)
    if isinstance(judged, ConfigError):
        got = f"config error {judged}"
        ok = e.error is not None and e.error in str(judged) and (e.line is None or e.line == judged.line)
        return CaseResult(file, case.name, ok, expected, got)
    if e.error is not None or case.call is None:
        return CaseResult(file, case.name, False, expected, "config loaded without error")
    d, verdict = judged(to_call(case.call))
    got = f"{d.action.value} by {d.rule}" + (f" ({verdict})" if e.verdict else "")
    ok = (e.decision is None or d.action.value == e.decision) and (e.rule is None or d.rule == e.rule)
    ok = ok and (e.verdict is None or verdict == e.verdict)
    if e.reason_contains is not None and e.reason_contains not in d.reason:
        ok = False
        got += f" (reason: {d.reason})"
    return CaseResult(file, case.name, ok, expected, got)
