#!/usr/bin/env bash
# Browser tests of the admin page: installs playwright-core (npm ci), builds the demo
# server (fake backend) and the mailbag daemon (real backend), runs both test files in
# headless Debian Chromium. Screenshots go to test-artifacts/web/ (real-*.png: the daemon).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
cargo build -p mailbag-web --bin mailbag-web-demo
cargo build -p mailbag --bin mailbag
target_dir="$(cargo metadata --format-version 1 --no-deps | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')"
export MAILBAG_WEB_DEMO="$target_dir/debug/mailbag-web-demo"
export MAILBAG_BIN="$target_dir/debug/mailbag"
command -v "${CHROMIUM:-/usr/bin/chromium}" >/dev/null || { echo "chromium missing: apt-get install -y chromium" >&2; exit 1; }
cd "$here"
npm ci --no-audit --no-fund
npm test
