#!/bin/bash
# shellcheck source-path=SCRIPTDIR
# shellcheck disable=SC2016 # inner 'sh -c' scripts expand their own "$1"
# SPDX-License-Identifier: Apache-2.0
# The procd init script's decisions, run under POSIX sh against stand-ins for OpenWrt's
# shell API (procd-stubs.sh) and the real mailbag binary's check-config: disabled means no
# instance; enabled and valid means one foreground, respawned instance logging to logd;
# a config check-config rejects, or an invalid 'enabled', means no instance and a log line;
# reload sends SIGHUP, unless check-config rejects the file.
set -uo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

bin="$(mailbag_bin)" || { echo "cannot build mailbag" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
init="$repo/openwrt-package/mailbag/files/mailbag.init"
shipped="$repo/openwrt-package/mailbag/files/mailbag.config"

# The real binary, except that `firewall apply` (which would change this host's firewall)
# is only recorded; tests/packaging/router.sh runs it for real in a network namespace.
cat >"$work/prog" <<EOT
#!/bin/sh
if [ "\$1" = firewall ]; then echo "firewall \$*" >>"$work/log"; exit 0; fi
exec "$bin" "\$@"
EOT
chmod +x "$work/prog"

# run_init CONFIG_TEXT FUNCTION: runs the init script's FUNCTION; the procd log is in $work/log.
run_init() {
	printf '%s' "$1" >"$work/mailbag"
	: >"$work/log"
	LOG="$work/log" sh -c '
		. "$1"; . "$2"
		PROG="$3"; CONFIG="$4"; STATE_DIR="$5/state"; RUN_DIR="$5/run"; PASSWD="$5/passwd"
		UJAIL="$5/ujail"; LEDS_DIR="$5/leds"; NOTIFY_DIR="$5/state/notify.d"
		# The host has no user mailbag: ownership changes are recorded, then tried.
		chown() { log "chown $*"; command chown "$@" 2>/dev/null; }
		"$6"
	' _ "$repo/tests/packaging/procd-stubs.sh" "$init" "$work/prog" "$work/mailbag" "$work" "$2" 2>>"$work/stderr"
}

with() { # CONFIG_TEXT SED_EXPR: the config with one edit applied
	printf '%s' "$1" | sed "$2"
}

config="$(with "$(cat "$shipped")" "s#'/srv/mailbag/spool.img'#'$work/spool/spool.img'#")"

run_init "$config" start_service
check "shipped config (enabled 0): no instance" test ! -s "$work/log"

enabled="$(with "$config" "s/option enabled '0'/option enabled '1'/")"
run_init "$enabled" start_service
check "enabled: one instance" test "$(grep -c '^open_instance' "$work/log")" = 1
check "enabled: foreground 'mailbag run --config --state-dir' (state dir named here)" \
	grep -qx "set_param command $work/prog run --config $work/mailbag --state-dir $work/state" "$work/log"
check "enabled: state and run directories made, private" \
	test "$(stat -c %a "$work/state") $(stat -c %a "$work/run")" = "700 700"
check "enabled: walled garden applied at start with the UCI file" \
	grep -qx "firewall firewall apply --config $work/mailbag" "$work/log"
# No 'mailbag' user in passwd (yet): the script falls back to root.
check "no mailbag user: runs as root, no user param, no jail" \
	sh -c '! grep -q "set_param user" "$1" && ! grep -q "^jail" "$1"' _ "$work/log"
echo "mailbag:x:$(id -u):$(id -g):mailbag:/var/run/mailbag:/bin/false" >"$work/passwd"
run_init "$enabled" start_service
check "no ujail: root (procd applies capabilities only through ujail), and says so" \
	sh -c '! grep -q "set_param user" "$1" && grep -q "daemon.warn no .*ujail" "$1"' _ "$work/log"
printf '#!/bin/sh\n' >"$work/ujail"
chmod +x "$work/ujail"
run_init "$enabled" start_service
check "with the package's user: user and group mailbag" \
	sh -c 'grep -qx "set_param user mailbag" "$1" && grep -qx "set_param group mailbag" "$1"' _ "$work/log"
check "with the package's user: no_new_privs" grep -qx "set_param no_new_privs 1" "$work/log"
# procd passes user, capabilities and no_new_privs to ujail only (service/instance.c
# jail_run); without a jail it just setuid()s and port 25 cannot be bound.
check "jailed: procd_add_jail mailbag (log, procfs) in the instance" \
	sh -c 'sed -n "/^open_instance/,/^close_instance/p" "$1" | grep -qx "jail mailbag log procfs"' _ "$work/log"
check "jailed: no mount outside the jail (procd.sh would drop it)" \
	sh -c '! grep -q "^jail_mount.*_lost" "$1"' _ "$work/log"
check "jailed: state and run directories mounted rw" \
	sh -c 'grep -qx "jail_mount_rw $2/state" "$1" && grep -qx "jail_mount_rw $2/run" "$1"' _ "$work/log" "$work"
check "jailed: spool image's directory mounted rw" grep -qx "jail_mount_rw $work/spool" "$work/log"
check "jailed: the config's directory read-only (uci commit renames the file)" \
	grep -qx "jail_mount $work" "$work/log"
check "jailed: CA bundle for TLS to next hops" grep -qx "jail_mount /etc/ssl/certs" "$work/log"
check "jailed: walled garden needs no nft in the jail" sh -c '! grep -q "^jail_mount.*nft\$" "$1"' _ "$work/log"
check "walled garden on: capabilities with CAP_NET_ADMIN" \
	grep -qx "set_param capabilities /etc/capabilities/mailbag-firewall.json" "$work/log"
check "enabled: respawn forever" grep -qx "set_param respawn 3600 5 0" "$work/log"
check "enabled: stdout and stderr to logd" \
	sh -c 'grep -qx "set_param stdout 1" "$1" && grep -qx "set_param stderr 1" "$1"' _ "$work/log"
check "enabled: spool directory created" test -d "$work/spool"

invalid="$(with "$enabled" "s/list listen '0.0.0.0:25'/list listen 'x:25'/")"
run_init "$invalid" start_service
check "invalid config: no instance" sh -c '! grep -q open_instance "$1"' _ "$work/log"
check "invalid config: errors logged with the key" \
	grep -q "logger -t mailbag -p daemon.err.*smtp.listen\[0\]: 'x:25' is not an address:port" "$work/log"

bad_bool="$(with "$config" "s/option enabled '0'/option enabled 'maybe'/")"
run_init "$bad_bool" start_service 2>/dev/null
check "enabled 'maybe': no instance" sh -c '! grep -q open_instance "$1"' _ "$work/log"

run_init "$enabled" reload_service
check "reload: SIGHUP to the running instance" grep -qx "send_signal mailbag \* HUP" "$work/log"
run_init "$invalid" reload_service
check "reload of an invalid config: no signal" sh -c '! grep -q send_signal "$1"' _ "$work/log"
check "reload of an invalid config: errors logged" grep -q "logger -t mailbag -p daemon.err" "$work/log"

# The package's file has no web section (the router build has no page and refuses
# web.listen); a build with the page, as this test binary, runs as root for /etc/shadow.
web="$(printf "%s\nconfig web 'web'\n\tlist listen '127.0.0.1:8025'\n" "$enabled")"
run_init "$web" start_service
check "built-in page on (web.listen, a build with the page): root (it reads /etc/shadow)" \
	sh -c 'grep -q open_instance "$1" && ! grep -q "set_param user" "$1"' _ "$work/log"
fw_off="$(with "$enabled" "s/option mode 'walled-garden'/option mode 'off'/")"
run_init "$fw_off" start_service
check "firewall mode off: no apply at start" sh -c '! grep -q "^firewall" "$1"' _ "$work/log"
check "firewall mode off: no CAP_NET_ADMIN" \
	grep -qx "set_param capabilities /etc/capabilities/mailbag.json" "$work/log"
follow="$(with "$enabled" "s/option mode 'walled-garden'/option mode 'open-when-primary-down'/")"
run_init "$follow" start_service
check "open-when-primary-down: the include file in the jail" \
	grep -qx "jail_mount /usr/share/nftables.d/table-pre/50-mailbag.nft" "$work/log"
if nft="$(command -v nft)"; then
	check "open-when-primary-down: nft in the jail" grep -qx "jail_mount $nft" "$work/log"
fi

mtd="$(with "$enabled" "s#'$work/spool/spool.img'#'$work/mtd5'#")"
: >"$work/mtd5"
# A path under /dev is the spool's device node; here any file stands in for /dev/mtd5.
run_init "$(printf '%s' "$mtd" | sed "s#'$work/mtd5'#'/dev/mtd5'#")" start_service
check "MTD spool: the device node mounted rw" grep -qx "jail_mount_rw /dev/mtd5" "$work/log"

mkdir -p "$work/leds/mailbag:green"
for f in trigger brightness max_brightness; do echo 0 >"$work/leds/mailbag:green/$f"; done
led="$(with "$enabled" "s/# option led ''/option led 'mailbag:green'/")"
run_init "$led" start_service
check "monitor.led: trigger and brightness handed to the daemon's user" sh -c '
	grep -qx "chown mailbag:mailbag $2/trigger" "$1" && grep -qx "chown mailbag:mailbag $2/brightness" "$1"' \
	_ "$work/log" "$work/leds/mailbag:green"
check "monitor.led: no other file of the LED" sh -c '! grep -q "chown .*max_brightness" "$1"' _ "$work/log"
check "monitor.led: the LED's directory mounted rw in the jail" \
	grep -qx "jail_mount_rw $work/leds/mailbag:green" "$work/log"
rm -f "$work/passwd"
run_init "$led" start_service
check "monitor.led as root: nothing chowned" sh -c '! grep -q "chown .*leds" "$1"' _ "$work/log"
echo "mailbag:x:$(id -u):$(id -g):mailbag:/var/run/mailbag:/bin/false" >"$work/passwd"

mkdir -p "$work/state/notify.d"
printf '#!/bin/sh\n' >"$work/state/notify.d/10-page"
chmod +x "$work/state/notify.d/10-page"
run_init "$enabled" start_service
check "a notify hook: jail without mounts (a hook may run anything), still user and caps" sh -c '
	grep -qx "jail mailbag" "$1" && ! grep -q "^jail_mount" "$1" &&
	grep -qx "set_param user mailbag" "$1" && grep -q "set_param capabilities" "$1"' _ "$work/log"
rm -r "$work/state/notify.d"

run_init "$config" service_triggers
check "reload trigger on /etc/config/mailbag" grep -qx "reload_trigger mailbag" "$work/log"
for section in mailbag smtp policy spool relay firewall daemon notify monitor; do
	check "procd validation covers config $section" sh -c \
		'sed -n "/^open_validate\$/,/^close_validate\$/p" "$1" | grep -q "^validate mailbag $2 "' \
		_ "$work/log" "$section"
done
# Every commented default and example of the package's file, uncommented, is valid.
sed -E -e "s/^\t#( +e\.g\.)? (option|list) /\t\2 /" -e "s/^(\t(option|list) [a-z_]+ '[^']*').*/\1/" \
	"$shipped" >"$work/examples"
check "every commented option and example of the shipped file parses (check-config)" \
	sh -c '"$1" check-config "$2" >/dev/null' _ "$bin" "$work/examples"
check "the shipped file offers no web page and no /metrics (not in the router build)" \
	sh -c '! grep -Eq "^config web|metrics_token" "$1"' _ "$shipped"
# Every option of the package's own file is in the schema procd validates.
sed -n "s/^[[:space:]]*#*[[:space:]]*\(option\|list\) \([a-z_]*\) .*/\2/p" "$shipped" | sort -u >"$work/opts"
while read -r opt; do
	check "option $opt is validated" grep -q "validate mailbag .* $opt:" "$work/log"
done <"$work/opts"
finish
