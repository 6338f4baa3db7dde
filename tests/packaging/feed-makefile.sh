#!/bin/bash
# shellcheck source-path=SCRIPTDIR disable=SC2016
# SPDX-License-Identifier: Apache-2.0
# Runs the feed Makefile's own recipes (Build/Prepare, Package/mailbag/install, conffiles)
# under GNU make with a stand-in OpenWrt build system (rules.mk, package.mk,
# rust-package.mk from a separate feed), then checks that the prepared sources are the
# workspace without build output, and that the installed tree is exactly the data tree
# build-ipk.sh packs: same files, same modes. Catches the Makefile and the ipk script
# drifting apart, and Makefile syntax errors, without an SDK.
set -uo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

command -v make >/dev/null || { echo "make not installed" >&2; exit 1; }
bin="$(mailbag_bin)" || { echo "cannot build mailbag" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
top="$work/openwrt"

# The stand-in build system: the install macros as OpenWrt defines them, and a
# BuildPackage that exposes the package's recipes as plain targets.
mkdir -p "$top/include" "$top/feeds/packages/lang/rust"
cat >"$top/rules.mk" <<'EOT'
INSTALL_DIR:=install -d -m0755
INSTALL_BIN:=install -m0755
INSTALL_DATA:=install -m0644
INSTALL_CONF:=install -m0600
CP:=cp -fpR
INCLUDE_DIR:=$(TOPDIR)/include
EOT
cat >"$top/include/package.mk" <<'EOT'
define BuildPackage
prepare:
	$$(Build/Prepare)
install:
	$$(call Package/$(1)/install,$$(DEST))
conffiles:
	@echo "$$(strip $$(Package/$(1)/conffiles))"
version:
	@echo "$$(PKG_NAME) $$(PKG_VERSION)-r$$(PKG_RELEASE) $$(PKG_LICENSE) $$(PKG_BUILD_DEPENDS)"
compile-args:
	@echo '$$(strip $$(Build/Compile))'
endef
EOT
# As rust-values.mk: the feed's profile variables on cargo's command line.
cat >"$top/feeds/packages/lang/rust/rust-package.mk" <<'EOT'
RustBinPackage=
CARGO_PKG_VARS=CARGO_PROFILE_RELEASE_PANIC=unwind CARGO_PROFILE_RELEASE_OVERFLOW_CHECKS=true
Build/Compile/Cargo=$(CARGO_PKG_VARS) cargo install --path "$(PKG_BUILD_DIR)/$(1)" $(2)
EOT

mk() {
	make -s -C "$repo/openwrt-package/mailbag" TOPDIR="$top" \
		PKG_BUILD_DIR="$work/build" PKG_INSTALL_DIR="$work/pkginstall" DEST="$work/dest" "$@"
}

check "Makefile parses; name, version, license, build deps" \
	test "$(mk version)" = "mailbag 0.1.0-r2 Apache-2.0 rust/host"
check "conffiles: /etc/config/mailbag" test "$(mk conffiles)" = /etc/config/mailbag
compile="$(mk compile-args)"
check "compiles the firmware crate of the virtual workspace, router features" \
	sh -c 'case "$1" in *"cargo install --path \"$2/build/firmware\" --no-default-features") ;; *) exit 1 ;; esac' \
	_ "$compile" "$work"
# The workspace's profile wins over rust-values.mk's: later assignments on the command line.
env_of() { printf '%s\n' "$compile" | tr ' ' '\n' | sed -n "s/^$1=//p" | tail -1; }
check "profile carried into the SDK build: panic=abort" test "$(env_of CARGO_PROFILE_RELEASE_PANIC)" = abort
check "profile carried into the SDK build: no overflow checks" \
	test "$(env_of CARGO_PROFILE_RELEASE_OVERFLOW_CHECKS)" = false
check "std rebuilt from rust/host's rust-src (build-std)" \
	test "$(env_of CARGO_UNSTABLE_BUILD_STD)" = std,panic_abort
check "MAILBAG_BUILD_STD=0: the prebuilt std" \
	sh -c 'case "$1" in *CARGO_UNSTABLE_BUILD_STD*) exit 1 ;; esac' _ "$(mk compile-args MAILBAG_BUILD_STD=0)"

# Build/Prepare copies the workspace (from the checkout, found through make's CURDIR).
mk prepare >/dev/null
check "prepare: workspace manifest and lock" test -f "$work/build/Cargo.toml" -a -f "$work/build/Cargo.lock"
check "prepare: crates" test -f "$work/build/firmware/Cargo.toml" -a -d "$work/build/hal" -a -d "$work/build/web"
check "prepare: no target/, fuzz crates or rust-toolchain.toml" \
	test -z "$(find "$work/build" \( -name target -o -name 'fuzz-uci' -o -name rust-toolchain.toml \) -print -quit)"

# Package/mailbag/install with the host binary where cargo install would put it.
mkdir -p "$work/pkginstall/bin"
cp "$bin" "$work/pkginstall/bin/mailbag"
mk install >/dev/null
ipk="$("$repo/openwrt-package/build-ipk.sh" --binary "$bin" --arch x86_64 --out "$work/ipk")"
mkdir -p "$work/ipkdata"
tar -xzOf "$ipk" ./data.tar.gz | tar -xzf - -C "$work/ipkdata"
tree() { (cd "$1" && find . -mindepth 1 -printf '%p %m %y\n' | LC_ALL=C sort); }
if diff <(tree "$work/dest") <(tree "$work/ipkdata") >"$work/diff"; then
	pass "feed install tree = build-ipk.sh data tree ($(tree "$work/dest" | grep -c ' f$') files)"
else
	fail "feed install tree and build-ipk.sh data tree differ:"
	cat "$work/diff" >&2
fi
finish
