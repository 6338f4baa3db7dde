#!/usr/bin/env bash
# Spool enqueue benchmark: messages/s, device bytes and fsyncs per message on a file image.
# Usage: tests/bench/spool.sh [DIR]   (DIR: where the temporary images go; default: target/bench)
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=${1:-target/bench}
cargo build --release -q -p mailbag --example spool_bench
"target/release/examples/spool_bench" "$dir"
