#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds an arm64 test image (Debian kernel + busybox + static mailbag) and boots it in
# qemu-system-aarch64 with user networking.
#
#   qemu/run-image.sh [--build-only | --no-build]
#
# Environment:
#   MAILBAG_SMTP_PORT  host port forwarded to the guest's port 25 (default 2525, loopback only)
#   MAILBAG_WEB_PORT   host port forwarded to the guest's admin page on 8080 (default 8080)
#   MAILBAG_STATE_DIR  host directory shared with the guest as /state (spool image); default
#                      qemu/build/state
#   MAILBAG_BIN        the aarch64 binary to put in the image (default: (re)built by
#                      qemu/build-static.sh aarch64-unknown-linux-musl, a no-op when fresh)
#   MAILBAG_CONFIG     guest config (default qemu/guest-config.toml)
#   MAILBAG_QEMU_PIDFILE  where QEMU writes its PID (so a caller can stop it by PID)
# The console is the terminal (-nographic); Ctrl-a x quits QEMU.
#
# Needs (root, once): dpkg --add-architecture arm64 + apt-get update, qemu-system-arm, cpio.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$here/build
port=${MAILBAG_SMTP_PORT:-2525}
web_port=${MAILBAG_WEB_PORT:-8080}
state=${MAILBAG_STATE_DIR:-$build/state}
config=${MAILBAG_CONFIG:-$here/guest-config.toml}
bin=${MAILBAG_BIN:-}
mode=${1:-all}
case $mode in all|--build-only|--no-build) ;; *) echo "usage: $0 [--build-only|--no-build]" >&2; exit 2 ;; esac

# The modules /init loads: virtio PCI transport, the NIC, and 9p over virtio for /state.
# Their dependencies are added from each module's own depends= list.
MODULES=(virtio_pci virtio_net 9pnet_virtio 9p)

log() { echo "run-image: $*" >&2; }

fetch_debs() {
  local debs=$build/debs kpkg
  mkdir -p "$debs"
  if ! ls "$debs"/linux-image-*_arm64.deb >/dev/null 2>&1 || ! ls "$debs"/busybox-static_*_arm64.deb >/dev/null 2>&1; then
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
      [ "$(id -u)" -eq 0 ] || { log "need root once for: dpkg --add-architecture arm64 && apt-get update"; exit 1; }
      dpkg --add-architecture arm64
      apt-get update -qq
    fi
    if ! apt-cache show busybox-static:arm64 >/dev/null 2>&1; then
      [ "$(id -u)" -eq 0 ] || { log "need root once for: apt-get update (arm64 lists)"; exit 1; }
      apt-get update -qq
    fi
    # The metapackage names the current kernel ABI package.
    kpkg=$(apt-cache depends linux-image-arm64:arm64 | sed -n 's/^ *Depends: \(linux-image-[0-9].*-arm64\):arm64$/\1/p' | head -n 1)
    [ -n "$kpkg" ] || { log "cannot find Debian's arm64 kernel package"; exit 1; }
    log "downloading $kpkg busybox-static (arm64)"
    # apt warns that root downloads unsandboxed; that is expected here.
    (cd "$debs" && apt-get download -q "$kpkg:arm64" busybox-static:arm64 2>/dev/null) \
      || { log "apt-get download failed"; exit 1; }
  fi
  local kdeb=("$debs"/linux-image-*_arm64.deb) bdeb=("$debs"/busybox-static_*_arm64.deb)
  unpack "${kdeb[0]}" "$build/kernel"
  unpack "${bdeb[0]}" "$build/busybox"
}

# Unpacks a .deb into a directory, unless that exact .deb is already unpacked there.
unpack() {
  local deb=$1 dir=$2
  [ "$(cat "$dir/.unpacked-from" 2>/dev/null)" = "$(basename "$deb")" ] && return 0
  rm -rf "$dir"
  dpkg-deb -x "$deb" "$dir"
  basename "$deb" > "$dir/.unpacked-from"
}

# Prints module file names (relative to the modules dir) with dependencies first.
module_order() {
  local moddir=$1; shift
  declare -A path=() seen=()
  local f n
  while IFS= read -r f; do
    n=${f##*/}; n=${n%%.ko*}; path[${n//-/_}]=$f
  done < <(cd "$moddir" && find kernel -name '*.ko')
  visit() {
    local m=${1//-/_} d deps
    [ -n "${seen[$m]:-}" ] && return 0
    seen[$m]=1
    [ -n "${path[$m]:-}" ] || return 0   # built into the kernel
    deps=$(tr '\0' '\n' < "$moddir/${path[$m]}" | sed -n 's/^depends=//p' | head -n 1)
    for d in ${deps//,/ }; do visit "$d"; done
    echo "${path[$m]}"
  }
  for n in "$@"; do visit "$n"; done
}

build_image() {
  if [ -z "$bin" ]; then
    "$here/build-static.sh" aarch64-unknown-linux-musl >&2
    bin=$build/bin/aarch64-unknown-linux-musl/mailbag
  fi
  fetch_debs
  local rootfs=$build/rootfs moddir ko
  moddir=$(ls -d "$build"/kernel/lib/modules/*)
  rm -rf "$rootfs"
  mkdir -p "$rootfs"/{bin,etc,modules,proc,sys,dev,tmp,state}
  cp "$build/busybox/bin/busybox" "$rootfs/bin/busybox"
  ln -s busybox "$rootfs/bin/sh"   # /init's interpreter; the other applets are linked at boot
  cp "$bin" "$rootfs/bin/mailbag"
  cp "$config" "$rootfs/etc/mailbag.toml"
  install -m 0755 "$here/guest-init.sh" "$rootfs/init"
  : > "$rootfs/modules/load-order"
  while IFS= read -r ko; do
    cp "$moddir/$ko" "$rootfs/modules/"
    basename "$ko" >> "$rootfs/modules/load-order"
  done < <(module_order "$moddir" "${MODULES[@]}")
  (cd "$rootfs" && find . | cpio -o -H newc --quiet | gzip -1) > "$build/initramfs.cpio.gz"
  local kernel=("$build"/kernel/boot/vmlinuz-*)
  cp "${kernel[0]}" "$build/vmlinuz"
  log "image: $build/vmlinuz + $build/initramfs.cpio.gz ($(tr '\n' ' ' < "$rootfs/modules/load-order"))"
}

[ "$mode" = --no-build ] || build_image
[ "$mode" = --build-only ] && exit 0
mkdir -p "$state"
pidfile=()
[ -n "${MAILBAG_QEMU_PIDFILE:-}" ] && pidfile=(-pidfile "$MAILBAG_QEMU_PIDFILE")
log "booting; SMTP on 127.0.0.1:$port, state in $state"
exec qemu-system-aarch64 "${pidfile[@]}" -M virt -cpu cortex-a53 -m 256 -smp 1 -nographic -no-reboot \
  -kernel "$build/vmlinuz" -initrd "$build/initramfs.cpio.gz" \
  -append "console=ttyAMA0 panic=-1 quiet" \
  -netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$port-10.0.2.15:25,hostfwd=tcp:127.0.0.1:$web_port-10.0.2.15:8080" \
  -device virtio-net-pci,netdev=n0,romfile= \
  -virtfs "local,path=$state,mount_tag=state,security_model=none,id=state"
