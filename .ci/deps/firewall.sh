#!/usr/bin/env bash
# Setup for the firewall tests (firmware/tests/firewall_netns.rs). Idempotent; run as root.
set -euo pipefail
# Debian 12's iptables defaults to the nf_tables backend, which is what the tests expect
# (iptables-restore commits one table atomically either way).
if command -v update-alternatives >/dev/null && [ -e /usr/sbin/iptables-nft ]; then
    update-alternatives --set iptables /usr/sbin/iptables-nft >/dev/null
    update-alternatives --set ip6tables /usr/sbin/ip6tables-nft >/dev/null
fi
# Fail fast, with a clear message, if this machine cannot create network namespaces.
probe="mbfw-ci-probe-$$"
ip netns add "$probe"
ip netns del "$probe"
# /etc/netns is where `ip netns exec` finds per-namespace hosts/resolv.conf (DNS test).
mkdir -p /etc/netns
