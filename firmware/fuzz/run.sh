#!/usr/bin/env bash
# Fuzz the SMTP session for a few minutes (not run in CI).
# Usage: firmware/fuzz/run.sh [seconds]   (default 300)
# Needs: rustup nightly toolchain, cargo-fuzz (`cargo install cargo-fuzz`), a C++ compiler.
# Crashes land in firmware/fuzz/artifacts/session/; replay one with
#   cargo +nightly fuzz run session artifacts/session/<file>
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-300}"
mkdir -p corpus/session
cp -n seeds/session/* corpus/session/
exec cargo +nightly fuzz run session corpus/session -- \
    -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048
