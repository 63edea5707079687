"""Shared helpers for tests that start real processes and servers (e2e, mcpwrap, proxy, serve, browser).

    from tests.support import Proc, Targets, free_port, run

- `free_port()`, `wait_for_port(port, timeout=…)`: loopback ports (net.py).
- `Proc(argv, env=…, name=…)`: a server in its own process group; `wait_for_line(regex, timeout=…)`,
  `wait_for_port(port, timeout=…)` (and `async_…` twins); stopping kills the whole group (proc.py).
- `run(argv, timeout=…)`: a one-shot command with the same group kill on timeout (proc.py).
- `pid_running(pid)`, `pid_gone(pid, timeout)`: whether a process (not a zombie) runs, or stopped (proc.py).
- `Targets()`: paths of the installed third-party targets and `stdio_server(name, workdir)` (targets.py).
- `system_ca_bundle()`, `combined_ca_bundle(ca, dest)`, `ca_env(bundle)`, `proxy_env(url, bundle)` (ca.py).
- `short_tmp_dir()`: a short /tmp folder for sockets and browser profiles (tmp.py).
"""

from tests.support.ca import ca_env, combined_ca_bundle, proxy_env, system_ca_bundle
from tests.support.net import free_port, port_is_open, wait_for_port
from tests.support.proc import Proc, ProcExitedError, pid_gone, pid_running, run
from tests.support.targets import ServerCommand, TargetMissingError, Targets, make_git_repo
from tests.support.tmp import short_tmp_dir

__all__ = [
    "Proc",
    "ProcExitedError",
    "ServerCommand",
    "TargetMissingError",
    "Targets",
    "ca_env",
    "combined_ca_bundle",
    "free_port",
    "make_git_repo",
    "pid_gone",
    "pid_running",
    "port_is_open",
    "proxy_env",
    "run",
    "short_tmp_dir",
    "system_ca_bundle",
    "wait_for_port",
]
