#!/usr/bin/env bash
# The attack suite (issue 11): builds the release host and the plugins, then runs every attack
# against a live `host serve` on PostgreSQL + Redis and prints the table. Options: --help.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${ATTACK_NO_BUILD:-0}" != 1 ]; then
    cargo build --release -p host
    cargo xtask plugins
fi
command -v st >/dev/null || python3 -m pip install --quiet schemathesis
exec python3 -m scripts.attack "$@"
