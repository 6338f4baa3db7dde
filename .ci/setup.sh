#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian 12 machine (idempotent).
# System packages are listed per area in .ci/deps/*.apt; extra steps in .ci/deps/*.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

need_root() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: run as root (or install the packages in .ci/deps/*.apt yourself)" >&2
    exit 1
  fi
}

pkgs=$(cat .ci/deps/*.apt 2>/dev/null | sed 's/#.*//' | tr -s ' \n' '\n' | sort -u | tr '\n' ' ')
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  need_root
  echo "setup: installing$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

rustup component add rustfmt clippy >/dev/null 2>&1 || true

for s in .ci/deps/*.sh; do
  [ -e "$s" ] || continue
  echo "setup: $s"
  bash "$s"
done
