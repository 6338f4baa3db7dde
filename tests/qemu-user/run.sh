#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Cross-architecture tests under qemu-user:
#  1. aarch64-unknown-linux-musl (static, zig-linked): the hal and mailbag library tests
#     (spool, SMTP session, policy, config, ...) run under qemu-aarch64-static;
#  2. mips-unknown-linux-gnu (32-bit big-endian, nightly -Zbuild-std): the hal and mailbag
#     library tests and the power-cut test under qemu-mips-static;
#  3. the big-endian build writes a fresh spool image (examples/spool_fixture) and the native
#     x86_64 endianness test reads it (MAILBAG_BE_SPOOL_IMAGE), so "a spool written on
#     big-endian MIPS reads the same on x86_64" is proven from this build, not a stored file;
#  4. every static binary already built by qemu/build-static.sh (qemu/build/bin/*/mailbag)
#     runs as a daemon under its qemu-*-static, takes a message over SMTP (250), stops on
#     SIGTERM, and its spool image then lists the message (skipped, saying so, if none built).
# Exits non-zero on any failure; prints how long each part took.
#
#   tests/qemu-user/run.sh [aarch64] [mips] [endianness] [static]     default: all four
#   (or the parts named in MAILBAG_QEMU_USER_PARTS)
#
# MAILBAG_QEMU_USER_MIPS_TESTS overrides which mips test targets run (cargo args).
# MAILBAG_POWERCUT_POINTS (default here 150, evenly spread over the workload) bounds the
# power-cut test under emulation; the native run checks 2400 points.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root" || exit 1
# shellcheck source=qemu/zig-env.sh
. qemu/zig-env.sh
NIGHTLY=${MAILBAG_NIGHTLY:-nightly}
MIPS=mips-unknown-linux-gnu
A64=aarch64-unknown-linux-musl
parts=("$@")
# Without arguments: MAILBAG_QEMU_USER_PARTS (space-separated), else all four.
if [ ${#parts[@]} -eq 0 ]; then
  read -ra parts <<< "${MAILBAG_QEMU_USER_PARTS:-aarch64 mips endianness static}"
fi

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
    cargo-zigbuild test --no-fail-fast --locked --target "$A64" -p mailbag-hal -p mailbag --lib
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
  MAILBAG_POWERCUT_POINTS=${MAILBAG_POWERCUT_POINTS:-150} \
    cargo "+$NIGHTLY" "$1" -Zbuild-std --locked --target "$MIPS" "${@:2}"
}

mips_tests() {
  local sel
  read -r -a sel <<<"${MAILBAG_QEMU_USER_MIPS_TESTS:--p mailbag-hal -p mailbag --lib --test powercut}"
  mips_cargo test --no-fail-fast "${sel[@]}"
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

# The qemu-user emulator for a static binary, from its ELF header.
emulator_for() {
  case $(file -b "$1") in
    *"ARM aarch64"*) echo qemu-aarch64-static ;;
    *"32-bit LSB"*MIPS*) echo qemu-mipsel-static ;;
    *"32-bit MSB"*MIPS*) echo qemu-mips-static ;;
    *"32-bit LSB"*ARM*) echo qemu-arm-static ;;
    *x86-64*) echo env ;;   # the host's own static musl build (the benchmarks' memory cells) runs natively
    *) return 1 ;;
  esac
}

# One static binary as a daemon under qemu-user: SMTP in, SIGTERM, spool inspected.
static_one() {
  local bin=$1 emu dir port dead pid rc=0
  emu=$(emulator_for "$bin") || { echo "unknown architecture: $(file -b "$bin")"; return 1; }
  dir=$(mktemp -d /tmp/mailbag-qemu-user.XXXXXX) || return 1
  read -r port dead < <(python3 -c 'import socket
s=[socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')
  cat > "$dir/mailbag.toml" <<TOML
[smtp]
hostname = "qemu-user.example.test"
listen = ["127.0.0.1:$port"]
[policy]
domains = ["example.test"]
[spool]
path = "$dir/spool.img"
size = 1048576
max-bytes = 524288
[relay]
next-hops = ["127.0.0.1:$dead"]
[firewall]
mode = "off"
[daemon]
control-socket = "$dir/control.sock"
TOML
  timeout -s KILL 300 "$emu" "$bin" run --config "$dir/mailbag.toml" > "$dir/log" 2>&1 &
  pid=$!
  python3 - "$port" <<'PY' || rc=1
import smtplib, socket, sys, time
port = int(sys.argv[1])
deadline = time.monotonic() + 120   # TLS key generation under emulation takes a while
while True:
    try:
        s = smtplib.SMTP("127.0.0.1", port, timeout=60)
        break
    except OSError:
        if time.monotonic() > deadline:
            sys.exit("daemon did not listen within 120 s")
        time.sleep(0.5)
refused = s.sendmail("alice@sender.test", ["bob@example.test"], "Subject: qemu-user\r\n\r\nhi\r\n")
assert refused == {}, refused
s.quit()
PY
  kill -TERM "$pid" 2>/dev/null
  wait "$pid" || { echo "daemon exit status $? after SIGTERM"; rc=1; }
  if [ $rc -eq 0 ]; then
    "$emu" "$bin" spool inspect "$dir/spool.img" > "$dir/inspect" 2>&1 || rc=1
    grep -q "1 message" "$dir/inspect" && grep -q "alice@sender.test -> bob@example.test" "$dir/inspect" || rc=1
  fi
  [ $rc -eq 0 ] || { echo "--- daemon log"; cat "$dir/log"; echo "--- inspect"; cat "$dir/inspect" 2>/dev/null; }
  rm -rf "$dir"
  return $rc
}

static_binaries() {
  local bins=() b t0 rc=0
  for b in qemu/build/bin/*/mailbag; do [ -x "$b" ] && bins+=("$b"); done
  if [ ${#bins[@]} -eq 0 ]; then
    echo "SKIPPED: no static binaries (run qemu/build-static.sh first)"
    return 0
  fi
  for b in "${bins[@]}"; do
    t0=$(now)
    if static_one "$b"; then echo "ok: $b ($(stat -c %s "$b") bytes) in $(( $(now) - t0 ))s"
    else echo "FAILED: $b"; rc=1; fi
  done
  return $rc
}

for p in "${parts[@]}"; do
  case $p in
    aarch64) part aarch64 aarch64_tests ;;
    mips) part mips mips_tests ;;
    endianness) part endianness endianness ;;
    static) part static static_binaries ;;
    *) echo "unknown part $p (aarch64, mips, endianness, static)" >&2; exit 2 ;;
  esac
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "qemu-user: FAILED: ${failed[*]}"
  exit 1
fi
echo "qemu-user: ok"
