# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
# Sourced by qemu/build-static.sh and tests/qemu-user/run.sh: a pinned zig toolchain for
# cross-building with cargo-zigbuild (zig is the C compiler and linker for musl targets).
#
#   zig_env_setup            installs zig + cargo-zigbuild (PyPI, pinned) into a venv once,
#                            puts them on PATH and sets $clang_include
#   zig_bindgen_env TARGET   prints the NAME=VALUE for littlefs2-sys's bindgen (use with env)
#
# littlefs2-sys runs bindgen (libclang) for the target: it only needs <stdint.h> and
# <stdbool.h>. With -ffreestanding libclang's own builtin headers define them for the
# target's ABI, so no target libc headers are needed. cargo-zigbuild sets
# BINDGEN_EXTRA_CLANG_ARGS_<target_with_underscores> to zig's include dirs, which Debian's
# libclang 14 cannot use with zig 0.17 ('stdint.h' file not found), so we set the
# hyphenated name, which bindgen reads first.

ZIGLANG_VERSION=0.17.1
CARGO_ZIGBUILD_VERSION=0.24.1

zig_env_setup() {
  local root venv
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  venv=${MAILBAG_ZIG_VENV:-$root/target/zig-venv}
  if [ "$("$venv/bin/pip" show ziglang 2>/dev/null | sed -n 's/^Version: //p')" != "$ZIGLANG_VERSION" ] \
     || [ ! -x "$venv/bin/cargo-zigbuild" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "ziglang==$ZIGLANG_VERSION" "cargo-zigbuild==$CARGO_ZIGBUILD_VERSION"
  fi
  export PATH="$venv/bin:$PATH"   # cargo-zigbuild finds zig through `python3 -m ziglang`
  # shellcheck disable=SC2012  # a fixed glob; sort -V picks the newest libclang
  clang_include=$(ls -d /usr/lib/llvm-*/lib/clang/*/include 2>/dev/null | sort -V | tail -n 1)
  if [ ! -e "$clang_include/stdint.h" ]; then
    echo "libclang builtin headers not found (apt-get install libclang-dev)" >&2
    return 1
  fi
}

zig_bindgen_env() {
  echo "BINDGEN_EXTRA_CLANG_ARGS_$1=-ffreestanding -isystem $clang_include"
}
