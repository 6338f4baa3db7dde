#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# build-ipk.sh: packs a prebuilt mailbag binary and the feed package's files into an .ipk
# that opkg (OpenWrt <= 24.10) installs, without the OpenWrt SDK. The layout follows
# OpenWrt's scripts/ipkg-build: a gzip'd GNU tar of ./debian-binary ./data.tar.gz
# ./control.tar.gz, numeric owner 0, entries sorted, fixed mtime.
#
# usage: build-ipk.sh --binary PATH --arch ARCH [--out DIR] [--epoch SECONDS]
#   ARCH is the OpenWrt package architecture: mipsel_24kc, mips_24kc, aarch64_cortex-a53,
#   arm_cortex-a7_neon-vfpv4, x86_64, ...; the binary's ELF header must match it.
#
# OpenWrt 25 uses apk-tools v3 packages (.apk, ADB format), which need apk-tools v3's
# `apk mkpkg`; build those with the SDK from the feed Makefile instead.

set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
pkg_dir="$here/mailbag"
files="$pkg_dir/files"

usage() {
	sed -n 's/^# usage: /usage: /p; s/^#   /  /p' "$0" | head -3 >&2
	exit 2
}

binary="" arch="" out="." epoch="${SOURCE_DATE_EPOCH:-}"
while [ $# -gt 0 ]; do
	case "$1" in
	--binary) binary="${2:-}"; shift 2 ;;
	--arch) arch="${2:-}"; shift 2 ;;
	--out) out="${2:-}"; shift 2 ;;
	--epoch) epoch="${2:-}"; shift 2 ;;
	*) usage ;;
	esac
done
if [ -z "$binary" ] || [ -z "$arch" ]; then usage; fi
[ -f "$binary" ] || { echo "build-ipk: no such binary: $binary" >&2; exit 2; }
case "$arch" in
*[!a-zA-Z0-9_.+-]*) echo "build-ipk: bad architecture '$arch'" >&2; exit 2 ;;
esac

# Version and release from the feed Makefile: one source of truth.
make_var() { sed -n "s/^$1:=//p" "$pkg_dir/Makefile" | head -1; }
pkg_name="$(make_var PKG_NAME)"
pkg_version="$(make_var PKG_VERSION)"
pkg_release="$(make_var PKG_RELEASE)"
license="$(make_var PKG_LICENSE)"
license_files="$(make_var PKG_LICENSE_FILES)"
maintainer="$(make_var PKG_MAINTAINER)"
# OpenWrt >= 23.05 writes the release as "-rN".
version="$pkg_version-r$pkg_release"
epoch="${epoch:-$(git -C "$here" log -1 --format=%ct 2>/dev/null || date +%s)}"

