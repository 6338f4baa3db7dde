#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Cross-architecture tests under qemu-user:
#  1. aarch64-unknown-linux-musl (static, zig-linked): the hal and mailbag library tests
#     (spool, SMTP session, policy, config, ...) run under qemu-aarch64-static;
#  2. mips-unknown-linux-gnu (32-bit big-endian, nightly -Zbuild-std): the hal and mailbag
#     library tests and the power-cut test under qemu-mips-static;
#  3. the big-endian build writes a fresh spool image (examples/spool_fixture) and the native
#     x86_64 endianness test reads it (MAILBAG_BE_SPOOL_IMAGE), so "a spool written on
#     big-endian MIPS reads the same on x86_64" is proven from this build, not a stored file.
# Exits non-zero on any failure; prints how long each part took.
#
#   tests/qemu-user/run.sh [aarch64] [mips] [endianness]     default: all three
#
# MAILBAG_QEMU_USER_MIPS_TESTS overrides which mips test targets run (cargo args).
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root" || exit 1
# shellcheck source=qemu/zig-env.sh
. qemu/zig-env.sh
NIGHTLY=${MAILBAG_NIGHTLY:-nightly}
MIPS=mips-unknown-linux-gnu
A64=aarch64-unknown-linux-musl
parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(aarch64 mips endianness)

failed=()
now() { date +%s; }
part() {
  local name=$1 t0 rc; shift
  t0=$(now)
  echo "=== qemu-user $name"
  "$@"; rc=$?
  echo "=== qemu-user $name: $([ $rc -eq 0 ] && echo ok || echo FAILED) in $(( $(now) - t0 ))s"
  [ $rc -eq 0 ] || failed+=("$name")
}

# The lib tests of hal and mailbag, for aarch64 musl under qemu-aarch64-static.
aarch64_tests() {
  rustup target add "$A64" >/dev/null 2>&1 || return 1
  zig_env_setup || return 1
  env "$(zig_bindgen_env "$A64")" \
    CARGO_TARGET_DIR="$root/target/cross-test-$A64" \
    CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_RUNNER=qemu-aarch64-static \
    cargo-zigbuild test --locked --target "$A64" -p mailbag-hal -p mailbag --lib
}

# Big-endian MIPS (glibc, Debian's cross gcc): nightly with -Zbuild-std (tier 3 target).
mips_cargo() {
  rustup component add rust-src --toolchain "$NIGHTLY" >/dev/null 2>&1 || return 1
  CARGO_TARGET_DIR="$root/target/cross-test-$MIPS" \
  CARGO_TARGET_MIPS_UNKNOWN_LINUX_GNU_LINKER=mips-linux-gnu-gcc \
  CARGO_TARGET_MIPS_UNKNOWN_LINUX_GNU_RUNNER=qemu-mips-static \
  CC_mips_unknown_linux_gnu=mips-linux-gnu-gcc \
  BINDGEN_EXTRA_CLANG_ARGS_mips_unknown_linux_gnu="--sysroot=/usr/mips-linux-gnu" \
  QEMU_LD_PREFIX=/usr/mips-linux-gnu \
    cargo "+$NIGHTLY" "$1" -Zbuild-std --locked --target "$MIPS" "${@:2}"
}

mips_tests() {
  local sel
  read -r -a sel <<<"${MAILBAG_QEMU_USER_MIPS_TESTS:--p mailbag-hal -p mailbag --lib --test powercut}"
  mips_cargo test "${sel[@]}"
}

# A spool image written by the big-endian build, read by the native x86_64 test.
endianness() {
  local img
  img=$(mktemp /tmp/mailbag-be-spool.XXXXXX.img) || return 1
  rm -f "$img"   # spool_fixture creates it
  mips_cargo run -p mailbag --example spool_fixture -- "$img" || { rm -f "$img"; return 1; }
  file "$img" >/dev/null
  MAILBAG_BE_SPOOL_IMAGE=$img cargo test --locked -p mailbag --test endianness
  local rc=$?
  rm -f "$img"
  return $rc
}

for p in "${parts[@]}"; do
  case $p in
    aarch64) part aarch64 aarch64_tests ;;
    mips) part mips mips_tests ;;
    endianness) part endianness endianness ;;
    *) echo "unknown part $p (aarch64, mips, endianness)" >&2; exit 2 ;;
  esac
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "qemu-user: FAILED: ${failed[*]}"
  exit 1
fi
echo "qemu-user: ok"
