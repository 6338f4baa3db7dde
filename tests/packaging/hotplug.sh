#!/bin/bash
# shellcheck source-path=SCRIPTDIR
# shellcheck disable=SC2016 # inner 'sh -c' scripts expand their own "$1"
# SPDX-License-Identifier: Apache-2.0
# The WAN hotplug handler, run under POSIX sh as hotplug-call runs it (ACTION, INTERFACE in
# the environment) in a sandbox: its absolute paths (/usr/bin/mailbag, /lib/functions.sh)
# point at a recording fake mailbag and the stand-in OpenWrt shell API (whose `logger`
# records), and `uci` is a fake reading fixture files. Checks which interfaces count as WAN (the
# networks of firewall.wan_zone) and what runs on ifup/ifdown.
set -uo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bin" "$work/uci"

cat >"$work/bin/mailbag" <<EOT
#!/bin/sh
echo "\$*" >>"$work/calls"
EOT
# uci -q get PACKAGE.@TYPE[0].OPTION, as the handler uses it.
cat >"$work/bin/uci" <<EOT
#!/bin/sh
[ "\$1" = -q ] && shift
[ "\$1" = get ] || exit 1
spec="\$2"; pkg="\${spec%%.*}"; rest="\${spec#*.@}"; type="\${rest%%\[*}"; opt="\${rest##*.}"
awk -v t="\$type" -v o="\$opt" '
	\$1 == "config" { n += (\$2 == t); cur = (\$2 == t && n == 1) }
	cur && \$1 == "option" && \$2 == o { v = \$3; gsub("'\''", "", v); print v; found = 1 }
	END { exit !found }
' "$work/uci/\$pkg"
EOT
chmod +x "$work/bin/"*

cat >"$work/uci/firewall" <<'EOT'
config zone
	option name 'lan'
	list network 'lan'
config zone
	option name 'wan'
	list network 'wan'
	list network 'wan6'
config zone
	option name 'office_wan'
	list network 'lte'
EOT

sed -e "s#/usr/bin/mailbag#$work/bin/mailbag#g" \
	-e "s#/lib/functions.sh#$repo/tests/packaging/procd-stubs.sh#" \
	"$repo/openwrt-package/mailbag/files/mailbag.hotplug" >"$work/handler"

mailbag_uci() { # ENABLED UPSTREAM_SILO [WAN_ZONE]
	{
		echo "config mailbag 'main'"
		echo "	option enabled '$1'"
		echo "config relay 'relay'"
		[ -n "$2" ] && echo "	option upstream_silo '$2'"
		echo "config firewall 'firewall'"
		[ -n "${3:-}" ] && echo "	option wan_zone '$3'"
	} >"$work/uci/mailbag"
}

# event ACTION INTERFACE: runs the handler; waits (bounded) for its background work.
event() {
	: >"$work/calls"
	: >"$work/log"
	ACTION="$1" INTERFACE="$2" PATH="$work/bin:$PATH" LOG="$work/log" UCI_DIR="$work/uci" \
		CONFIG="$work/uci/mailbag" sh "$work/handler"
	for _ in $(seq 50); do
		grep -q "queue flush" "$work/calls" && break
		sleep 0.1
	done
	sleep 0.2
}
calls() { tr '\n' ';' <"$work/calls"; }

mailbag_uci 1 silo.example.net:25
event ifup wan
check "ifup wan: etrn then queue flush" test "$(calls)" = "etrn;queue flush;"
check "ifup wan: logged" grep -q "WAN wan up" "$work/log"
event ifup wan6
check "ifup wan6 (also in zone wan): flush" test "$(calls)" = "etrn;queue flush;"
event ifup lan
check "ifup lan: nothing" test -z "$(calls)"
event ifdown wan
check "ifdown wan: no commands" test -z "$(calls)"
check "ifdown wan: logged" grep -q "WAN wan down" "$work/log"

mailbag_uci 1 ""
event ifup wan
check "no upstream silo: flush only" test "$(calls)" = "queue flush;"

mailbag_uci 1 silo.example.net:25 office_wan
event ifup lte
check "wan_zone office_wan: its network lte counts" test "$(calls)" = "etrn;queue flush;"
event ifup wan
check "wan_zone office_wan: wan does not" test -z "$(calls)"

mailbag_uci 0 silo.example.net:25
event ifup wan
check "disabled: nothing" test -z "$(calls)$(cat "$work/log")"
finish
