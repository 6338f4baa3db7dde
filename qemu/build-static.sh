#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds stripped, fully static musl binaries of mailbag for router CPUs and prints their sizes.
#
#   qemu/build-static.sh [--tiny|--feed] [--map] [TARGET...]   default: all of $ALL_TARGETS
#
# Output: qemu/build/bin/<target>/mailbag. One CARGO_TARGET_DIR per target (target/cross-<t>)
# so building one target never invalidates another.
#
# --tiny (nightly targets only): `-Cpanic=immediate-abort` and std's `optimize_for_size`.
# Drops std's panic message/backtrace machinery (~400 KiB; mipsel 1.70 -> 1.30 MiB); a
# panic then kills the process with SIGILL/SIGABRT and no message (procd respawns it).
#
# --feed: as the OpenWrt packages feed builds the package: the CARGO_PROFILE_RELEASE_*
# variables that lang/rust/rust-values.mk puts on cargo's command line (they override
# Cargo.toml: panic=unwind, overflow checks on), then the overrides and cargo features the
# feed Makefile adds (openwrt-package/mailbag/Makefile: MAILBAG_CARGO_VARS,
# RUST_PKG_FEATURES, MAILBAG_CARGO_ARGS), read from the Makefile itself so this measures
# what the SDK would build (MAILBAG_BUILD_STD=0 as for the Makefile). Output:
# qemu/build/bin-feed/<target>/mailbag.
#
# --map: also keep an unstripped copy (mailbag.unstripped) for qemu/size-breakdown.sh.
#
# How each target is built (these settings were found to work on Debian 12 x86_64):
# - aarch64-unknown-linux-musl (and x86_64-unknown-linux-musl, which the benchmark uses to
#   measure the memory of a musl build natively): stable Rust (rustup target add), zig as
#   the C compiler and linker (cargo-zigbuild), because Debian has no aarch64 musl gcc.
# - mips-, mipsel-, armv7-unknown-linux-musl*: tier 3 / no prebuilt std for these with our
#   settings, so nightly `-Zbuild-std`; `-C relocation-model=static` because a static,
#   non-PIE executable is what we want on MIPS; `-C link-self-contained=no` so zig's own
#   musl and crt objects are used (rustup has no self-contained crt1.o for these targets).
# - littlefs2-sys runs bindgen for the target: see qemu/zig-env.sh.
# zig and cargo-zigbuild come from PyPI, pinned, in a venv under target/ (qemu/zig-env.sh).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

ALL_TARGETS="aarch64-unknown-linux-musl mipsel-unknown-linux-musl mips-unknown-linux-musl armv7-unknown-linux-musleabihf"
NIGHTLY=${MAILBAG_NIGHTLY:-nightly}
out=$root/qemu/build/bin
# shellcheck source=qemu/zig-env.sh
. "$root/qemu/zig-env.sh"
zig_env_setup

tiny=0 feed=0 map=0
while [ $# -gt 0 ]; do
  case $1 in
    --tiny) tiny=1; shift ;;
    --feed) feed=1; out=$root/qemu/build/bin-feed; shift ;;
    --map) map=1; shift ;;
    *) break ;;
  esac
done

# The variables rust-values.mk (CARGO_PKG_CONFIG_VARS) sets for every Rust package.
FEED_PROFILE_VARS=(
  CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1
  CARGO_PROFILE_RELEASE_DEBUG=false
  CARGO_PROFILE_RELEASE_DEBUG_ASSERTIONS=false
  CARGO_PROFILE_RELEASE_LTO=true
  CARGO_PROFILE_RELEASE_OPT_LEVEL=z
  CARGO_PROFILE_RELEASE_OVERFLOW_CHECKS=true
  CARGO_PROFILE_RELEASE_PANIC=unwind
  CARGO_PROFILE_RELEASE_RPATH=false
)
makefile=$root/openwrt-package/mailbag/Makefile
# make_list NAME: the words of a `NAME:= \` block of the feed Makefile (continued lines).
make_list() {
  sed -n "/^$1:=/,/[^\\]\$/p" "$makefile" | sed "s/^$1:=//; s/\\\\\$//" | tr -s ' \t' '\n' | sed '/^$/d'
}
feed_env=() feed_args=() feed_rustflags=""
if [ "$feed" -eq 1 ]; then
  mapfile -t pkg_vars < <(make_list MAILBAG_CARGO_VARS)
  feed_env=("${FEED_PROFILE_VARS[@]}" "${pkg_vars[@]}")
  mapfile -t feed_args < <(make_list MAILBAG_CARGO_ARGS)
  features=$(make_list RUST_PKG_FEATURES | tr '\n' ',' | sed 's/,$//')
  feed_rustflags=$(make_list MAILBAG_RUSTFLAGS | tr '\n' ' ')
  # As the Makefile: std rebuilt unless MAILBAG_BUILD_STD=0.
  if [ "${MAILBAG_BUILD_STD:-1}" != 0 ]; then
    mapfile -t std_vars < <(make_list MAILBAG_STD_CARGO_VARS)
    feed_env+=("${std_vars[@]}")
    feed_rustflags="$feed_rustflags $(make_list MAILBAG_STD_RUSTFLAGS | tr '\n' ' ')"
  fi
  [ -z "$features" ] || feed_args+=(--features "$features")
