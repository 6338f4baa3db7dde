#!/bin/bash
# shellcheck source-path=SCRIPTDIR
# shellcheck disable=SC2016 # inner 'sh -c' scripts expand their own "$1"
# SPDX-License-Identifier: Apache-2.0
# The package on a stand-in router, as an installer meets it: an .ipk from build-ipk.sh is
# unpacked into a root directory with busybox, nft and the host-built mailbag, and its
# maintainer scripts, init script, fw4 include and hotplug handler run there (chroot) in a
# network namespace of their own, with the real binary against the package's own UCI file
# and nft against the kernel. OpenWrt's pieces the scripts call are stand-ins
# (tests/packaging/router/: uci, rc.common with procd recording, fw4 building `table inet
# fw4` with its include directories and script includes, default_postinst/default_prerm).
#
# install (opkg's steps) -> registered, nothing filtered while disabled
# configure (uci set enabled=1; firewall reload) -> walled garden in fw4, file in
# /usr/share/nftables.d; enabled=0 or firewall.mode=off and one fw4 reload -> the ruleset
# from before install, on again -> walled again; daemon started as procd would (user,
# capabilities); WAN hotplug flushes through the control socket; state in /etc/mailbag
# stopped but enabled -> still walled after a fw4 reload
# remove (prerm, files, postrm) -> the ruleset is exactly what it was before install.
#
# Needs root (chroot, ip netns), busybox-static, nft and swaks. Prints a transcript.
set -uo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

if [ "$(id -u)" != 0 ] || ! command -v nft >/dev/null || [ ! -x /bin/busybox ]; then
	msg="router.sh needs root, nft and busybox-static"
	if [ -n "${MAILBAG_REQUIRE_NETNS:-}" ]; then fail "$msg"; finish; fi
	echo "skipped: $msg" >&2
	exit 0
fi
bin="$(mailbag_bin)" || { echo "cannot build mailbag" >&2; exit 1; }
work="$(mktemp -d)"
ns="mbpkg$$"
root="$work/root"
daemon_pid=""
cleanup() {
	[ -z "$daemon_pid" ] || kill "$daemon_pid" 2>/dev/null
	ip netns del "$ns" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

# ---- the stand-in router root
stubs="$repo/tests/packaging/router"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,lib,etc/config,etc/init.d,etc/nftables.d,tmp,var/run,proc} \
	"$root"/usr/lib/opkg/info "$root"/usr/share/nftables.d/{table-pre,table-post}
