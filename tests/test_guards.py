"""Project rules that must not drift: layering, the public API, help texts and the CLI reference (docs/cli.md)."""

from __future__ import annotations

import ast
import functools
import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

import policy
from policy.cli import cli

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = ("mitmproxy", "mcp", "mcp_types", "addons", "mcpwrap")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text("utf-8"), str(path))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module.split(".")[0])
    return out


@pytest.mark.parametrize("path", sorted((ROOT / "policy").rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_core_imports_no_adapter_and_no_protocol_library(path: Path) -> None:
    assert not _imports(path) & set(FORBIDDEN), f"{path} imports {_imports(path) & set(FORBIDDEN)}"


def test_importing_every_core_module_loads_no_adapter() -> None:
    code = (
        "import importlib, pkgutil, sys, policy\n"
        "for m in pkgutil.walk_packages(policy.__path__, 'policy.'):\n"
        "    if not m.name.endswith('__main__'): importlib.import_module(m.name)\n"
        f"bad = sorted(n for n in sys.modules if n.split('.')[0] in {FORBIDDEN!r})\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_no_addon_file_shadows_a_package_it_may_import() -> None:
    names = {p.stem for p in (ROOT / "addons").glob("*.py")}
    assert not names & {"mcp", "http", "policy", "mitmproxy", "json", "ssl", "asyncio"}


def test_the_public_api_is_sorted_and_complete() -> None:
    assert policy.__all__ == sorted(policy.__all__)
    for name in policy.__all__:
        assert hasattr(policy, name), name


def _commands(group: click.Group, prefix: str) -> list[tuple[str, click.Command]]:
    out: list[tuple[str, click.Command]] = []
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        assert cmd is not None
        full = f"{prefix} {name}"
        out.append((full, cmd))
        if isinstance(cmd, click.Group):
            out += _commands(cmd, full)
    return out


def _all_commands() -> list[tuple[str, click.Command]]:
    found = _commands(cli, "agent-mesh")
    try:
        mcpwrap_cli = importlib.import_module("mcpwrap.cli")
    except ImportError:
        return found
    group = getattr(mcpwrap_cli, "cli", None)
    if isinstance(group, click.Group):
        found += _commands(group, "mcpwrap")
    return found


COMMANDS = _all_commands()


@pytest.mark.parametrize(("name", "cmd"), COMMANDS, ids=[n for n, _ in COMMANDS])
def test_every_command_has_help_with_an_example(name: str, cmd: click.Command) -> None:
    assert (cmd.help or "").strip(), f"{name} has no help"
    assert "Example" in (cmd.help or ""), f"{name}'s help has no Example block"


@functools.cache
def _cli_reference() -> str:
    """docs/cli.md as the docs site renders it: each `::: mkdocs-click` block becomes the generated reference."""
    import markdown

    page = (ROOT / "docs" / "cli.md").read_text("utf-8")
    return str(markdown.Markdown(extensions=["mkdocs-click", "tables", "attr_list"]).convert(page))


@pytest.mark.parametrize(("name", "cmd"), COMMANDS, ids=[n for n, _ in COMMANDS])
def test_every_command_appears_in_the_generated_cli_reference(name: str, cmd: click.Command) -> None:
    assert f"{name} [OPTIONS]" in _cli_reference(), f"docs/cli.md does not document `{name}`"


def test_every_core_module_has_a_docstring() -> None:
    for m in pkgutil.walk_packages(policy.__path__, "policy."):
        mod = importlib.import_module(m.name) if not m.name.endswith("__main__") else None
        if mod is not None:
            assert (mod.__doc__ or "").strip(), f"{m.name} has no module docstring"


# Adapters translate only (issue 15): the Gate builds every verdict and owns the store; the MCP wire layer that
# both adapters share is pure. Checked on the source (AST), so a lazy import inside a function counts too.
ADAPTERS = ("addons", "mcpwrap")
# Not the store port: the state dir's file permissions (the proxy's CA key lives there too).
STORE_ALLOWED = frozenset({"policy.store.statedir"})
WIRE_MAY_NOT = ("addons", "mcpwrap", "mitmproxy", "mcp", "policy.gate", "policy.store", "policy.trace",
                "policy.mesh", "policy.cli", "policy.control", "os", "io", "socket", "asyncio", "subprocess",
                "sqlite3", "httpx", "pathlib", "shutil", "tempfile", "fcntl", "select", "selectors", "threading",
                "click", "starlette", "uvicorn")  # fmt: skip


def _modules(path: Path, *, runtime_only: bool = False) -> set[str]:
    """Full names of the modules a file imports (relative imports resolved against its package);
    `runtime_only` leaves out what is imported under `if TYPE_CHECKING:`."""
    tree = ast.parse(path.read_text("utf-8"), str(path))
    skipped: set[int] = set()
    if runtime_only:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                skipped.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    package = ".".join(path.relative_to(ROOT).parent.parts)
    out: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            out.add(base)
            out.update(f"{base}.{alias.name}" for alias in node.names)  # `from policy import store`
    return out


def _under(module: str, prefixes: tuple[str, ...] | frozenset[str]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _adapter_files() -> list[Path]:
    return sorted(p for name in ADAPTERS for p in (ROOT / name).rglob("*.py"))


# No crossing is left (`mcpwrap discover --openapi` reads the core's policy/core/openapi_spec.py); a named
# exception would go here.
CROSSING: dict[str, set[str]] = {}


@pytest.mark.parametrize("path", _adapter_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_neither_adapter_imports_the_other(path: Path) -> None:
    other = "mcpwrap" if path.relative_to(ROOT).parts[0] == "addons" else "addons"
    crossing = {m for m in _modules(path) if _under(m, (other,))}
    assert crossing <= CROSSING.get(str(path.relative_to(ROOT)), set()), f"{path} imports {sorted(crossing)}"


@pytest.mark.parametrize("path", _adapter_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_adapter_imports_the_store(path: Path) -> None:
    store = {m for m in _modules(path) if _under(m, ("policy.store",)) and not _under(m, STORE_ALLOWED)}
    assert not store, f"{path} imports {sorted(store)}: only the Gate (and the operator layer) use the store"


@pytest.mark.parametrize("path", _adapter_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_adapter_reaches_a_store_or_builds_a_verdict(path: Path) -> None:
    # A `.store` of anything (a Gate's above all) is the store port, which adapters must go through the Gate
    # for; a Verdict an adapter builds is a decision the Gate did not make (Gate.refuse builds refusals).
    tree = ast.parse(path.read_text("utf-8"), str(path))
    found = [
        f"line {node.lineno}: {ast.unparse(node)}"
        for node in ast.walk(tree)
        if (isinstance(node, ast.Attribute) and node.attr == "store")
        or (isinstance(node, ast.Call) and ast.unparse(node.func).split(".")[-1] == "Verdict")
    ]
    assert not found, f"{path}: {found}"


@pytest.mark.parametrize("path", sorted((ROOT / "policy" / "wire").rglob("*.py")), ids=lambda p: p.name)
def test_the_wire_layer_is_pure(path: Path) -> None:
    bad = {m for m in _modules(path, runtime_only=True) if _under(m, WIRE_MAY_NOT)}
    assert not bad, f"{path} imports {sorted(bad)}: policy/wire does no I/O and knows no adapter, gate or store"


# The layers of `policy/` (docs/architecture.md): a package imports only from its own layer and those below it.
# core < store < trace < wire < gate < mesh < the operator surfaces (cli, control) < the adapters (addons, mcpwrap).
LAYERS: dict[str, set[str]] = {
    "core": {"core"},
    "store": {"core", "store"},
    "trace": {"core", "store", "trace"},
    "wire": {"core", "wire"},
    "gate": {"core", "store", "trace", "wire", "gate"},
    "mesh": {"core", "store", "trace", "wire", "gate", "mesh"},
    "cli": {"core", "store", "trace", "wire", "gate", "mesh", "cli"},
    "control": {"core", "store", "trace", "wire", "gate", "mesh", "control"},
}
OPERATOR_ONLY = {"click", "starlette", "uvicorn", "rich"}
NO_IO_IN_CORE = {"click", "starlette", "uvicorn", "sqlite3", "httpx", "rich"}


def _policy_imports(path: Path) -> set[str]:
    """The `policy.<package>` names a module imports (TYPE_CHECKING imports count too: they are dependencies)."""
    tree = ast.parse(path.read_text("utf-8"), str(path))
    out: set[str] = set()
    for node in ast.walk(tree):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + ([f"{node.module}.{a.name}" for a in node.names] if node.module == "policy" else [])
        for name in names:
            parts = name.split(".")
            if parts[0] == "policy" and len(parts) > 1 and parts[1] in LAYERS:
                out.add(parts[1])
    return out


def _layer_files(layer: str) -> list[Path]:
    return sorted((ROOT / "policy" / layer).rglob("*.py"))


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_each_layer_of_the_core_imports_only_its_own_layer_and_those_below(layer: str) -> None:
    wrong = {
        str(p.relative_to(ROOT)): sorted(_policy_imports(p) - LAYERS[layer])
        for p in _layer_files(layer)
        if _policy_imports(p) - LAYERS[layer]
    }
    assert not wrong, f"layer {layer!r} reaches up: {wrong}"


def test_the_pure_core_imports_no_io_library() -> None:
    wrong = {str(p.relative_to(ROOT)): sorted(_imports(p) & NO_IO_IN_CORE) for p in _layer_files("core")}
    assert not {k: v for k, v in wrong.items() if v}


def test_only_the_operator_surfaces_import_click_or_starlette() -> None:
    below = [p for layer in ("core", "store", "trace", "wire", "gate", "mesh") for p in _layer_files(layer)]
    wrong = {str(p.relative_to(ROOT)): sorted(_imports(p) & OPERATOR_ONLY) for p in below}
    assert not {k: v for k, v in wrong.items() if v}


def test_every_module_of_policy_lives_in_a_layer() -> None:
    loose = sorted(p.name for p in (ROOT / "policy").glob("*.py") if p.name != "__init__.py")
    assert loose == [], f"modules outside the layers: {loose}"
