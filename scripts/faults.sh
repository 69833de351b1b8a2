#!/usr/bin/env bash
# The fault suite (issue 12): kill -9 of the host, PostgreSQL restarted, Redis restarted without
# persistence, the database restored from a dump, each on a stream of payments against real
# `host serve` processes (host/tests/faults/). Runs the tests one at a time on a fresh results
# file, then prints the table from target/faults/results.jsonl (one JSON line per fault:
# fault, payments_accepted, lost, doubled, events_lost, events_doubled, recovery_ms).
#
#   scripts/faults.sh                 # the whole suite
#   scripts/faults.sh kill_9          # a test filter, passed to the test binary
#
# Needs PostgreSQL (TEST_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432/test), Redis
# (TEST_REDIS_URL, default redis://127.0.0.1:6379), PostgreSQL 15's initdb/pg_ctl in
# /usr/lib/postgresql/15/bin, pg_dump/pg_restore/psql and redis-server on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

target="${CARGO_TARGET_DIR:-target}"
results="$target/faults/results.jsonl"
mkdir -p "$target/faults"
: > "$results"

status=0
cargo test -p host --test faults -- --test-threads=1 "$@" || status=$?

python3 - "$results" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
head = ("fault", "payments accepted", "lost", "doubled", "events lost / doubled", "recovery")
table = [head] + [
    (r["fault"], str(r["payments_accepted"]), str(r["lost"]), str(r["doubled"]),
     f'{r["events_lost"]} / {r["events_doubled"]}', f'{r["recovery_ms"]} ms')
    for r in rows
]
widths = [max(len(row[i]) for row in table) for i in range(len(head))]
for n, row in enumerate(table):
    print("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))))
    if n == 0:
        print("  ".join("-" * w for w in widths))
if not rows:
    print("no fault rows were written (the tests did not get that far)")
PY
exit $status