fi
[ "$map" -eq 0 ] || feed_env+=(CARGO_PROFILE_RELEASE_STRIP=false)

build_one() {
  local t=$1 toolchain=() rustflags="-C target-feature=+crt-static" zflags=() dir=cross
  case $t in
    aarch64-*|x86_64-*)
      rustup target add "$t" >/dev/null 2>&1
      # The feed build may rebuild std (MAILBAG_STD_CARGO_VARS): that needs rust-src.
      [ "$feed" -eq 0 ] || rustup component add rust-src >/dev/null 2>&1 ;;
    *)
      rustup component add rust-src --toolchain "$NIGHTLY" >/dev/null 2>&1
      toolchain=("+$NIGHTLY")
      zflags=("-Zbuild-std=std,panic_abort")
      rustflags="$rustflags -C relocation-model=static -C link-self-contained=no"
      if [ "$feed" -eq 1 ]; then
        dir=cross-feed
      elif [ "$tiny" -eq 1 ]; then
        zflags+=("-Zbuild-std-features=optimize_for_size")
        rustflags="$rustflags -Zunstable-options -Cpanic=immediate-abort"
        dir=cross-tiny
      fi ;;
  esac
  echo "== $t" >&2
  rustflags="$rustflags $feed_rustflags"
  [ "$feed" -eq 0 ] || echo "   feed environment: ${feed_env[*]} ${feed_args[*]} RUSTFLAGS+=$feed_rustflags" >&2
  env "$(zig_bindgen_env "$t")" "${feed_env[@]}" \
    RUSTFLAGS="$rustflags" CARGO_TARGET_DIR="$root/target/$dir-$t" \
    cargo "${toolchain[@]}" zigbuild "${zflags[@]}" --release --locked --target "$t" \
      -p mailbag --bin mailbag "${feed_args[@]}" >&2 || return 1
  mkdir -p "$out/$t"
  cp "$root/target/$dir-$t/$t/release/mailbag" "$out/$t/mailbag"
  if [ "$map" -eq 1 ]; then
    cp "$out/$t/mailbag" "$out/$t/mailbag.unstripped"
    case $t in
      mips*) mips-linux-gnu-strip -s -R .pdr "$out/$t/mailbag" ;;
      *) llvm-strip -s "$out/$t/mailbag" ;;
    esac
  fi
  case $t in
    mips*)
      # LLVM emits .pdr (MIPS procedure descriptors, ~150 KiB, never loaded) and the linker's
      # --strip-all keeps it; binutils' objcopy handles either endianness.
      if command -v mips-linux-gnu-objcopy >/dev/null; then
        mips-linux-gnu-objcopy -R .pdr "$out/$t/mailbag"
      else
        echo "note: mips-linux-gnu-objcopy missing; .pdr left in (apt binutils-mips-linux-gnu)" >&2
      fi ;;
  esac
}

targets=("$@")
[ ${#targets[@]} -gt 0 ] || read -r -a targets <<<"$ALL_TARGETS"
status=0
for t in "${targets[@]}"; do
  if build_one "$t"; then
    printf '%-34s %9d bytes  %s\n' "$t" "$(stat -c %s "$out/$t/mailbag")" \
      "$(file -b "$out/$t/mailbag" | cut -d, -f1-2,5 | tr -s ' ')"
  else
    echo "$t: BUILD FAILED" >&2; status=1
  fi
done
exit "$status"
