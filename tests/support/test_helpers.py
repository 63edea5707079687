"""The shared test helpers keep their promises: bounded waits, whole process groups stopped, CA bundles built."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from tests.support import (
    Proc,
    ProcExitedError,
    ca_env,
    combined_ca_bundle,
    free_port,
    pid_gone,
    proxy_env,
    run,
    short_tmp_dir,
    system_ca_bundle,
    wait_for_port,
)

PEM = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"


def test_proc_returns_the_first_line_matching_the_pattern() -> None:
    with Proc(["sh", "-c", "echo starting; echo 'listening on 4242'; exec sleep 30"]) as p:
        assert p.wait_for_line(r"listening on (\d+)", timeout=10).group(1) == "4242"
        assert p.lines[0] == "starting"


def test_stopping_a_proc_kills_the_grandchildren_in_its_group() -> None:
    with Proc(["sh", "-c", "sleep 60 & echo child=$!; wait"]) as p:
        child = int(p.wait_for_line(r"child=(\d+)", timeout=10).group(1))
    assert pid_gone(child)


def test_a_proc_that_ignores_sigterm_is_killed() -> None:
    p = Proc(["sh", "-c", "trap '' TERM; echo ready; while :; do sleep 1; done"], stop_timeout=0.5)
    with p:
        p.wait_for_line("ready", timeout=10)
    assert p.returncode is not None
    assert not p.alive()


def test_a_proc_that_dies_early_fails_the_wait_with_its_output() -> None:
    with Proc(["sh", "-c", "echo 'bad config'; exit 3"], name="broken") as p:
        with pytest.raises(ProcExitedError, match=r"broken exited \(3\)[\s\S]*bad config"):
            p.wait_for_line("never printed", timeout=10)
        with pytest.raises(ProcExitedError, match="before listening"):
            p.wait_for_port(free_port(), timeout=10)


def test_waiting_for_a_line_that_never_comes_times_out_with_the_output_tail() -> None:
    with Proc(["sh", "-c", "echo still booting; exec sleep 30"]) as p, pytest.raises(TimeoutError, match="booting"):
        p.wait_for_line("ready", timeout=0.3)


async def test_async_waits_let_the_event_loop_run() -> None:
    port = free_port()
    server = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)]
    with Proc(server, name="http.server") as p:
        await p.async_wait_for_port(port, timeout=20)
        assert p.alive()


def test_wait_for_port_returns_once_something_listens() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        wait_for_port(s.getsockname()[1], timeout=5)
    with pytest.raises(TimeoutError, match="nothing listened"):
        wait_for_port(free_port(), timeout=0.2)


def test_run_captures_both_streams_and_kills_the_group_on_timeout() -> None:
    done = run(["sh", "-c", "echo out; echo err >&2"])
    assert (done.stdout, done.stderr) == ("out\n", "err\n")
    with short_tmp_dir() as d:
        pidfile = d / "child"
        with pytest.raises(TimeoutError, match="did not finish"):
            run(["sh", "-c", f"sleep 60 & echo $! > {pidfile}; wait"], timeout=0.5)
        assert pid_gone(int(pidfile.read_text()))
    with pytest.raises(RuntimeError, match="exited 2"):
        run(["sh", "-c", "exit 2"])


def test_combined_bundle_holds_the_system_cas_and_the_extra_one(tmp_path: Path) -> None:
    extra = tmp_path / "mesh-ca.pem"
    extra.write_text(PEM)
    bundle = combined_ca_bundle(extra, tmp_path / "bundle.pem")
    text = bundle.read_text()
    assert text.startswith(system_ca_bundle().read_text()[:200])
    assert text.endswith(PEM)
    assert set(ca_env(bundle).values()) == {str(bundle)}


def test_a_ca_file_without_a_certificate_is_refused(tmp_path: Path) -> None:
    (tmp_path / "key.pem").write_text("not a certificate")
    with pytest.raises(ValueError, match="holds no PEM certificate"):
        combined_ca_bundle(tmp_path / "key.pem", tmp_path / "bundle.pem")


def test_proxy_env_routes_every_client_and_exempts_nothing(tmp_path: Path) -> None:
    env = proxy_env("http://claude:tok@127.0.0.1:8080", tmp_path / "bundle.pem")
    assert env["HTTPS_PROXY"] == env["http_proxy"] == "http://claude:tok@127.0.0.1:8080"
    assert env["NO_PROXY"] == env["no_proxy"] == ""
    assert env["NODE_USE_ENV_PROXY"] == "1"
    assert env["NODE_OPTIONS"].endswith("node_proxy_preload.cjs")
    assert env["NODE_EXTRA_CA_CERTS"] == str(tmp_path / "bundle.pem")
