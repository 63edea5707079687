#!/usr/bin/env bash
# Create .venv with Python 3.13 and the pinned dependencies (requirements.lock). Idempotent.
# Says what it does, step by step, with a package counter while pip works (the first run takes a while).
# `scripts/bootstrap.sh --find-python` only prints the Python it would use (scripts/install.sh asks).
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

no_python() {
  echo "agent-mesh needs Python $want (see .python-version): install it (pyenv install $want, or your OS package) and run make again." >&2
  exit 1
}

if [ "${1:-}" = "--find-python" ]; then
  find_python || no_python
  exit 0
fi

say() { echo "bootstrap: $*" >&2; }
started=$SECONDS

# pip's output, shortened to a counter on one line (a terminal) or one line per package (a log).
progress() {
  local n=0 line name
  while IFS= read -r line; do
    echo "$line" >> .venv/bootstrap.log
    case "$line" in
      Collecting\ *|Requirement\ already\ satisfied:\ *|Obtaining\ *)
        n=$((n + 1))
        name=${line#Collecting }; name=${name#Requirement already satisfied: }; name=${name%% *}
        if [ -t 2 ]; then printf '\r  %3d %s\033[K' "$n" "$name" >&2
        else echo "  $n $name" >&2
        fi ;;
      Installing\ collected\ packages:*)
        [ -t 2 ] && printf '\r\033[K' >&2
        echo "  installing $(echo "${line#*: }" | tr ',' '\n' | wc -l) packages into .venv…" >&2 ;;
    esac
  done
  [ -t 2 ] && printf '\r\033[K' >&2
  return 0
}

if [ -x .venv/bin/python ] && ! is_want .venv/bin/python; then
  say "removing .venv: it is not Python $want"
  rm -rf .venv
fi
if [ ! -x .venv/bin/python ]; then
  say "step 1/3: looking for Python $want"
  py=$(find_python) || no_python
  say "step 2/3: creating .venv with $py"
  "$py" -m venv .venv
else
  say "step 1-2/3: .venv exists (Python $want)"
fi
say "step 3/3: installing agent-mesh (editable) and its pinned dependencies; the first time takes a minute"
: > .venv/bootstrap.log
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade 'pip>=24' >> .venv/bootstrap.log 2>&1
if ! .venv/bin/python -m pip install --disable-pip-version-check -c requirements.lock -e '.[dev]' 2>&1 | progress; then
  say "pip failed; the last lines of .venv/bootstrap.log:"
  tail -n 20 .venv/bootstrap.log >&2
  exit 1
fi
say "ready in $((SECONDS - started)) s: .venv/bin/agent-mesh and .venv/bin/mcpwrap (make install puts them on PATH)"
