#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds stripped, fully static musl binaries of mailbag for router CPUs and prints their sizes.
#
#   qemu/build-static.sh [TARGET...]     default: all of $ALL_TARGETS
#
# Output: qemu/build/bin/<target>/mailbag. One CARGO_TARGET_DIR per target (target/cross-<t>)
# so building one target never invalidates another.
#
# How each target is built (these settings were found to work on Debian 12 x86_64):
# - aarch64-unknown-linux-musl: stable Rust (rustup target add), zig as the C compiler and
#   linker (cargo-zigbuild), because Debian has no aarch64 musl gcc.
# - mips-, mipsel-, armv7-unknown-linux-musl*: tier 3 / no prebuilt std for these with our
#   settings, so nightly `-Zbuild-std`; `-C relocation-model=static` because a static,
#   non-PIE executable is what we want on MIPS; `-C link-self-contained=no` so zig's own
#   musl and crt objects are used (rustup has no self-contained crt1.o for these targets).
# - littlefs2-sys runs bindgen (libclang) for the target: it only needs <stdint.h> and
#   <stdbool.h>. With -ffreestanding libclang's own builtin headers define them for the
#   target's ABI, so no target libc headers are needed. cargo-zigbuild sets
#   BINDGEN_EXTRA_CLANG_ARGS_<target_with_underscores> to zig's include dirs, which Debian's
#   libclang 14 cannot use with zig 0.17 ('stdint.h' file not found), so we set the
#   hyphenated name, which bindgen reads first.
# zig and cargo-zigbuild come from PyPI, pinned, in a venv under target/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

ALL_TARGETS="aarch64-unknown-linux-musl mipsel-unknown-linux-musl mips-unknown-linux-musl armv7-unknown-linux-musleabihf"
ZIGLANG_VERSION=0.17.1
CARGO_ZIGBUILD_VERSION=0.24.1
NIGHTLY=${MAILBAG_NIGHTLY:-nightly}
venv=${MAILBAG_ZIG_VENV:-$root/target/zig-venv}
out=$root/qemu/build/bin

# The pinned zig toolchain, installed once.
if ! "$venv/bin/python3" -c "import ziglang" 2>/dev/null \
   || [ "$("$venv/bin/pip" show ziglang 2>/dev/null | sed -n 's/^Version: //p')" != "$ZIGLANG_VERSION" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "ziglang==$ZIGLANG_VERSION" "cargo-zigbuild==$CARGO_ZIGBUILD_VERSION"
fi
clang_include=$(ls -d /usr/lib/llvm-*/lib/clang/*/include | sort -V | tail -n 1)
[ -e "$clang_include/stdint.h" ] || { echo "libclang builtin headers not found (apt-get install libclang-dev)" >&2; exit 1; }
export PATH="$venv/bin:$PATH"   # cargo-zigbuild finds zig through `python3 -m ziglang`

build_one() {
  local t=$1 toolchain=() rustflags="-C target-feature=+crt-static" zflags=()
  case $t in
    aarch64-*)
      rustup target add "$t" >/dev/null 2>&1 ;;
    *)
      rustup component add rust-src --toolchain "$NIGHTLY" >/dev/null 2>&1
      toolchain=("+$NIGHTLY")
      zflags=(-Zbuild-std=std,panic_abort)
      rustflags="$rustflags -C relocation-model=static -C link-self-contained=no" ;;
  esac
  echo "== $t" >&2
  env "BINDGEN_EXTRA_CLANG_ARGS_$t=-ffreestanding -isystem $clang_include" \
    RUSTFLAGS="$rustflags" CARGO_TARGET_DIR="$root/target/cross-$t" \
    cargo "${toolchain[@]}" zigbuild "${zflags[@]}" --release --locked --target "$t" \
      -p mailbag --bin mailbag >&2
  mkdir -p "$out/$t"
  cp "$root/target/cross-$t/$t/release/mailbag" "$out/$t/mailbag"
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
