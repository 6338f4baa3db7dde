#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# build-luci-ipk.sh: packs luci-app-mailbag (architecture-independent: JavaScript views,
# menu, ACL, the rpcd plugin script) into an .ipk for opkg (OpenWrt <= 24.10), laid out as
# LuCI's luci.mk packs it: htdocs/ under /www, root/ under /, the postinst that clears
# LuCI's caches and reloads rpcd so the new ACL and plugin are seen.
#
# usage: build-luci-ipk.sh [--out DIR] [--epoch SECONDS]

set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
app="$here/luci-app-mailbag"
out="." epoch="${SOURCE_DATE_EPOCH:-}"
while [ $# -gt 0 ]; do
	case "$1" in
	--out) out="${2:-}"; shift 2 ;;
	--epoch) epoch="${2:-}"; shift 2 ;;
	*) sed -n 's/^# usage: /usage: /p' "$0" >&2; exit 2 ;;
	esac
done
make_var() { sed -n "s/^$1:=//p" "$app/Makefile" | head -1; }
version="$(make_var PKG_VERSION)-r$(make_var PKG_RELEASE)"
epoch="${epoch:-$(git -C "$here" log -1 --format=%ct 2>/dev/null || date +%s)}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
root="$work/root" ctl="$work/CONTROL"
mkdir -p "$root/www" "$ctl"
cp -R "$app/htdocs/." "$root/www/"
cp -R "$app/root/." "$root/"
find "$root" -type d -exec chmod 0755 {} +
find "$root" -type f -exec chmod 0644 {} +
chmod 0755 "$root/usr/libexec/rpcd/luci.mailbag"

cat >"$ctl/postinst" <<'EOT'
#!/bin/sh
[ -n "${IPKG_INSTROOT}" ] || {
	rm -f /tmp/luci-indexcache.*
	rm -rf /tmp/luci-modulecache/
	killall -HUP rpcd 2>/dev/null
	exit 0
}
EOT
chmod 0755 "$ctl/postinst"
tar_opts=(--format=gnu --numeric-owner --owner=0 --group=0 --sort=name --mtime="@$epoch")
(cd "$root" && tar "${tar_opts[@]}" -cf - .) | gzip -9n >"$work/data.tar.gz"
{
	echo "Package: luci-app-mailbag"
	echo "Version: $version"
	echo "Depends: libc, luci-base, mailbag"
	echo "Source: feeds/mailbag/luci-app-mailbag"
	echo "SourceName: luci-app-mailbag"
	echo "License: $(make_var PKG_LICENSE)"
	echo "Section: luci"
	echo "SourceDateEpoch: $epoch"
	echo "Maintainer: $(make_var PKG_MAINTAINER)"
	echo "Architecture: all"
	echo "Installed-Size: $(gzip -dc "$work/data.tar.gz" | wc -c)"
	echo "Description: $(make_var LUCI_TITLE)"
} >"$ctl/control"
chmod 0644 "$ctl/control"
(cd "$ctl" && tar "${tar_opts[@]}" -cf - .) | gzip -9n >"$work/control.tar.gz"
echo "2.0" >"$work/debian-binary"
mkdir -p "$out"
ipk="$out/luci-app-mailbag_${version}_all.ipk"
(cd "$work" && tar "${tar_opts[@]}" -cf - ./debian-binary ./data.tar.gz ./control.tar.gz) |
	gzip -9n >"$ipk"
echo "$ipk"
