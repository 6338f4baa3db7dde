#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# What each protection check costs per message.
#
#   tests/bench/protect.sh [N] [RUNS]  N messages of 100 KiB per case (default 200, at most
#                                      250: a 32 MiB spool image per run), each case
#                                      run RUNS times (default 3), the median kept
#
# 1. The sans-IO cores in-process (firmware/examples/protect_bench.rs): the MIME scan of
#    the inbound path, the spam rules, DNSBL names, the guess table, the verification cache.
# 2. The release daemon on loopback, its next hop down (mail is held), fed N messages of
#    100 KiB over one session by Postfix's smtp-source, once with every check off and once
#    per check on: the difference is that check's cost per message, as a sender sees it
#    (including the group-commit sync every message waits for). clamd (Debian
#    clamav-daemon, an EICAR-only database made with sigtool) and dnsmasq (a blocklist
#    zone) run on loopback. Needs smtp-source; clamd, sigtool and dnsmasq for their cases.
#
# Prints a table and saves it to test-artifacts/bench/protect.txt. Processes it starts are
# stopped by PID.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
N=${1:-200}
RUNS=${2:-3}
dir=$root/target/bench/protect
out_dir=$root/test-artifacts/bench
rm -rf "$dir"
mkdir -p "$dir" "$out_dir"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 200); do (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }

cargo build --release -q -p mailbag --bin mailbag --example protect_bench
bin=$root/target/release/mailbag
table=$dir/table.txt
{
  echo "# mailbag $(git rev-parse --short HEAD), $(date -u +%F), $(nproc) CPUs"
  echo
  echo "## sans-IO cores, in-process"
  "$root/target/release/examples/protect_bench" 200
  echo
} >"$table"

dns_line=""
if command -v dnsmasq >/dev/null; then
  dns_port=$(free_port)
  dnsmasq --no-daemon --bind-interfaces --listen-address=127.0.0.1 --port="$dns_port" \
    --no-resolv --no-hosts --pid-file= --local=/test/ \
    --host-record=2.0.0.127.bl.test,127.0.0.2 \
    --mx-host=sender.test,mx.sender.test,10 --host-record=mx.sender.test,192.0.2.25 \
    >/dev/null 2>&1 &
  pids+=("$!")
  dns_line="dns-servers = [\"127.0.0.1:$dns_port\"]"
  sleep 0.5
fi
clamd_addr=""
if command -v clamd >/dev/null && command -v sigtool >/dev/null; then
  mkdir -p "$dir/clamd/db"
  # shellcheck disable=SC2016 # the EICAR string, literally
  printf '%s' 'X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*' >"$dir/clamd/eicar.com"
  sigtool --md5 "$dir/clamd/eicar.com" >"$dir/clamd/db/eicar.hdb"
  cport=$(free_port)
  printf 'Foreground yes\nLogFile %s\nDatabaseDirectory %s\nTCPSocket %s\nTCPAddr 127.0.0.1\nStreamMaxLength 50M\n' \
    "$dir/clamd/clamd.log" "$dir/clamd/db" "$cport" >"$dir/clamd/clamd.conf"
  clamd -c "$dir/clamd/clamd.conf" >/dev/null 2>&1 &
  pids+=("$!")
  wait_port "$cport" || { echo "clamd did not start" >&2; exit 1; }
  clamd_addr="127.0.0.1:$cport"
fi

# median_case NAME POLICY_TOML TABLES_TOML: the median of RUNS runs of run_case.
median_case() {
  local runs=()
  for i in $(seq 1 "$RUNS"); do runs+=("$(run_case "$1-$i" "$2" "$3")"); done
  printf '%s\n' "${runs[@]}" | sort -g | sed -n "$(( (RUNS + 1) / 2 ))p"
}

# run_case NAME POLICY_TOML TABLES_TOML: seconds per message for N messages.
run_case() {
  local name=$1 policy=$2 tables=$3 cdir=$dir/$1 port
  mkdir -p "$cdir"
  port=$(free_port)
  cat >"$cdir/mailbag.toml" <<TOML
role = "edge"
[smtp]
hostname = "mx.office.test"
listen = ["127.0.0.1:$port"]
[policy]
domains = ["office.test"]
$policy
[spool]
path = "$cdir/spool.img"
size = 33554432
max-bytes = 30000000
max-messages = 10000
[relay]
next-hops = ["127.0.0.1:9"]
$dns_line
[firewall]
mode = "off"
[web]
listen = []
[daemon]
control-socket = ""
$tables
TOML
  "$bin" run --config "$cdir/mailbag.toml" --state-dir "$cdir" >"$cdir/log" 2>&1 &
  local pid=$!
  pids+=("$pid")
  wait_port "$port" || { echo "$name: daemon did not start: $(tail -3 "$cdir/log")" >&2; exit 1; }
  local t0 t1
  t0=$(date +%s.%N)
  smtp-source -s 1 -m "$N" -l 102400 -f a@sender.test -t bob@office.test "127.0.0.1:$port"
  t1=$(date +%s.%N)
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
  # The image is written in full at creation: drop it, keep the log.
  rm -f "$cdir/spool.img"
  local got
  got=$(grep -c "accepted " "$cdir/log" || true)
  [ "$got" -eq "$N" ] || { echo "$name: $got of $N accepted" >&2; tail -5 "$cdir/log" >&2; exit 1; }
  python3 -c "print(($t1 - $t0) / $N)"
}

off='block-extensions = []
spam-flag-score = 0'
declare -A secs
secs[off]=$(median_case off "$off" "")
secs[attachments]=$(median_case attachments 'block-extensions = ["pif", "scr", "exe"]
spam-flag-score = 0' "")
secs[spam]=$(median_case spam 'block-extensions = []
spam-flag-score = 5' "")
cases="attachments spam"
if [ -n "$dns_line" ]; then
  secs[dnsbl]=$(median_case dnsbl "$off
dnsbl = [\"bl.test\"]
dnsbl-score = [\"bl.test\"]" "")
  cases="$cases dnsbl"
fi
if [ -n "$clamd_addr" ]; then
  secs[clamd]=$(median_case clamd "$off" "[scan]
clamd = \"$clamd_addr\"")
  secs[all]=$(median_case all 'block-extensions = ["pif", "scr", "exe"]
spam-flag-score = 5
dnsbl = ["bl.test"]' "[scan]
clamd = \"$clamd_addr\"")
  cases="$cases clamd all"
fi
{
  echo "## daemon, $N messages of 100 KiB over one session (next hop down: held), median of $RUNS runs"
  printf '%-12s | %12s | %14s\n' "checks on" "ms/message" "cost/message"
  printf '%-12s | %12.2f | %14s\n' "none" "$(python3 -c "print(${secs[off]}*1000)")" "-"
  for c in $cases; do
    printf '%-12s | %12.2f | %+11.2f ms\n' "$c" \
      "$(python3 -c "print(${secs[$c]}*1000)")" "$(python3 -c "print((${secs[$c]}-${secs[off]})*1000)")"
  done
} >>"$table"
cat "$table"
cp "$table" "$out_dir/protect.txt"
echo "(saved to test-artifacts/bench/protect.txt; logs in $dir)"
