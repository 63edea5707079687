#!/usr/bin/env bash
# Install the real third-party servers and clients the e2e tests drive (see shared TARGETS.md) under .targets/.
# Idempotent: each part keeps a stamp named after the hash of its pins, so a warm re-run only checks stamps.
#   npm:    package.json + package-lock.json -> .targets/npm/node_modules (npm ci)
#   PyPI:   scripts/targets/<name>.txt       -> .targets/venvs/<name> (one venv each: several pin mcp<2)
#   Debian: chromium, chromium-driver        -> apt-get, only when the binaries are missing
set -euo pipefail
cd "$(dirname "$0")/.."
T=.targets
LOGS=$T/logs
mkdir -p "$T/venvs" "$LOGS"

log() { echo "targets: $*" >&2; }
key_of() { cat "$@" | sha256sum | cut -c1-16; }

# One retry rides out a registry hiccup without hiding a real failure (the second error is the one shown).
retry() { "$@" || { log "retrying: $*"; "$@"; }; }

# pip reads machine-wide find-links that may point at folders absent here; its warnings about them are noise.
quiet_pip() { grep -v "^WARNING: Location 'file:" || true; }

# Built beside the live tree and swapped in at the end, so tests running meanwhile keep a whole tree.
install_npm() {
  local stamp next="$T/npm.next"
  stamp=".stamp-$(key_of package.json package-lock.json)"
  [ -f "$T/npm/$stamp" ] && return 0
  log "npm: installing package-lock.json into $T/npm"
  rm -rf "$next" "$T/npm.old"
  mkdir -p "$next"
  cp package.json package-lock.json "$next/"
  (cd "$next" && retry npm ci --no-audit --no-fund --loglevel=error)
  touch "$next/$stamp"
  if [ -d "$T/npm" ]; then mv "$T/npm" "$T/npm.old"; fi
  mv "$next" "$T/npm"
  rm -rf "$T/npm.old"
}

install_venv() {
  local name=$1 base=$2 lock="scripts/targets/$1.txt" dir="$T/venvs/$1" stamp
  stamp="$dir/.stamp-$(key_of "$lock" <("$base" --version))"
  [ -f "$stamp" ] && return 0
  log "pip: creating $dir from $lock"
  rm -rf "$dir"
  "$base" -m venv "$dir"
  retry "$dir/bin/python" -m pip install -q --disable-pip-version-check -r "$lock" 2>&1 | quiet_pip
  touch "$stamp"
}

install_chromium() {
  if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then return 0; fi
  if ! command -v apt-get >/dev/null || [ "$(id -u)" -ne 0 ]; then
    log "chromium: install the Debian packages chromium and chromium-driver (as root: apt-get install chromium chromium-driver)"
    return 1
  fi
  log "apt: installing chromium chromium-driver"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-cache show chromium-driver >/dev/null 2>&1 || ! apt-get install -y -qq --no-install-recommends chromium chromium-driver; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends chromium chromium-driver
  fi
}

# The venvs share the interpreter of the project's .venv (3.13, found by bootstrap.sh).
[ -x .venv/bin/python ] || scripts/bootstrap.sh
base_python="$(.venv/bin/python -c 'import sys; print(sys.base_prefix)')/bin/python3"

# Parts run in parallel (mostly network-bound); each logs to its own file, shown only when it fails.
declare -A jobs=()
run() {
  local name=$1
  shift
  "$@" >"$LOGS/$name.log" 2>&1 &
  jobs[$name]=$!
}
run npm install_npm
for name in mcp-server-time mcp-server-git mcp-server-fetch mcp-proxy httpbin langchain; do
  run "$name" install_venv "$name" "$base_python"
done
run chromium install_chromium

failed=()
for name in "${!jobs[@]}"; do
  if ! wait "${jobs[$name]}"; then
    failed+=("$name")
    echo "---- $name failed ($LOGS/$name.log):" >&2
    tail -n 40 "$LOGS/$name.log" >&2
  fi
done
if [ "${#failed[@]}" -gt 0 ]; then
  log "FAILED: ${failed[*]}"
  exit 1
fi
cat "$LOGS"/*.log | grep -E '^(targets:|added )' >&2 || true
log "all present in $T"
