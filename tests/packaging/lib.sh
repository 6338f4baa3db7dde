# SPDX-License-Identifier: Apache-2.0
# Shared helpers for tests/packaging/*.sh (sourced, not run).
# shellcheck shell=bash

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
failures=0

fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}

pass() {
	echo "ok: $*"
}

# check DESCRIPTION COMMAND...: runs COMMAND, records pass/fail.
check() {
	local what="$1"
	shift
	if "$@"; then pass "$what"; else fail "$what"; fi
}

# The host-built mailbag binary ($MAILBAG_BIN, or a debug build of the workspace).
mailbag_bin() {
	if [ -n "${MAILBAG_BIN:-}" ]; then
		echo "$MAILBAG_BIN"
		return
	fi
	local out dir
	out="$(cd "$repo" && cargo build -q -p mailbag --bin mailbag 2>&1)" || {
		echo "$out" >&2
		return 1
	}
	dir="$(cd "$repo" && cargo metadata --format-version 1 --no-deps |
		sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
	echo "$dir/debug/mailbag"
}

finish() {
	if [ "$failures" -gt 0 ]; then
		echo "$failures check(s) failed" >&2
		exit 1
	fi
}
