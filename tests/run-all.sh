#!/usr/bin/env bash
# The whole test suite: sets up what it needs (as root: Debian packages, npm modules), then
# runs the Rust tests of every crate and the tests with real peers. Exits non-zero if any
# part fails. Usage: tests/run-all.sh
set -uo pipefail
cd "$(dirname "$0")/.."

bash .ci/setup.sh || { echo "setup failed" >&2; exit 1; }

failed=()
run() {
  local name=$1; shift
  echo "=== $name: $*"
  if "$@"; then echo "=== $name: ok"; else echo "=== $name: FAILED"; failed+=("$name"); fi
}

run cargo-test cargo test --workspace --no-fail-fast
# The router (feed) build leaves features out (docs/size.md): its library and what rpcd
# answers for them (e.g. no setup check) are tested as built for the router.
run cargo-test-router cargo test -p mailbag --no-default-features --features toml-config \
  --no-fail-fast --lib --test rpcd
for t in tests/*/run.sh; do
  [ -x "$t" ] || continue
  run "$(basename "$(dirname "$t")")" "$t"
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: ${failed[*]}"
  exit 1
fi
echo "all test groups passed"
