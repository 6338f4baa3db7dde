#!/bin/bash
# shellcheck source-path=SCRIPTDIR
# SPDX-License-Identifier: Apache-2.0
# The size budget: the stripped, static mipsel binary, built as the OpenWrt feed builds the
# package (qemu/build-static.sh --feed: rust-values.mk's profile variables, then the feed
# Makefile's own overrides, flags and cargo features), must stay within MAILBAG_SIZE_BUDGET
# bytes (default 1.5 MiB). Many routers have 8-16 MiB of flash in all.
#
# MAILBAG_SIZE_BINARY=PATH checks an already built binary instead of building one.
set -uo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

budget="${MAILBAG_SIZE_BUDGET:-1572864}"
target=mipsel-unknown-linux-musl
binary="${MAILBAG_SIZE_BINARY:-}"
if [ -z "$binary" ]; then
	mkdir -p "$repo/target"
	if ! "$repo/qemu/build-static.sh" --feed "$target" >"$repo/target/size-build.log" 2>&1; then
		tail -30 "$repo/target/size-build.log" >&2
		fail "the feed build for $target failed (log: target/size-build.log)"
		finish
	fi
	binary="$repo/qemu/build/bin-feed/$target/mailbag"
fi
size="$(stat -c %s "$binary")"
printf '%s: %d bytes (%.2f MiB) of a %d-byte budget; %d bytes left\n' \
	"$target" "$size" "$(awk -v s="$size" 'BEGIN { print s / 1048576 }')" "$budget" "$((budget - size))"
check "mipsel binary (feed build) within the size budget" test "$size" -le "$budget"
finish
