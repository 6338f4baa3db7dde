#!/bin/bash
# shellcheck source-path=SCRIPTDIR
# SPDX-License-Identifier: Apache-2.0
# Every shell script of the package and its tests passes shellcheck. Scripts that run on the
# router are checked as POSIX sh (busybox ash), host scripts as bash.
set -uo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

command -v shellcheck >/dev/null || { echo "shellcheck not installed (apt shellcheck)" >&2; exit 1; }

target_scripts=(
	openwrt-package/mailbag/files/mailbag.init
	openwrt-package/mailbag/files/mailbag.hotplug
	openwrt-package/mailbag/files/mailbag.firewall
	openwrt-package/mailbag/files/mailbag.uci-defaults
	openwrt-package/mailbag/test.sh
	openwrt-package/luci-app-mailbag/root/usr/libexec/rpcd/luci.mailbag
	tests/packaging/router/uci
	tests/packaging/router/rc.common
	tests/packaging/router/fw4
	tests/packaging/router/firewall.init
	tests/packaging/router/logger
)
host_scripts=(openwrt-package/build-ipk.sh tests/packaging/*.sh)

cd "$repo" || exit 1
for f in "${target_scripts[@]}"; do
	check "shellcheck (sh) $f" shellcheck -s sh "$f"
done
for f in "${host_scripts[@]}"; do
	check "shellcheck (bash) $f" shellcheck -x -s bash "$f"
done
finish
