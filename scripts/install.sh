#!/usr/bin/env bash
# Put `agent-mesh` and `mcpwrap` on PATH, installed from this checkout with the pinned dependencies.
#   uv on PATH    -> uv tool install (its own environment, commands in uv's tool bin dir)
#   pipx on PATH  -> pipx install
#   neither       -> a venv in $AGENT_MESH_HOME/venv (default ~/.local/share/agent-mesh/venv),
#                    symlinks in $BIN_DIR (default ~/.local/bin)
# INSTALL_WITH=uv|pipx|venv picks one. Run again to upgrade; `--uninstall` (make uninstall) removes it.
set -euo pipefail
cd "$(dirname "$0")/.."
want=$(tr -d ' \n' < .python-version)
with=${INSTALL_WITH:-}
if [ -z "$with" ]; then
  if command -v uv >/dev/null 2>&1; then with=uv
  elif command -v pipx >/dev/null 2>&1; then with=pipx
  else with=venv
  fi
fi
say() { echo "install: $*" >&2; }

if [ "${1:-}" = "--uninstall" ]; then
  home=${AGENT_MESH_HOME:-$HOME/.local/share/agent-mesh}
  bin=${BIN_DIR:-$HOME/.local/bin}
  if command -v uv >/dev/null 2>&1 && uv tool list 2>/dev/null | grep -q '^agent-mesh '; then
    uv tool uninstall agent-mesh && say "removed the uv tool agent-mesh"
  fi
  if command -v pipx >/dev/null 2>&1 && pipx list --short 2>/dev/null | grep -q '^agent-mesh '; then
    pipx uninstall agent-mesh && say "removed the pipx package agent-mesh"
  fi
  for cmd in agent-mesh mcpwrap; do  # only our own links: a command installed otherwise is left alone
    if [ -L "$bin/$cmd" ] && [ "$(readlink "$bin/$cmd")" = "$home/venv/bin/$cmd" ]; then
      rm -f "$bin/$cmd" && say "removed $bin/$cmd"
    fi
  done
  if [ -d "$home/venv" ]; then rm -rf "$home/venv" && say "removed $home/venv"; fi
  exit 0
fi

case "$with" in
  uv)
    say "uv tool install . (Python $want, pinned by requirements.lock)"
    uv tool install --force --python "$want" --constraints "$PWD/requirements.lock" .
    bin=$(uv tool dir --bin)
    ;;
  pipx)
    py=$(scripts/bootstrap.sh --find-python)
    say "pipx install . (with $py, pinned by requirements.lock)"
    pipx install --force --python "$py" --pip-args="-c $PWD/requirements.lock" .
    bin=${PIPX_BIN_DIR:-$HOME/.local/bin}
    ;;
  venv)
    home=${AGENT_MESH_HOME:-$HOME/.local/share/agent-mesh}
    bin=${BIN_DIR:-$HOME/.local/bin}
    py=$(scripts/bootstrap.sh --find-python)
    say "step 1/3: a virtual environment in $home/venv (with $py)"
    rm -rf "$home/venv"
    mkdir -p "$home"
    "$py" -m venv "$home/venv"
    say "step 2/3: installing agent-mesh and its pinned dependencies (a minute on a fresh machine)"
    "$home/venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade 'pip>=24'
    "$home/venv/bin/python" -m pip install -q --disable-pip-version-check -c requirements.lock .
    say "step 3/3: linking agent-mesh and mcpwrap into $bin"
    mkdir -p "$bin"
    ln -sfn "$home/venv/bin/agent-mesh" "$bin/agent-mesh"
    ln -sfn "$home/venv/bin/mcpwrap" "$bin/mcpwrap"
    ;;
  *)
    say "INSTALL_WITH=$with: choose uv, pipx or venv"
    exit 2
    ;;
esac

say "agent-mesh and mcpwrap are in $bin"
case ":$PATH:" in
  *":$bin:"*) say "try: agent-mesh --version" ;;
  *) say "$bin is not on your PATH: add it (export PATH=\"$bin:\$PATH\"), then: agent-mesh --version" ;;
esac
