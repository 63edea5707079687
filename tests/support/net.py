"""Loopback ports for tests: pick a free one, wait (bounded) until something listens on it."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

LOOPBACK = "127.0.0.1"
POLL_SECONDS = 0.05


def free_port(host: str = LOOPBACK) -> int:
    """Return a TCP port that was free on `host` a moment ago (the kernel picks it).

    Example:
        port = free_port()
        Proc([prism, "mock", "-h", "127.0.0.1", "-p", str(port), spec])
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_is_open(port: int, host: str = LOOPBACK) -> bool:
    """True when a TCP connect to host:port succeeds right now."""
    try:
        with socket.create_connection((host, port), timeout=POLL_SECONDS * 4):
            return True
    except OSError:
        return False


def wait_for_port(
    port: int,
    host: str = LOOPBACK,
    *,
    timeout: float = 10.0,
    alive: Callable[[], bool] | None = None,
    what: str = "",
) -> None:
    """Block until host:port accepts a connection; TimeoutError after `timeout` seconds.

    `alive`, when given, is checked on every poll: once it returns False the wait stops with a
    RuntimeError instead of running out the clock on a process that already died.

    Example:
        wait_for_port(port, timeout=5)      # a server you started in a thread
    """
    deadline = time.monotonic() + timeout
    label = what or f"{host}:{port}"
    while not port_is_open(port, host):
        if alive is not None and not alive():
            raise RuntimeError(f"{label} exited before it listened on {host}:{port}")
        if time.monotonic() >= deadline:
            raise TimeoutError(f"nothing listened on {host}:{port} within {timeout:g}s ({label})")
        time.sleep(POLL_SECONDS)
