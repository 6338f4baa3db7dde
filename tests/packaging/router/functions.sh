# SPDX-License-Identifier: Apache-2.0
# /lib/functions.sh of the test router root (tests/packaging/router.sh): the procd and UCI
# shell API stand-ins of procd-stubs.sh, plus OpenWrt's package-script helpers as
# base-files defines them: default_postinst (users from Require-User, uci-defaults, the
# package's postinst-pkg, enable + start init scripts) and default_prerm (prerm-pkg, stop +
# disable init scripts).
# shellcheck shell=sh disable=SC3043,SC2034,SC1090,SC2013

LOG=${LOG:-/tmp/procd.log}
UCI_DIR=/etc/config
CONFIG=/etc/config/mailbag
# shellcheck source=/dev/null # the copy of tests/packaging/procd-stubs.sh in the root
. /lib/procd-stubs.sh
# The root has a logger command (/usr/bin/logger writes /tmp/log, the router's logread).
unset -f logger

add_group_and_user() {
	local tuple uname gname uid gid
	for tuple in $(sed -ne 's/^Require-User: *//p' "/usr/lib/opkg/info/$1.control"); do
		uname="${tuple%%:*}" gname="${tuple#*:}"
		uid="${uname#*=}" uname="${uname%%=*}" gid="${gname#*=}" gname="${gname%%=*}"
		grep -q "^$gname:" /etc/group || echo "$gname:x:$gid:" >>/etc/group
		grep -q "^$uname:" /etc/passwd ||
			echo "$uname:x:$uid:$gid:$uname:/var/run/$uname:/bin/false" >>/etc/passwd
	done
}

default_postinst() {
	local pkgname i
	pkgname="$(basename "${1%.*}")"
	local filelist="/usr/lib/opkg/info/$pkgname.list"
	add_group_and_user "$pkgname"
	for i in $(grep -s "^/etc/uci-defaults/" "$filelist"); do
		( [ -f "$i" ] && cd "$(dirname "$i")" && . "$i" ) && rm -f "$i"
	done
	[ -f "/usr/lib/opkg/info/$pkgname.postinst-pkg" ] && ( . "/usr/lib/opkg/info/$pkgname.postinst-pkg" )
	for i in $(grep -s "^/etc/init.d/" "$filelist"); do
		"$i" enable
		"$i" start
	done
	return 0
}

default_prerm() {
	local pkgname i
	pkgname="$(basename "${1%.*}")"
	[ -f "/usr/lib/opkg/info/$pkgname.prerm-pkg" ] && ( . "/usr/lib/opkg/info/$pkgname.prerm-pkg" )
	for i in $(grep -s "^/etc/init.d/" "/usr/lib/opkg/info/$pkgname.list"); do
		"$i" disable
		"$i" stop
	done
	return 0
}
