#!/usr/bin/env bash
# Install the real third-party servers and clients the e2e tests drive (see shared TARGETS.md). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .targets
