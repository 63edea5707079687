"""pytest fixtures over the installed targets; import them into a conftest to use them outside tests/e2e.

    from tests.support.fixtures import github_api, node22, targets   # noqa: F401  (in a conftest.py)

A missing target fails the test at setup with "run `make targets`" — never a skip, in CI or not.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.net import free_port
from tests.support.proc import Proc
from tests.support.targets import ServerCommand, TargetMissingError, Targets

PRISM_START_SECONDS = 120.0  # GitHub's 13 MB spec takes ~8 s to load on an idle 2-core machine
HTTPBIN_START_SECONDS = 30.0


def need[T](get: Callable[[], T]) -> T:
    """Return get(), turning TargetMissingError into a clean test failure that says to run `make targets`."""
    try:
        return get()
    except TargetMissingError as e:
        pytest.fail(str(e), pytrace=False)


@pytest.fixture(scope="session")
def targets() -> Targets:
    """Paths of everything scripts/install-targets.sh installed (tests/support/targets.py)."""
    return Targets()


@pytest.fixture(scope="session")
def node20(targets: Targets) -> Path:
    return need(lambda: targets.node20)


@pytest.fixture(scope="session")
def node22(targets: Targets) -> Path:
    return need(lambda: targets.node22)


@pytest.fixture(scope="session")
def chromium(targets: Targets) -> Path:
    return need(lambda: targets.chromium)


@pytest.fixture(scope="session")
def chromedriver(targets: Targets) -> Path:
    return need(lambda: targets.chromedriver)


@pytest.fixture
def stdio_server(targets: Targets, tmp_path: Path) -> Callable[[str], ServerCommand]:
    """Factory: stdio_server("everything") -> ServerCommand (argv + env), state under this test's tmp_path.

    Names: filesystem, everything, memory, github (npm, Node 20); time, git, fetch (own venvs).
    """
    return lambda name: need(lambda: targets.stdio_server(name, tmp_path / name))


def prism_mock(targets: Targets, spec: Path, *, name: str = "prism") -> tuple[Proc, str]:
    """An unstarted Prism mock of `spec` on a free loopback port, and its base URL.

    Example:
        proc, url = prism_mock(targets, targets.spec("petstore"))
        with proc:
            proc.wait_for_line("Prism is listening", timeout=PRISM_START_SECONDS)
            httpx.get(f"{url}/pet/1", headers={"Accept": "application/json"})
    """
    port = free_port()
    argv: list[str | Path] = [
        targets.node20,
        targets.npm_bin("prism"),
        "mock",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        spec,
    ]
    return Proc(argv, name=name), f"http://127.0.0.1:{port}"


def _serve_prism(targets: Targets, spec_name: str) -> Iterator[str]:
    spec = need(lambda: targets.spec(spec_name))
    proc, url = need(lambda: prism_mock(targets, spec, name=f"prism-{spec_name}"))
    with proc:
        proc.wait_for_line("Prism is listening", timeout=PRISM_START_SECONDS)
        yield url


@pytest.fixture(scope="session")
def github_api(targets: Targets) -> Iterator[str]:
    """Base URL of a Prism mock of GitHub's real REST spec (send `Accept: application/json`).

    Started once per session. GitHub's spec nests its examples one level too deep, so static mode
    answers `{"value": {...}}`; send `Prefer: dynamic=true` for schema-shaped bodies.
    """
    yield from _serve_prism(targets, "github")


@pytest.fixture(scope="session")
def petstore_api(targets: Targets) -> Iterator[str]:
    """Base URL of a Prism mock of the OpenAPI 3.0 petstore (@readme/oas-examples), once per session."""
    yield from _serve_prism(targets, "petstore")


@pytest.fixture(scope="session")
def httpbin_url(targets: Targets) -> Iterator[str]:
    """Base URL of a real httpbin under gunicorn (its OpenAPI 2.0 spec is at /spec.json), once per session."""
    gunicorn = need(lambda: targets.venv_bin("httpbin", "gunicorn"))
    port = free_port()
    with Proc([gunicorn, "-b", f"127.0.0.1:{port}", "-w", "2", "httpbin:app"], name="httpbin") as proc:
        proc.wait_for_port(port, timeout=HTTPBIN_START_SECONDS)
        yield f"http://127.0.0.1:{port}"
