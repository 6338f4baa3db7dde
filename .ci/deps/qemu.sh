#!/usr/bin/env bash
# Setup for qemu/ and tests/qemu-*: idempotent, run as root on Debian 12.
set -euo pipefail
# arm64 package lists: qemu/run-image.sh downloads Debian's arm64 kernel and busybox-static.
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  dpkg --add-architecture arm64
  apt-get update -qq
fi
# Rust targets: aarch64 musl on the pinned stable; nightly + rust-src for -Zbuild-std (MIPS).
# An installed nightly is kept as it is (updating it would rebuild every cross target).
rustup target add aarch64-unknown-linux-musl >/dev/null 2>&1
rustup toolchain list | grep -q '^nightly-' || rustup toolchain install nightly --profile minimal >/dev/null 2>&1
rustup component add rust-src --toolchain nightly >/dev/null 2>&1
