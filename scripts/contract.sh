#!/usr/bin/env bash
# The API contract check (issue 11, item 15): schemathesis with every check, its stateful phase
# included, against a host started here on an empty SQLite data directory, as an admin
# (`/auth/logout` excluded: it would end the session the run uses). schemathesis.toml (repository
# root) sets 200 examples per operation; CONTRACT_EXAMPLES overrides it (CI runs a short pass).
# Exits non-zero on any failure or error. HOST_BIN picks the binary (default: a debug build).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v st >/dev/null || python3 -m pip install --quiet schemathesis
if [ -z "${HOST_BIN:-}" ]; then
    cargo build --quiet -p host
    HOST_BIN=target/debug/host
fi
dir=$(mktemp -d)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export LESSOR_DATA_DIR="$dir" LESSOR_ADDR="127.0.0.1:$port" LESSOR_LOG_LEVEL=warn
# schemathesis sends thousands of requests from one address with one token: lift the limits
# (login throttling, API rate limits) that would otherwise (rightly) answer most of them 429.
export LESSOR_LOGIN_MAX_FAILURES_PER_ADDRESS=1000000 LESSOR_LOGIN_MAX_FAILURES_PER_ACCOUNT_ADDRESS=1000000 LESSOR_LOGIN_ACCOUNT_MAX_DELAY_MS=0
export LESSOR_RATE_LIMIT_PER_TOKEN=0 LESSOR_RATE_LIMIT_PER_ADDRESS=0
password="contract-check-$(date +%s)"
printf '%s\n' "$password" | "$HOST_BIN" user create --email admin@contract.test --password-stdin --role admin >/dev/null
"$HOST_BIN" serve >"$dir/host.log" 2>&1 &
host_pid=$!
trap 'kill $host_pid 2>/dev/null; wait $host_pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/ready" >/dev/null && break; sleep 0.1; done
token=$(curl -sf "http://127.0.0.1:$port/auth/login" -H 'content-type: application/json' \
    -d "{\"email\":\"admin@contract.test\",\"password\":\"$password\"}" | python3 -c 'import sys, json; print(json.load(sys.stdin)["access_token"])')
examples=()
[ -n "${CONTRACT_EXAMPLES:-}" ] && examples=(--max-examples "$CONTRACT_EXAMPLES")
st run "http://127.0.0.1:$port/api/v1/openapi.json" --checks all --exclude-path /auth/logout \
    -H "Authorization: Bearer $token" --no-color "${examples[@]}" "$@"