ln -s /var/run "$root/run" 2>/dev/null
mkdir -p "$root/dev"
mknod -m 666 "$root/dev/null" c 1 3
mknod -m 666 "$root/dev/zero" c 1 5
mknod -m 666 "$root/dev/urandom" c 1 9
cp /bin/busybox "$root/bin/busybox"
for applet in sh ash awk sed grep cat rm mkdir chmod chown chgrp ls mv cp ln sleep basename \
	dirname tr cut echo printf test [ head tail sort find xargs env id kill true false wc \
	uniq touch stat killall mktemp; do
	ln -sf busybox "$root/bin/$applet"
done
# copy_with_libs BINARY DEST: a dynamically linked host binary and the libraries it loads.
copy_with_libs() {
	cp "$1" "$root$2"
	ldd "$1" | grep -o '/[^ ]*' | while read -r lib; do
		mkdir -p "$root$(dirname "$lib")"
		cp -L "$lib" "$root$lib"
	done
}
copy_with_libs "$(command -v nft)" /usr/sbin/nft
install -m0755 "$stubs/uci" "$root/sbin/uci"
install -m0755 "$stubs/fw4" "$root/sbin/fw4"
install -m0755 "$stubs/rc.common" "$root/etc/rc.common"
install -m0755 "$stubs/firewall.init" "$root/etc/init.d/firewall"
install -m0755 "$stubs/logger" "$root/usr/bin/logger"
# procd-ujail (a dependency): the init checks it is there; procd would run it.
printf '#!/bin/sh\nexit 1\n' >"$root/sbin/ujail" && chmod 0755 "$root/sbin/ujail"
install -m0644 "$stubs/functions.sh" "$root/lib/functions.sh"
install -m0644 "$repo/tests/packaging/procd-stubs.sh" "$root/lib/procd-stubs.sh"
printf 'root:x:0:0:root:/root:/bin/ash\n' >"$root/etc/passwd"
printf 'root:x:0:\n' >"$root/etc/group"
printf 'config defaults\n\toption input REJECT\n' >"$root/etc/config/firewall"

ip netns add "$ns" || { fail "cannot create network namespace"; finish; }
ip -n "$ns" link set lo up
ip -n "$ns" link add wan0 type veth peer name wan1
ip -n "$ns" link set wan0 up
on_router() { ip netns exec "$ns" chroot "$root" /bin/sh -c "$1"; }
step() { printf '\n## %s\n' "$*"; }
show() { printf '%s\n' "$1" | sed 's/^/    /'; }

step "the router before mailbag: fw4 start"
on_router "/etc/init.d/firewall start" || fail "fw4 stand-in does not load"
before="$(on_router 'nft list ruleset')"
show "$(printf '%s\n' "$before" | grep -c .) lines of ruleset, no mailbag objects"

# ---- install, as opkg does: data, control files and file list, then postinst configure
ipk="$("$repo/openwrt-package/build-ipk.sh" --binary "$bin" --arch x86_64 --out "$work/ipk")" ||
	{ fail "build-ipk.sh failed"; finish; }
step "opkg install $(basename "$ipk")"
mkdir -p "$work/ctl"
tar -xzOf "$ipk" ./control.tar.gz | tar -xzf - -C "$work/ctl"
tar -xzOf "$ipk" ./data.tar.gz | tar -tzf - | sed -n 's#^\./#/#p' | grep -v '/$' >"$root/usr/lib/opkg/info/mailbag.list"
tar -xzOf "$ipk" ./data.tar.gz | tar -xzf - -C "$root"
for f in control conffiles postinst postinst-pkg prerm postrm; do
	[ -f "$work/ctl/$f" ] && cp -p "$work/ctl/$f" "$root/usr/lib/opkg/info/mailbag.$f"
done
# The host binary needs its shared libraries in the root.
copy_with_libs "$bin" /usr/bin/mailbag
cp "$repo/openwrt-package/mailbag/test.sh" "$root/tmp/test.sh"
out="$(on_router '/usr/lib/opkg/info/mailbag.postinst configure' 2>&1)"
show "postinst: exit $? ${out:-(no output)}"
show "$(on_router 'uci get firewall.mailbag; uci get firewall.mailbag.path')"
check "install: fw4 include registered" \
	test "$(on_router 'uci -q get firewall.mailbag.path')" = /usr/share/mailbag/firewall.include
check "install: uci-defaults script ran and was removed" test ! -e "$root/etc/uci-defaults/90-mailbag"
check "install: user and group 'mailbag' created (Require-User)" \
	sh -c 'grep -q "^mailbag:x:225:225:" "$1/etc/passwd" && grep -q "^mailbag:x:225:" "$1/etc/group"' _ "$root"
check "install: init script enabled" test -L "$root/etc/rc.d/S95mailbag"
check "install: shipped disabled, so no instance started" \
	sh -c '! grep -qs open_instance "$1"' _ "$root/tmp/procd.log"
out="$(on_router "sh /tmp/test.sh mailbag $(sed -n 's/^PKG_VERSION:=//p' "$repo/openwrt-package/mailbag/Makefile")" 2>&1)"
check "install: the feed CI's test.sh passes on the router" test $? = 0
show "$(printf '%s\n' "$out" | tail -3)"
check "install: disabled, so nothing filtered (fw4 reloaded, include ran)" \
	sh -c '! nft_out="$(ip netns exec "$1" nft list ruleset)" || ! printf "%s" "$nft_out" | grep -q mailbag' _ "$ns"

# ---- configure: the package's own UCI file, loopback-friendly spool, then enable
step "configure: uci set mailbag.main.enabled=1; uci commit; /etc/init.d/firewall reload"
on_router "uci set mailbag.spool.path=/srv/mailbag/spool.img; uci set mailbag.main.enabled=1; uci commit mailbag"
on_router "/etc/init.d/firewall reload"
show "$(grep mailbag-firewall "$root/tmp/log" | tail -2)"
rules="$(on_router 'nft list chain inet fw4 input_wan; nft list set inet fw4 mailbag_silo4' 2>&1)"
show "$rules"
check "configure: input_wan jumps to mailbag_smtp first" \
	sh -c 'printf "%s\n" "$1" | grep -A2 "chain input_wan" | grep -q "jump mailbag_smtp"' _ "$rules"
check "configure: silo set from the UCI file (203.0.113.0/28)" \
	sh -c 'printf "%s" "$1" | grep -q "203.0.113.0/28"' _ "$rules"
check "configure: rules file in /usr/share/nftables.d/table-pre" \
	test -s "$root/usr/share/nftables.d/table-pre/50-mailbag.nft"
check "configure: nothing in the admin's /etc/nftables.d" test -z "$(ls -A "$root/etc/nftables.d")"
on_router "/etc/init.d/firewall reload"
check "configure: rules survive another fw4 reload (from the include file)" \
	sh -c 'ip netns exec "$1" nft list chain inet fw4 input_wan | grep -q "jump mailbag_smtp"' _ "$ns"

# Turning mailbag off (enabled=0, or firewall.mode=off) and reloading fw4 once gives the
# router its own ruleset back; turning it on again walls port 25 again.
walled() { ip netns exec "$ns" nft list chain inet fw4 input_wan 2>/dev/null | grep -q "jump mailbag_smtp"; }
step "disable: uci set mailbag.main.enabled=0; uci commit; /etc/init.d/firewall reload"
on_router "uci set mailbag.main.enabled=0; uci commit mailbag; /etc/init.d/firewall reload"
check "disabled: one fw4 reload restores the ruleset from before install" \
	test "$(on_router 'nft list ruleset')" = "$before"
check "disabled: generated rules file deleted" \
	test ! -e "$root/usr/share/nftables.d/table-pre/50-mailbag.nft"
on_router "uci set mailbag.main.enabled=1; uci commit mailbag; /etc/init.d/firewall reload"
check "enabled again: walled garden back after one fw4 reload" walled
step "uci set mailbag.firewall.mode=off; uci commit; /etc/init.d/firewall reload"
on_router "uci set mailbag.firewall.mode=off; uci commit mailbag; /etc/init.d/firewall reload"
check "mode off: one fw4 reload restores the ruleset from before install" \
	test "$(on_router 'nft list ruleset')" = "$before"
check "mode off: generated rules file deleted" \
	test ! -e "$root/usr/share/nftables.d/table-pre/50-mailbag.nft"
on_router "uci set mailbag.firewall.mode=walled-garden; uci commit mailbag; /etc/init.d/firewall reload"
check "walled-garden again: port 25 walled after one fw4 reload" walled

step "/etc/init.d/mailbag start (procd's view)"
: >"$root/tmp/procd.log"
on_router "/etc/init.d/mailbag start" 2>"$work/start.err"
[ ! -s "$work/start.err" ] || show "$(cat "$work/start.err")"
show "$(grep set_param "$root/tmp/procd.log")"
check "start: runs as user and group mailbag" \
	sh -c 'grep -qx "set_param user mailbag" "$1" && grep -qx "set_param group mailbag" "$1"' _ "$root/tmp/procd.log"
check "start: capabilities with CAP_NET_ADMIN (walled garden on)" \
	grep -qx "set_param capabilities /etc/capabilities/mailbag-firewall.json" "$root/tmp/procd.log"
check "start: no_new_privs" grep -qx "set_param no_new_privs 1" "$root/tmp/procd.log"
check "start: jailed (procd applies capabilities through ujail), spool and state mounted rw" \
	sh -c 'grep -qx "jail mailbag log procfs" "$1" && grep -qx "jail_mount_rw /srv/mailbag" "$1" &&
		grep -qx "jail_mount_rw /etc/mailbag" "$1"' _ "$root/tmp/procd.log"
check "start: state in /etc/mailbag, owned by mailbag, 0700" \
	test "$(stat -c '%u %a' "$root/etc/mailbag")" = "225 700"
check "start: config readable by the daemon's group" \
	test "$(stat -c '%g %a' "$root/etc/config/mailbag")" = "225 640"

# The daemon, started as procd would with the command line above (as root here: the
# chroot has no setuid helper; privileges are procd's job and checked above).
cmd="$(sed -n 's/^set_param command //p' "$root/tmp/procd.log")"
step "daemon: $cmd"
ip netns exec "$ns" chroot "$root" /bin/sh -c "exec $cmd" >"$work/daemon.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 100); do
	[ -S "$root/var/run/mailbag/control.sock" ] && break
	sleep 0.1
done
show "$(head -5 "$work/daemon.log")"
check "daemon: control socket up" test -S "$root/var/run/mailbag/control.sock"
check "daemon: TLS key in the state directory the init script named" \
	test -s "$root/etc/mailbag/tls-key.pem"

step "a message for example.com (the UCI file's domain) while the office server is away"
reply="$(ip netns exec "$ns" swaks --server 127.0.0.1:25 --from a@sender.test --to bob@example.com \
	--header "Subject: held" --body hi 2>&1 | grep -E '^<- +250 .*queued' | head -1)"
show "${reply:-no 250 reply}"
check "daemon: accepted mail for the configured domain" test -n "$reply"

step "WAN hotplug: ACTION=ifup INTERFACE=wan /etc/hotplug.d/iface/90-mailbag"
printf "config zone\n\toption name 'wan'\n\tlist network 'wan'\n" >>"$root/etc/config/firewall"
: >"$root/tmp/log"
on_router "ACTION=ifup INTERFACE=wan sh /etc/hotplug.d/iface/90-mailbag"
for _ in $(seq 50); do
	grep -q "made due" "$root/tmp/log" && break
	sleep 0.1
done
show "$(cat "$root/tmp/log")"
check "hotplug: queue flush through the daemon's control socket (1 held message)" \
	grep -q "^mailbag: 1 held message(s) of all domains made due" "$root/tmp/log"

# luci-app-mailbag's files, and its rpcd plugin as rpcd runs it for LuCI.
luci_ipk="$("$repo/openwrt-package/build-luci-ipk.sh" --out "$work/ipk")" || fail "build-luci-ipk.sh failed"
step "opkg install $(basename "$luci_ipk")"
tar -xzOf "$luci_ipk" ./data.tar.gz | tar -xzf - -C "$root"
tar -xzOf "$luci_ipk" ./control.tar.gz | tar -xzOf - ./postinst >"$root/tmp/luci.postinst"
out="$(on_router 'sh /tmp/luci.postinst' 2>&1)"
show "postinst: exit $? ${out:-(no output)}"
check "LuCI: views under /www/luci-static/resources/view/mailbag" \
	test -s "$root/www/luci-static/resources/view/mailbag/settings.js"
step "LuCI: rpcd calls luci.mailbag (/usr/libexec/rpcd/luci.mailbag)"
list="$(on_router '/usr/libexec/rpcd/luci.mailbag list')"
show "list: $list"
status="$(on_router "echo '{}' | /usr/libexec/rpcd/luci.mailbag call status")"
show "call status: $status"
check "LuCI: status through the plugin shows the held message" \
	sh -c 'printf "%s" "$1" | grep -q "\"queue_depth\":1"' _ "$status"
queue="$(on_router "echo '{\"limit\":10}' | /usr/libexec/rpcd/luci.mailbag call queue")"
show "call queue: $queue"
check "LuCI: queue through the plugin lists it" \
	sh -c 'printf "%s" "$1" | grep -q "\"recipients\":\[\"bob@example.com\"\]"' _ "$queue"

# ---- remove, as opkg does: prerm, delete the package's files, postrm
step "opkg remove mailbag"
kill "$daemon_pid" 2>/dev/null
wait "$daemon_pid" 2>/dev/null
daemon_pid=""
# Stopped but still enabled: the office server behind the port forward stays guarded.
on_router "/etc/init.d/mailbag stop; /etc/init.d/firewall reload"
check "stopped (still enabled): a fw4 reload keeps port 25 walled" walled
on_router "/usr/lib/opkg/info/mailbag.prerm remove"
while read -r f; do rm -f "$root$f"; done <"$root/usr/lib/opkg/info/mailbag.list"
out="$(on_router '/usr/lib/opkg/info/mailbag.postrm remove' 2>&1)"
show "postrm: exit $? ${out:-(no output)}"
after="$(on_router 'nft list ruleset')"
if [ "$after" = "$before" ]; then
	pass "remove: ruleset exactly as before install"
else
	fail "remove: ruleset differs from before install:"
	diff <(printf '%s\n' "$before") <(printf '%s\n' "$after") >&2
fi
check "remove: generated rules file gone" test ! -e "$root/usr/share/nftables.d/table-pre/50-mailbag.nft"
check "remove: include unregistered" sh -c '! grep -q mailbag "$1"' _ "$root/etc/config/firewall"
check "remove: init script disabled" test ! -e "$root/etc/rc.d/S95mailbag"
on_router "/etc/init.d/firewall reload"
check "remove: a later fw4 reload stays clean" test "$(on_router 'nft list ruleset')" = "$before"
finish
