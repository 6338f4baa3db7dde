#!/bin/bash
# shellcheck source-path=SCRIPTDIR
# shellcheck disable=SC2016 # inner 'sh -c' scripts expand their own "$1"
# SPDX-License-Identifier: Apache-2.0
# Builds an .ipk from the host-built binary with openwrt-package/build-ipk.sh and checks
# it the way opkg and the packages feed CI read it: outer gzip'd tar with the three
# members, control fields, conffiles, maintainer scripts, file modes and owners, a
# reproducible build, the packaged binary's --version against test.sh, and the packaged
# UCI defaults against the packaged binary's check-config.
set -uo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

bin="$(mailbag_bin)" || { echo "cannot build mailbag" >&2; exit 1; }
arch="${MAILBAG_ARCH:-x86_64}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

build() { "$repo/openwrt-package/build-ipk.sh" --binary "$bin" --arch "$arch" --epoch 1700000000 --out "$1"; }

ipk="$(build "$work/a")" || { fail "build-ipk.sh failed"; finish; }
version="$(sed -n 's/^PKG_VERSION:=//p' "$repo/openwrt-package/mailbag/Makefile")"
release="$(sed -n 's/^PKG_RELEASE:=//p' "$repo/openwrt-package/mailbag/Makefile")"
check "file name is mailbag_<version>-r<release>_<arch>.ipk" \
	test "$(basename "$ipk")" = "mailbag_${version}-r${release}_${arch}.ipk"

# Outer archive: exactly the three members, in opkg's order.
members="$(tar -tzf "$ipk" | tr '\n' ' ')"
check "outer members: $members" test "$members" = "./debian-binary ./data.tar.gz ./control.tar.gz "
check "debian-binary is 2.0" test "$(tar -xzOf "$ipk" ./debian-binary)" = "2.0"

mkdir -p "$work/control" "$work/data"
tar -xzOf "$ipk" ./control.tar.gz | tar -xzf - -C "$work/control"
tar -xzOf "$ipk" ./data.tar.gz | tar -xzf - -C "$work/data"
control="$work/control/control"

field() { sed -n "s/^$1: //p" "$control"; }
check "Package: mailbag" test "$(field Package)" = mailbag
check "Version: $version-r$release" test "$(field Version)" = "$version-r$release"
check "Architecture: $arch" test "$(field Architecture)" = "$arch"
check "License: Apache-2.0" test "$(field License)" = Apache-2.0
check "Section: mail" test "$(field Section)" = mail
check "Depends: libc, procd-ujail (capabilities go through ujail)" test "$(field Depends)" = "libc, procd-ujail"
check "Source ends in the package directory" test "$(field Source | sed 's#.*/##')" = mailbag
for f in Maintainer SourceName LicenseFiles Description; do
	check "$f present" test -n "$(field "$f")"
done
installed="$(tar -xzOf "$ipk" ./data.tar.gz | gzip -dc | wc -c)"
check "Installed-Size = unpacked data size ($installed)" test "$(field Installed-Size)" = "$installed"
# The packages CI extracts the version like this (entrypoint.sh) to call test.sh.
ci_version="$(sed -ne 's#^Version: \(.*\)-r[0-9]*$#\1#p' "$control")"
check "CI sees version $version" test "$ci_version" = "$version"

check "conffiles lists /etc/config/mailbag" test "$(cat "$work/control/conffiles")" = /etc/config/mailbag
for s in postinst prerm; do
	check "$s is executable" test -x "$work/control/$s"
	check "$s uses OpenWrt's default_$s" grep -q "default_$s" "$work/control/$s"
done
check "postinst-pkg (the package's own part) reloads the firewall" \
	grep -q "/etc/init.d/firewall reload" "$work/control/postinst-pkg"
check "postrm removes the generated rules and the include" \
	sh -c 'grep -q "rm -f /usr/share/nftables.d/table-pre/50-mailbag.nft" "$1" && grep -q "uci -q delete firewall.mailbag" "$1"' _ "$work/control/postrm"
check "make's \$\$ unescaped in postrm" sh -c '! grep -q "\\$\\$" "$1"' _ "$work/control/postrm"
check "Require-User: the daemon's user and group" test "$(field Require-User)" = "mailbag=225:mailbag=225"

# Modes as the feed Makefile's INSTALL_BIN/INSTALL_CONF/INSTALL_DATA give them.
mode() { stat -c %a "$work/data/$1"; }
check "usr/bin/mailbag 755" test "$(mode usr/bin/mailbag)" = 755
check "etc/init.d/mailbag 755" test "$(mode etc/init.d/mailbag)" = 755
check "etc/config/mailbag 600" test "$(mode etc/config/mailbag)" = 600
check "hotplug 644" test "$(mode etc/hotplug.d/iface/90-mailbag)" = 644
check "uci-defaults 755" test "$(mode etc/uci-defaults/90-mailbag)" = 755
check "firewall include 755" test "$(mode usr/share/mailbag/firewall.include)" = 755
check "keep.d keeps the state directory" test "$(grep -v '^#' "$work/data/lib/upgrade/keep.d/mailbag")" = /etc/mailbag/
for c in mailbag mailbag-firewall; do
	check "capabilities $c.json is JSON with CAP_NET_BIND_SERVICE" \
		python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert "CAP_NET_BIND_SERVICE" in d["ambient"]' \
		"$work/data/etc/capabilities/$c.json"
done
check "CAP_NET_ADMIN only in the firewall variant" \
	sh -c '! grep -q NET_ADMIN "$1/mailbag.json" && grep -q NET_ADMIN "$1/mailbag-firewall.json"' _ "$work/data/etc/capabilities"
owners="$(tar -xzOf "$ipk" ./data.tar.gz | tar -tvzf - | awk '{print $2}' | sort -u | tr '\n' ' ')"
check "data owned by 0/0 ($owners)" test "$owners" = "0/0 "
check "init script is a procd rc.common script" \
	grep -q '^#!/bin/sh /etc/rc.common' "$work/data/etc/init.d/mailbag"

# Reproducible: the same inputs give the same bytes.
ipk2="$(build "$work/b")"
check "reproducible build" cmp -s "$ipk" "$ipk2"

# A binary for another architecture is refused.
if "$repo/openwrt-package/build-ipk.sh" --binary "$bin" --arch mipsel_24kc --out "$work/c" 2>/dev/null; then
	fail "x86_64 binary accepted as mipsel_24kc"
else
	pass "binary/arch mismatch refused"
fi

# The packaged files work together: test.sh (as the feed CI runs it) and the packaged
# defaults through the packaged binary.
if [ "$arch" = x86_64 ]; then
	check "test.sh passes with the packaged binary and config" \
		env PATH="$work/data/usr/bin:$PATH" MAILBAG_CONFIG="$work/data/etc/config/mailbag" \
		sh "$repo/openwrt-package/mailbag/test.sh" mailbag "$version"
	check "test.sh fails for a wrong version" \
		sh -c '! env PATH="$1:$PATH" MAILBAG_CONFIG="$1/../../etc/config/mailbag" sh "$2" mailbag 9.9.9 >/dev/null 2>&1' _ "$work/data/usr/bin" \
		"$repo/openwrt-package/mailbag/test.sh"
	check "packaged defaults pass check-config" \
		"$work/data/usr/bin/mailbag" check-config "$work/data/etc/config/mailbag"
fi
finish
