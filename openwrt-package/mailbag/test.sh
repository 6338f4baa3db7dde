#!/bin/sh
# The packages feed CI runs this on the target after installing the package:
# $1 is the package name, $2 its version (without the release).
# Functional checks that need no network and no running service.

fail() {
	echo "test.sh: $*" >&2
	exit 1
}

# The installed settings (MAILBAG_CONFIG: another copy, for tests off the router).
config="${MAILBAG_CONFIG:-/etc/config/mailbag}"

case "$1" in
mailbag)
	mailbag --version | grep -F "$2" || fail "--version does not say $2"
	# The shipped settings are valid as installed.
	mailbag check-config "$config" || fail "check-config rejects the shipped file"
	tmp="$(mktemp -d)" || fail "mktemp"
	trap 'rm -rf "$tmp"' EXIT
	# A spool image: formatted, then read back (empty) as the daemon would mount it.
	mailbag spool format "$tmp/spool.img" --size 1M || fail "spool format"
	mailbag spool inspect "$tmp/spool.img" || fail "spool inspect"
	[ "$(mailbag spool inspect --json "$tmp/spool.img" | tr -d ' \n')" = "[]" ] || fail "new spool not empty"
	# The walled garden from the shipped file: the silo's prefix admitted.
	mailbag firewall render --format nft --config "$config" >"$tmp/rules.nft" ||
		fail "firewall render"
	grep -q "203.0.113.0/28" "$tmp/rules.nft" || fail "silo prefix missing from the rules"
	# LuCI's rpcd plugin protocol.
	mailbag rpcd list | grep -q '"status":{}' || fail "rpcd list"
	;;
luci-app-mailbag)
	[ -x /usr/libexec/rpcd/luci.mailbag ] || fail "rpcd plugin missing"
	/usr/libexec/rpcd/luci.mailbag list | grep -q '"queue":' || fail "rpcd plugin list"
	[ -s /www/luci-static/resources/view/mailbag/status.js ] || fail "views missing"
	;;
*)
	echo "test.sh: unknown package '$1'" >&2
	exit 1
	;;
esac
