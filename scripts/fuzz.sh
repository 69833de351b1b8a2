#!/usr/bin/env bash
# Fuzz the parsers (issue 11 item 16) within a time bound per target.
#
# Only stable Rust is available here, so there is no libFuzzer/cargo-fuzz; the targets are
# proptest property tests over arbitrary (and structure-aware) input, named `fuzz_*`:
#
#   leases     services/leases/tests/fuzz.rs          money, currencies, VINs, lease requests, schedules
#   payments   services/payments/tests/fuzz.rs         payment/refund/payment-method requests, IBAN/BIC/mandates
#   card       services/payments/src/card.rs          card-number detection (fuzz_card_detection)
#   registry   plugin-registry/tests/fuzz.rs           plugin.toml manifests, .tar/.tar.gz package reading
#   webhooks   host/tests/providers.rs (mod fuzz)      webhook headers+bodies into the stripe and bank plugins,
#                                                      built to .wasm and run in wasmtime by the host's runtime
#
# Plain `cargo test` runs each with a few cases; this script sets PROPTEST_CASES from FUZZ_SECS
# (seconds per target, default 60) and each target's measured rate on this machine, and stops a
# target that overruns at twice its bound. A failing case is shrunk and written by proptest to
# `<test>.proptest-regressions` beside the test: commit that file and the case is replayed on every
# run from then on (a regression test), then fix the parser.
#
#   FUZZ_SECS=60 scripts/fuzz.sh            # all targets, about a minute each
#   FUZZ_SECS=5 scripts/fuzz.sh payments    # one target
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECS=${FUZZ_SECS:-60}
selected=("$@")
[ ${#selected[@]} -eq 0 ] && selected=(leases payments card registry webhooks)

# name | cargo arguments | test filter | cases per second (per property, measured on 2 cores)
targets=(
  "leases|-p lessor-leases --test fuzz|fuzz_|400"
  "payments|-p lessor-payments --test fuzz|fuzz_|100"
  "card|-p lessor-payments --lib|fuzz_|1500"
  "registry|-p lessor-plugin-registry --test fuzz|fuzz_|350"
  "webhooks|-p host --test providers|fuzz::|60"
)

echo "fuzz: building the targets"
for target in "${targets[@]}"; do
  IFS='|' read -r name args _ _ <<<"$target"
  [[ " ${selected[*]} " == *" $name "* ]] || continue
  # shellcheck disable=SC2086
  cargo test $args --no-run --quiet
done

failed=0
summary=()
for target in "${targets[@]}"; do
  IFS='|' read -r name args filter rate <<<"$target"
  [[ " ${selected[*]} " == *" $name "* ]] || continue
  cases=$(( FUZZ_SECS * rate ))
  [ "$cases" -lt 16 ] && cases=16
  echo "fuzz: $name: PROPTEST_CASES=$cases per property, bound ${FUZZ_SECS}s"
  started=$(date +%s)
  set +e
  # shellcheck disable=SC2086
  PROPTEST_CASES=$cases timeout --signal=INT $(( FUZZ_SECS * 2 + 30 )) \
    cargo test $args --quiet -- "$filter" 2>&1 | tee "/tmp/fuzz-$name.log" | grep -E "^test |test result|panicked|minimal failing"
  status=${PIPESTATUS[0]}
  set -e
  took=$(( $(date +%s) - started ))
  properties=$(grep -oE "test result: [a-zA-Z]+\. [0-9]+ passed" "/tmp/fuzz-$name.log" | grep -oE "[0-9]+ passed" | grep -oE "[0-9]+" || echo 0)
  case $status in
    0) outcome="ok" ;;
    124) outcome="time bound reached (no failure)" ;;
    *) outcome="FAILED (see /tmp/fuzz-$name.log and the .proptest-regressions file)"; failed=1 ;;
  esac
  summary+=("$(printf '%-9s %3s properties x %7s cases  %4ss  %s' "$name" "$properties" "$cases" "$took" "$outcome")")
done

echo
echo "fuzz summary (FUZZ_SECS=$FUZZ_SECS)"
printf '%s\n' "${summary[@]}"
exit $failed