# ELF class/endianness/machine the architecture needs (e_ident[EI_DATA], e_machine).
elf_expect() {
	case "$1" in
	mipsel_* | mips64el_*) echo "1 8" ;;
	mips_* | mips64_*) echo "2 8" ;;
	aarch64_*) echo "1 183" ;;
	arm_*) echo "1 40" ;;
	x86_64) echo "1 62" ;;
	i386_*) echo "1 3" ;;
	powerpc_* | powerpc64_*) echo "2 20 21" ;;
	riscv64_*) echo "1 243" ;;
	*) echo "" ;;
	esac
}
elf_actual() {
	local magic data lo hi
	magic="$(od -An -c -N4 "$1" | tr -d ' ')"
	[ "$magic" = '177ELF' ] || return 1
	data="$(od -An -tu1 -j5 -N1 "$1" | tr -d ' ')"
	read -r lo hi < <(od -An -tu1 -j18 -N2 "$1")
	if [ "$data" = 1 ]; then echo "$data $((lo + 256 * hi))"; else echo "$data $((hi + 256 * lo))"; fi
}
expect="$(elf_expect "$arch")"
actual="$(elf_actual "$binary")" || { echo "build-ipk: $binary is not an ELF binary" >&2; exit 2; }
if [ -n "$expect" ]; then
	data="${actual%% *}" machine="${actual#* }" ok=0
	for m in ${expect#* }; do
		[ "$data" = "${expect%% *}" ] && [ "$machine" = "$m" ] && ok=1
	done
	if [ "$ok" != 1 ]; then
		echo "build-ipk: $binary (ELF data=$data machine=$machine) does not run on $arch" >&2
		exit 2
	fi
else
	echo "build-ipk: warning: cannot check the binary against unknown arch '$arch'" >&2
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
root="$work/root"
ctl="$work/CONTROL"

# Same targets and modes as Package/mailbag/install (INSTALL_BIN 0755, INSTALL_CONF 0600,
# INSTALL_DATA 0644).
install -d -m0755 "$root/usr/bin" "$root/etc/config" "$root/etc/init.d" \
	"$root/etc/hotplug.d/iface" "$root/etc/uci-defaults" "$root/usr/share/mailbag" \
	"$root/lib/upgrade/keep.d" "$root/etc/capabilities"
install -m0755 "$binary" "$root/usr/bin/mailbag"
install -m0600 "$files/mailbag.config" "$root/etc/config/mailbag"
install -m0755 "$files/mailbag.init" "$root/etc/init.d/mailbag"
install -m0644 "$files/mailbag.hotplug" "$root/etc/hotplug.d/iface/90-mailbag"
install -m0755 "$files/mailbag.uci-defaults" "$root/etc/uci-defaults/90-mailbag"
install -m0755 "$files/mailbag.firewall" "$root/usr/share/mailbag/firewall.include"
install -m0644 "$files/mailbag.keep" "$root/lib/upgrade/keep.d/mailbag"
install -m0644 "$files/mailbag.caps.json" "$root/etc/capabilities/mailbag.json"
install -m0644 "$files/mailbag-firewall.caps.json" "$root/etc/capabilities/mailbag-firewall.json"

install -d -m0755 "$ctl"
echo "/etc/config/mailbag" >"$ctl/conffiles"
# make_define NAME: a `define NAME ... endef` block of the feed Makefile, with make's `$$`
# turned back into `$` (what OpenWrt's package-pack writes out).
make_define() {
	sed -n "\\#^define $1\$#,\\#^endef\$#p" "$pkg_dir/Makefile" | sed '1d;$d; s/\$\$/$/g'
}
# As OpenWrt's package-pack: postinst/prerm are the default scripts (run uci-defaults,
# enable + start init scripts / stop + disable them), which source the package's own
# postinst-pkg/prerm-pkg; postrm is the package's script itself.
cat >"$ctl/postinst" <<'EOT'
#!/bin/sh
[ "${IPKG_NO_SCRIPT}" = "1" ] && exit 0
[ -s "${IPKG_INSTROOT}/lib/functions.sh" ] || exit 0
. "${IPKG_INSTROOT}/lib/functions.sh"
default_postinst "$0" "$@"
EOT
cat >"$ctl/prerm" <<'EOT'
#!/bin/sh
[ -s "${IPKG_INSTROOT}/lib/functions.sh" ] || exit 0
. "${IPKG_INSTROOT}/lib/functions.sh"
default_prerm "$0" "$@"
EOT
make_define Package/mailbag/postinst >"$ctl/postinst-pkg"
make_define Package/mailbag/postrm >"$ctl/postrm"
chmod 0755 "$ctl/postinst" "$ctl/prerm" "$ctl/postinst-pkg" "$ctl/postrm"
chmod 0644 "$ctl/conffiles"

tar_opts=(--format=gnu --numeric-owner --owner=0 --group=0 --sort=name --mtime="@$epoch")
(cd "$root" && tar "${tar_opts[@]}" -cf - .) | gzip -9n >"$work/data.tar.gz"
installed_size="$(gzip -dc "$work/data.tar.gz" | wc -c)"

description="$(sed -n '/^define Package\/mailbag\/description$/,/^endef$/p' "$pkg_dir/Makefile" |
	sed '1d;$d' | sed 's/^[[:space:]]*/ /')"
{
	echo "Package: $pkg_name"
	echo "Version: $version"
	# procd-ujail: procd applies the capabilities file only through ujail.
	echo "Depends: libc, procd-ujail"
	echo "Require-User: mailbag=225:mailbag=225"
	echo "Source: feeds/mailbag/mailbag"
	echo "SourceName: $pkg_name"
	echo "License: $license"
	echo "LicenseFiles: $license_files"
	echo "Section: mail"
	echo "SourceDateEpoch: $epoch"
	echo "Maintainer: $maintainer"
	echo "Architecture: $arch"
	echo "Installed-Size: $installed_size"
	echo "Description: $description"
} >"$ctl/control"
chmod 0644 "$ctl/control"

(cd "$ctl" && tar "${tar_opts[@]}" -cf - .) | gzip -9n >"$work/control.tar.gz"
echo "2.0" >"$work/debian-binary"

mkdir -p "$out"
ipk="$out/${pkg_name}_${version}_${arch}.ipk"
(cd "$work" && tar "${tar_opts[@]}" -cf - ./debian-binary ./data.tar.gz ./control.tar.gz) |
	gzip -9n >"$ipk"
echo "$ipk"
