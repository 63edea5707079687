"""The configuration file (ARCHITECTURE §5) as strict pydantic models, loaded with precise errors.

`load_config(path)` finds the file by the active-mesh rule (policy.mesh.active), reads it and its
`policy_dir`, resolves `{$env: NAME}` / `{$file: PATH}` (secrets stay `SecretRef`s until the surface that uses
them reads them: policy.core.secrets) and returns a `Config`; every error is a `ConfigError` naming the file,
the line and the key path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path as FsPath
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from policy.core.builtin import default_config_path
from policy.core.didyoumean import key_hint
from policy.core.errors import ConfigError, config_errors
from policy.core.model import Action
from policy.core.secrets import Secret
from policy.core.textfile import read_config_text
from policy.core.upstream_url import parse_upstream
from policy.core.yamlsrc import Lines, Path, format_path, load_yaml

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: Any) -> float:
    """`25`, `25s`, `30m`, `1h`, `7d`, `500ms` -> seconds. Raises ValueError on anything else."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"{value!r} is not a duration (negative)")
        return float(value)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            return float(m.group(1)) * _UNITS[m.group(2)]
    raise ValueError(f"{value!r} is not a duration (write 25s, 30m, 1h or 7d)")


Duration = Annotated[float, BeforeValidator(parse_duration)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AgentSpec(_Strict):
    token: Secret | None = None  # resolved by the proxy's auth only (policy.core.secrets)


class ServerSpec(_Strict):
    openapi: str | None = None
    base_url: str | None = None
    mcp_url: str | None = None
    description: str | None = None
    # How the upstream parses requests (addons/request_canon.py): without them, overrides and collisions are refused.
    method_override: bool | list[Literal["x-http-method-override", "x-http-method", "x-method-override", "_method"]] = (
        False
    )
    precedence: Literal["query", "body"] | None = None
    # Where its requests are sent (a staging host, a mock); it is still judged by its public URL or spec.
    upstream: str | None = None

    @field_validator("upstream")
    @classmethod
    def _upstream_url(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is None:
            return v
        parse_upstream(v)  # ValueError: pydantic reports it at servers.NAME.upstream with its line
        if not any(info.data.get(k) for k in ("openapi", "base_url", "mcp_url")):
            raise ValueError("upstream stands in for the server's public URL: give base_url, openapi or mcp_url too")
        return v


class RateLimit(_Strict):
    max_per_minute: int | None = Field(default=None, ge=1)
    max_total: int | None = Field(default=None, ge=1)


class LoopDetection(_Strict):
    max_repeats: int = Field(default=3, ge=1)
    window: Duration = 10.0
    enabled: bool = True


class SeedCondition(_Strict):
    """The seed project's condition: `{field, operator, value}`."""

    field: str
    operator: str
    value: Any = None


class Rule(_Strict):
    name: str | None = None
    tools: list[str] = Field(min_length=1)
    action: Action
    when: dict[str, Any] | None = None
    any: list[dict[str, Any]] | None = None
    not_: dict[str, Any] | None = Field(default=None, alias="not")
    condition: SeedCondition | None = None
    conditions: list[SeedCondition] | None = None
    reason: str | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("tools", mode="before")
    @classmethod
    def _one_tool(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("action", mode="before")
    @classmethod
    def _action_aliases(cls, v: Any) -> Any:
        if isinstance(v, str) and v in _ACTION_ALIASES:
            return _ACTION_ALIASES[v]
        if isinstance(v, str) and v not in {a.value for a in Action}:
            raise ValueError(f"{v!r} is not one of allow, deny, human_approval")
        return v


_ACTION_ALIASES = {"require_approval": "human_approval", "approve": "human_approval", "ask": "human_approval"}


class PolicySpec(_Strict):
    name: str = Field(min_length=1)
    agent: str = "*"
    description: str | None = None
    rate_limit: RateLimit | None = None
    loop_detection: LoopDetection | None = None
    rules: list[Rule] = Field(default_factory=list)


class ApprovalSettings(_Strict):
    hold_seconds: Duration = 25.0
    expire_after: Duration = 3600.0
    deny_cooldown: Duration = 300.0
    max_pending_per_agent: int = Field(default=50, ge=1)  # past it, new approvals are refused (rate_limited)
    notify_url: Secret | None = None  # secrets resolved by the control plane's notifier only
    notify_secret: Secret | None = None


class MemorySettings(_Strict):
    auto_approve_after: int = Field(default=3, ge=0)
    key: list[str] = Field(default_factory=lambda: ["args"])
    window: Duration = 30 * 86400.0
    enabled: bool = True


class SupervisorSettings(_Strict):
    url: Secret | None = None  # may carry a token: resolved when the supervisor is built
    timeout_seconds: Duration = 20.0
    expose_content: bool = False


class TraceSettings(_Strict):
    jsonl: bool = True
    sqlite: bool = True
    otlp_endpoint: str | None = None
    redact: list[str] = Field(default_factory=lambda: ["authorization", "token", "password", "api_key"])
    max_bytes: int = Field(default=64 * 1024 * 1024, ge=4096)
    # A decision record that cannot be written (write-ahead log or trace failing): refuse the call, or let it
    # through unrecorded (`allow`, a deliberate fail-open).
    on_failure: Literal["refuse", "allow"] = "refuse"
    fsync: bool = False  # fsync each write-ahead record: survives power loss too, at a disk flush per call
    # Records between two signed checkpoints (policy.trace.signer); one is signed at shutdown too.
    checkpoint_every: int = Field(default=1000, ge=1)


class McpSettings(_Strict):
    """How the MCP adapters behave (mcpwrap and MCP over HTTP)."""

    refuse_as: Literal["result", "error"] = "result"
    pin_changed: Literal["warn", "human_approval", "deny"] = "human_approval"
    pin_new: Literal["warn", "human_approval", "deny"] = "warn"
    hide_denied_tools: bool = True


class ProxySettings(_Strict):
    listen: str = "127.0.0.1:8080"
    unknown_hosts: Literal["policy", "allow", "deny"] = "policy"
    extra_ca: list[str] = Field(default_factory=list)
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    max_batch: int = Field(default=100, ge=1)  # JSON-RPC batch elements per request; larger batches are refused


class ControlSettings(_Strict):
    listen: str = "127.0.0.1:8181"
    token: Secret | None = None  # resolved by serve only


class Config(_Strict):
    version: Literal[1] = 1
    state_dir: str = ".agent-mesh"
    agents: dict[str, AgentSpec] = Field(default_factory=dict)
    servers: dict[str, ServerSpec] = Field(default_factory=dict)
    policies: list[PolicySpec] = Field(default_factory=list)
    policy_dir: str | None = None
    approval: ApprovalSettings = Field(default_factory=ApprovalSettings)
    memory: MemorySettings = Field(default_factory=MemorySettings)
    supervisor: SupervisorSettings = Field(default_factory=SupervisorSettings)
    traces: TraceSettings = Field(default_factory=TraceSettings)
    mcp: McpSettings = Field(default_factory=McpSettings)
    proxy: ProxySettings = Field(default_factory=ProxySettings)
    control: ControlSettings = Field(default_factory=ControlSettings)

    def state_path(self) -> FsPath:
        """The state directory (made absolute against the config file's folder when loaded)."""
        return FsPath(self.state_dir)


class _PolicyFile(_Strict):
    policies: list[PolicySpec]


_MODELS: dict[str, type[BaseModel]] = {m.__name__: m for m in (Config, _PolicyFile, PolicySpec)}


def validation_error(exc: ValidationError, lines: Lines, prefix: Path = ()) -> ConfigError:
    """Every error pydantic found, each with its line and key path (in file order); an unknown key says
    which known one it is most like."""
    model = _MODELS.get(exc.title)
    found: dict[tuple[int, str, str], ConfigError] = {}
    for err in exc.errors():
        loc: Path = tuple(part for part in err["loc"] if not (isinstance(part, str) and part.startswith("function-")))
        path = (*prefix, *loc)
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key" + (key_hint(model, loc) if model is not None else "")
        elif err["type"] == "literal_error" and "expected" in err.get("ctx", {}):
            msg = f"{err['input']!r} is not one of {err['ctx']['expected']}"
        elif err["type"] == "enum":
            msg = f"{err['input']!r} is not one of allow, deny, human_approval"
        elif msg.startswith("Value error, "):
            msg = msg.removeprefix("Value error, ")
        elif err["type"] == "missing":
            msg = "required key is missing"
        if err["type"] != "missing":
            path = _in_data(path, lines)
        one = lines.error(path, msg)
        key = (one.line or 0, one.path, "")
        if key in found:  # a union's branches complain about one value: one error saying each
            first = found[key]
            if msg not in first.message:
                found[key] = lines.error(path, f"{first.message}; or: {msg}")
            continue
        found[key] = one
    return config_errors([found[k] for k in sorted(found)])


def _in_data(path: Path, lines: Lines) -> Path:
    """The path without what pydantic appends for a union's branches (`.bool`, `.list[...]`): the longest
    prefix that is a key path of the file."""
    while path and path not in lines.by_path:
        path = path[:-1]
    return path


class PolicySource:
    """Where a policy was defined: its file, line map and key path, so later checks can point at it."""

    __slots__ = ("file", "lines", "path")

    def __init__(self, lines: Lines, path: Path) -> None:
        self.lines = lines
        self.path = path
        self.file = lines.file

    def error(self, sub: Path, message: str) -> ConfigError:
        return self.lines.error((*self.path, *sub), message)


class LoadedConfig:
    """A validated Config plus the file it came from and where each policy was defined."""

    def __init__(self, config: Config, sources: list[PolicySource], file: str, lines: Lines | None = None) -> None:
        self.config = config
        self.sources = sources
        self.file = file
        self.lines = lines or Lines(file)  # the config file's line map, for checks that point into it (lint)


def default_config_text() -> str:
    """The built-in default configuration (YAML), used when no config file is found."""
    with open(default_config_path(), encoding="utf-8") as f:
        return f.read()


def load_config_text(text: str, file: str, base_dir: str = ".", env: Mapping[str, str] | None = None) -> LoadedConfig:
    """Validate config text (and its policy_dir, relative to base_dir). Raises ConfigError."""
    data, lines = load_yaml(text, file, env)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise lines.error((), "the config must be a mapping (version, policies, ...)")
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        errors = [validation_error(exc, lines)]
        policy_dir = data.get("policy_dir")
        if isinstance(policy_dir, str) and policy_dir:  # its files' errors are reported in the same run
            try:
                _load_policy_dir(policy_dir, base_dir, lines, env)
            except ConfigError as more:
                errors.append(more)
        raise config_errors(errors) from None
    sources = [PolicySource(lines, ("policies", i)) for i in range(len(config.policies))]
    policies = list(config.policies)
    if config.policy_dir:
        extra, extra_sources = _load_policy_dir(config.policy_dir, base_dir, lines, env)
        policies += extra
        sources += extra_sources
    seen: dict[str, PolicySource] = {}
    duplicates: list[ConfigError] = []
    for spec, src in zip(policies, sources, strict=True):
        if spec.name in seen:
            first = seen[spec.name]
            duplicates.append(
                src.error(("name",), f"duplicate policy name {spec.name!r} (first defined in {first.file})")
            )
            continue
        seen[spec.name] = src
    if duplicates:
        raise config_errors(duplicates)
    state = FsPath(config.state_dir).expanduser()
    if not state.is_absolute():
        state = (FsPath(base_dir) / state).absolute()
    config = config.model_copy(update={"policies": policies, "state_dir": str(state)})
    return LoadedConfig(config, sources, file, lines)


def _load_policy_dir(
    policy_dir: str, base_dir: str, lines: Lines, env: Mapping[str, str] | None
) -> tuple[list[PolicySpec], list[PolicySource]]:
    folder = FsPath(policy_dir).expanduser()
    if not folder.is_absolute():
        folder = FsPath(base_dir) / folder
    if not folder.is_dir():
        raise lines.error(("policy_dir",), f"{folder} is not a directory")
    specs: list[PolicySpec] = []
    sources: list[PolicySource] = []
    errors: list[ConfigError] = []  # every file is read: all their errors are reported at once
    # Not only regular files: a FIFO or a link to /dev/zero named `*.yaml` is an error, never silently skipped.
    files = sorted(p for p in folder.iterdir() if p.suffix in {".yaml", ".yml"} and not p.is_dir())
    for path in files:
        try:
            data, flines = load_yaml(read_config_text(str(path)), str(path), env)
        except ConfigError as exc:
            errors.append(exc)
            continue
        except UnicodeDecodeError:
            errors.append(ConfigError("not UTF-8 text", file=str(path)))
            continue
        except (OSError, ValueError) as exc:
            errors.append(ConfigError(f"cannot read: {getattr(exc, 'strerror', None) or exc}", file=str(path)))
            continue
        if data is None:
            continue
        prefix: Path
        if isinstance(data, dict) and "policies" in data:
            try:
                specs_here = _PolicyFile.model_validate(data).policies
            except ValidationError as exc:
                errors.append(validation_error(exc, flines))
                continue
            prefix = ("policies",)
        else:
            items = data if isinstance(data, list) else [data]
            specs_here = []
            for i, item in enumerate(items):
                try:
                    specs_here.append(PolicySpec.model_validate(item))
                except ValidationError as exc:
                    errors.append(validation_error(exc, flines, (i,) if isinstance(data, list) else ()))
            prefix = ()
        for i, spec in enumerate(specs_here):
            specs.append(spec)
            sub: Path = (*prefix, i) if prefix or isinstance(data, list) else ()
            sources.append(PolicySource(flines, sub))
    if errors:
        raise config_errors(errors)
    return specs, sources


def load_default_config(state_dir: str, env: Mapping[str, str] | None = None) -> LoadedConfig:
    """The built-in default, keeping its state in `state_dir` (the active mesh's rule puts it in the data dir)."""
    loaded = load_config_text(default_config_text(), "<built-in default>", ".", env)
    return LoadedConfig(
        loaded.config.model_copy(update={"state_dir": state_dir}), loaded.sources, loaded.file, loaded.lines
    )


def load_config_file(found: str, env: Mapping[str, str] | None = None) -> LoadedConfig:
    """Load the config file at `found` (its `policy_dir` and `state_dir` relative to its folder)."""
    fs = FsPath(found)
    try:
        text = read_config_text(found)  # bounded: a FIFO, /dev/zero or a huge file is refused, never read whole
    except FileNotFoundError:
        raise ConfigError("no such file", file=found) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", file=found) from None
    except UnicodeDecodeError:
        raise ConfigError("not UTF-8 text", file=found) from None
    except ValueError as exc:
        raise ConfigError(f"cannot read: {exc}", file=found) from None
    return load_config_text(text, found, str(fs.parent), env)


__all__ = [
    "Config",
    "ConfigError",
    "LoadedConfig",
    "PolicySource",
    "PolicySpec",
    "Rule",
    "default_config_path",
    "default_config_text",
    "format_path",
    "load_config_file",
    "load_config_text",
    "load_default_config",
    "parse_duration",
]
