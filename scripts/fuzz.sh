#!/usr/bin/env bash
# Fuzz the parsers (issue 11 item 16) within a time bound per target.
#
# Two kinds of target. Coverage-guided, with AFL++ through afl.rs (which runs on stable Rust;
# `cargo install cargo-afl` once): the crate `fuzz/` (outside the workspace), one binary per input
# surface, seeded from `fuzz/seeds/<target>`:
#
#   afl        fuzz/src/bin/requests.rs   request bodies: JSON, card refusal, payments, refunds,
#                                         payment methods, leases; currencies, VINs, stored methods
#              fuzz/src/bin/packages.rs   plugin packages (tar, tar.gz) and plugin.toml manifests
#
# Crashes AFL finds are copied to `fuzz/regressions/<binary>/`: commit them, and every later run
# replays them first (a regression test), then fix the parser. And proptest property tests over
# arbitrary (and structure-aware) input, named `fuzz_*`, which plain `cargo test` also runs:
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
#   FUZZ_SECS=60 scripts/fuzz.sh afl        # the AFL++ targets only
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECS=${FUZZ_SECS:-60}
selected=("$@")
[ ${#selected[@]} -eq 0 ] && selected=(leases payments card registry webhooks afl)
failed=0
summary=()

# AFL++ (coverage-guided): each binary for FUZZ_SECS, after replaying the committed crashes.
if [[ " ${selected[*]} " == *" afl "* ]]; then
  if ! cargo afl --version >/dev/null 2>&1; then
    echo "fuzz: afl: cargo-afl is not installed (cargo install cargo-afl); skipped" >&2
    summary+=("afl       not run: cargo-afl is not installed")
    failed=1
  else
    echo "fuzz: building the AFL++ targets (cargo afl build --release in fuzz/)"
    (cd fuzz && cargo afl build --release --quiet)
    for bin in requests packages; do
      for input in fuzz/regressions/$bin/*; do
        [ -f "$input" ] || continue
        if ! fuzz/target/release/$bin <"$input" >/dev/null 2>&1; then
          echo "fuzz: afl: $bin still crashes on $input" >&2
          failed=1
        fi
      done
      out="fuzz/out/$bin"
      rm -rf "$out"
      mkdir -p fuzz/out
      AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1 \
        cargo afl fuzz -V "$FUZZ_SECS" -t 5000 -i "fuzz/seeds/$bin" -o "$out" "fuzz/target/release/$bin" >"/tmp/fuzz-afl-$bin.log" 2>&1 || true
      stats="$out/default/fuzzer_stats"
      execs=$(awk -F': *' '$1 ~ /^execs_done/ {print $2}' "$stats" 2>/dev/null || echo "?")
      edges=$(awk -F': *' '$1 ~ /^edges_found/ {print $2}' "$stats" 2>/dev/null || echo "?")
      crashes=$(find "$out/default/crashes" -type f -name 'id:*' 2>/dev/null | wc -l)
      if [ ! -f "$stats" ]; then
        outcome="FAILED to start (see /tmp/fuzz-afl-$bin.log)"; failed=1
      elif [ "$crashes" -gt 0 ]; then
        mkdir -p "fuzz/regressions/$bin"
        cp "$out"/default/crashes/id:* "fuzz/regressions/$bin/"
        outcome="FAILED: $crashes crashes, copied to fuzz/regressions/$bin"; failed=1
      else
        outcome="ok"
      fi
      summary+=("$(printf 'afl:%-9s %9s execs, %5s edges  %4ss  %s' "$bin" "$execs" "$edges" "$FUZZ_SECS" "$outcome")")
    done
  fi
fi

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
