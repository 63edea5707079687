#!/usr/bin/env bash
# Create .venv with Python 3.13 and the pinned dependencies (requirements.lock). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
want=$(tr -d ' \n' < .python-version)

is_want() { "$1" -c "import sys; sys.exit(0 if '%d.%d' % sys.version_info[:2] == '$want' else 1)" 2>/dev/null; }

find_python() {
  local c
  for c in "python$want" python3; do
    if command -v "$c" >/dev/null 2>&1 && is_want "$(command -v "$c")"; then command -v "$c"; return 0; fi
  done
  if command -v pyenv >/dev/null 2>&1; then
    c=$(pyenv which "python$want" 2>/dev/null || true)
    if [ -n "$c" ] && is_want "$c"; then echo "$c"; return 0; fi
    for d in "$(pyenv root)"/versions/"$want"*; do
      if [ -x "$d/bin/python3" ] && is_want "$d/bin/python3"; then echo "$d/bin/python3"; return 0; fi
    done
  fi
  if command -v uv >/dev/null 2>&1; then
    c=$(UV_PYTHON_DOWNLOADS=never uv python find "$want" 2>/dev/null || true)
    if [ -n "$c" ] && is_want "$c"; then echo "$c"; return 0; fi
  fi
  return 1
}

if [ -x .venv/bin/python ] && ! is_want .venv/bin/python; then rm -rf .venv; fi
if [ ! -x .venv/bin/python ]; then
  py=$(find_python) || {
    echo "agent-mesh needs Python $want (see .python-version): install it (pyenv install $want, or your OS package) and run make again." >&2
    exit 1
  }
  echo "bootstrap: creating .venv with $py" >&2
  "$py" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade 'pip>=24'
.venv/bin/python -m pip install -q --disable-pip-version-check -c requirements.lock -e '.[dev]'
