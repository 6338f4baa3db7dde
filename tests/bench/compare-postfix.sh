#!/usr/bin/env bash
# Accept and relay benchmark: mailbag against a private Postfix instance, same machine, same disk.
#
# Usage (as root): tests/bench/compare-postfix.sh [DIR]
#   DIR: spool image, Postfix queue and logs (default: target/bench/compare-postfix);
#   both MTAs keep their queue there, so on the same filesystem.
# Environment (message counts per cell; defaults keep the run near 20 minutes):
#   N_4K=1000 N_100K=200 N_RELAY=1000  SESSIONS="1 10 50"  RELAY_SESSIONS="10 50"
#   DEPTH_TOTAL=20000 DEPTH_BATCH=1000 DEPTH_SESSIONS=10   (DEPTH_TOTAL=0 skips the series)
#   RESTART_HELD="1000 10000 50000"  (RESTART_HELD= skips); RESTART_DRAIN=10000
#   LIFE_N=2000 (flash bytes per message; 0 skips)   MEM_N=2000 (memory cells; 0 skips)
#   MUSL_BIN=path (a static musl build for the memory cells; built with
#   qemu/build-static.sh x86_64-unknown-linux-musl when unset; MUSL_BIN=none skips it)
#   DRAIN_TIMEOUT=300 (seconds a cell may wait for its messages)
# Needs Postfix >= 3.4 (postfix, postqueue, postsuper, smtp-source, smtp-sink).
#
# Per MTA and cell: accept rate with the next hop down (smtp-source, one connection per
# message), then the time to drain that held queue to a recovered next hop (an smtp-sink
# started on the next hop's port; then Postfix is told `postqueue -f`, mailbag `mailbag queue
# flush`, so neither waits for its own schedule or probe); relay rate with the next hop up (first byte sent to the
# last message arrived at the sink); peak memory of the whole MTA (Postfix: master and all
# its children summed). Every count is checked: a lost or duplicated message fails the run.
#
# Then the spool's cost as mail piles up: the depth series (4 KiB at DEPTH_SESSIONS
# sessions with the next hop down, in batches of DEPTH_BATCH up to DEPTH_TOTAL held: the
# rate of each batch, then the drain of everything held); restart-to-greeting (220) with
# RESTART_HELD messages held (and the drain of RESTART_DRAIN after such a restart); flash
# bytes programmed per 4 KiB message over its whole life (accepted with the next hop down,
# tried, delivered, its segment reclaimed: the spool's own counters, logged at stop); and
# whole-process memory idle and at 50 sessions for this build (glibc) and a static musl
# build (what routers run).
# The table goes to stdout and test-artifacts/bench/compare-postfix.txt.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
dir=${1:-target/bench/compare-postfix}
N_4K=${N_4K:-1000}
N_100K=${N_100K:-200}
N_RELAY=${N_RELAY:-1000}
SESSIONS=${SESSIONS:-1 10 50}
RELAY_SESSIONS=${RELAY_SESSIONS:-10 50}
DEPTH_TOTAL=${DEPTH_TOTAL:-20000}
DEPTH_BATCH=${DEPTH_BATCH:-1000}
DEPTH_SESSIONS=${DEPTH_SESSIONS:-10}
RESTART_HELD=${RESTART_HELD-1000 10000 50000}
RESTART_DRAIN=${RESTART_DRAIN:-10000}
LIFE_N=${LIFE_N:-2000}
MEM_N=${MEM_N:-2000}
MUSL_BIN=${MUSL_BIN:-}
DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-300}
DOMAIN=bench.test
out_dir=$root/test-artifacts/bench
PATH=$PATH:/usr/sbin:/sbin

die() {
    echo "compare-postfix: $*" >&2
    exit 1
}
[ "$(id -u)" = 0 ] || die "run as root (a private Postfix instance needs it)"
for t in postfix postqueue postsuper smtp-source smtp-sink ss; do
    command -v "$t" >/dev/null || die "$t not found"
done

cargo build --release -q -p mailbag
mailbag_bin=${CARGO_TARGET_DIR:-$root/target}/release/mailbag
[ -x "$mailbag_bin" ] || die "$mailbag_bin not built"

rm -rf "$dir"
mkdir -p "$dir" "$out_dir"
dir=$(cd "$dir" && pwd)
pf_etc=$dir/postfix/etc
pf_queue=$dir/postfix/queue
mb_dir=$dir/mailbag
mkdir -p "$pf_etc" "$pf_queue" "$dir/postfix/data" "$mb_dir"
chown postfix "$dir/postfix/data"

# --- processes we start, and how to stop them -----------------------------------------

pids=()
pf_running=0
cleanup() {
    local p
    for p in "${pids[@]}"; do
        kill "$p" 2>/dev/null || true
    done
    if [ "$pf_running" = 1 ]; then
        postfix -c "$pf_etc" stop >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

forget_pid() { # PID: drop it from the cleanup list
    local keep=() p
    for p in "${pids[@]}"; do
        [ "$p" = "$1" ] || keep+=("$p")
    done
    pids=("${keep[@]}")
}

stop_pid() { # PID: SIGTERM, wait (at most 30 s) for it to exit
    local i
    kill "$1" 2>/dev/null || true
    for ((i = 0; i < 300; i++)); do
        kill -0 "$1" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$1" 2>/dev/null && die "process $1 did not stop"
    wait "$1" 2>/dev/null || true
    forget_pid "$1"
}

free_port() {
    local p i
    for ((i = 0; i < 200; i++)); do
        p=$((20000 + RANDOM % 30000))
        if [ -z "$(ss -Htan "( sport = :$p or dport = :$p )")" ]; then
            echo "$p"
            return
        fi
    done
    die "no free port"
}

listening() { [ -n "$(ss -Hltn "sport = :$1")" ]; }

wait_until() { # SECONDS COMMAND...: poll every 0.05 s
    local limit=$(($1 * 20)) i
    shift
    for ((i = 0; i < limit; i++)); do
        "$@" && return 0
        sleep 0.05
    done
    return 1
}

now() { date +%s.%N; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }
div() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f", a / b; else print "-" }'; }

# --- memory: peak of the summed RSS (and PSS) of a process tree -----------------------

tree_mem() { # ROOT_PID: "rss_kib pss_kib" summed over ROOT and its descendants
    local tree rss pss files=() p
    # grep -s: a process may exit between the glob and the read.
    tree=$({ grep -s -E '^(PPid|VmRSS):' /proc/[0-9]*/status || true; } | awk -F'[/: \t]+' -v root="$1" '
        $5 == "PPid" { parent[$3] = $6 }
        $5 == "VmRSS" { mem[$3] = $6 }
        END {
            for (p in parent) {
                q = p
                for (n = 0; n < 32 && q != "" && q != "0"; n++) {
                    if (q == root) { sum += mem[p]; pids = pids " " p; break }
                    q = parent[q]
                }
            }
            print sum + 0 pids
        }')
    read -r rss tree <<<"$tree"
    for p in $tree; do
        files+=("/proc/$p/smaps_rollup")
    done
    pss=0
    if [ "${#files[@]}" -gt 0 ]; then
        pss=$({ grep -s -h '^Pss:' "${files[@]}" || true; } | awk '{ s += $2 } END { print s + 0 }')
    fi
    echo "$rss $pss"
}

sample_mem() { # ROOT_PID FILE: keeps the peaks ("rss pss", KiB) in FILE while ROOT lives
    local root=$1 file=$2 rss pss peak_rss=0 peak_pss=0
    [ -f "$file" ] && read -r peak_rss peak_pss <"$file"
    while kill -0 "$root" 2>/dev/null; do
        read -r rss pss < <(tree_mem "$root") || break
        ((rss > peak_rss)) && peak_rss=$rss
        ((pss > peak_pss)) && peak_pss=$pss
        echo "$peak_rss $peak_pss" >"$file.tmp" && mv "$file.tmp" "$file"
        sleep 0.2
    done
}

# --- the next hop: smtp-sink on loopback, counting what arrives -----------------------

sink_port=$(free_port)
sink_pid=
sink_out=$dir/sink.out
start_sink() {
    : >"$sink_out"
    smtp-sink -u nobody -c "127.0.0.1:$sink_port" 256 >"$sink_out" 2>"$dir/sink.err" &
    sink_pid=$!
    pids+=("$sink_pid")
    wait_until 10 listening "$sink_port" || die "smtp-sink did not listen: $(cat "$dir/sink.err")"
}
stop_sink() {
    stop_pid "$sink_pid"
    sink_pid=
}
sink_count() {
    local n
    n=$(tr '\r' '\n' <"$sink_out" | grep -ao 'mesg=[0-9]*' | tail -n 1 | cut -d= -f2)
    echo "${n:-0}"
}

# --- mailbag ----------------------------------------------------------------------------

mb_port=$(free_port)
mb_pid=
mb_log=
mb_mem=$dir/mailbag.mem
mb_cell=0
mb_bin=$mailbag_bin
mb_size=$((64 << 20))
# Index slots (allocated once; 100,000 for the depth series and the 50,000 restart; the
# memory cells use the router's default, 4,096).
mb_max=100000
start_mailbag() { # a fresh spool image (mb_size bytes) for every cell
    mb_cell=$((mb_cell + 1))
    local d=$mb_dir/$mb_cell
    mkdir -p "$d"
    cat >"$d/mailbag.toml" <<EOF
role = "edge"
[smtp]
hostname = "mx.$DOMAIN"
listen = ["127.0.0.1:$mb_port"]
max-sessions = 128
[policy]
domains = ["$DOMAIN"]
# Every sender here is smtp-source on 127.0.0.1: the per-client cap (8) would refuse the
# 10- and 50-session cells. Postfix's own cap (smtpd_client_connection_count_limit) is 50.
sessions-per-client = 100
[spool]
path = "$d/spool.img"
size = $mb_size
max-messages = $mb_max
max-bytes = $((mb_size - mb_size / 8))
[relay]
next-hops = ["127.0.0.1:$sink_port"]
probe-interval = 1
[firewall]
mode = "off"
[web]
listen = []
[daemon]
# Its own control socket (queue flush): never the system's /var/run/mailbag/control.sock,
# which another mailbag on this machine may hold.
control-socket = "$d/control.sock"
EOF
    mb_log=$d/mailbag.log
    : >"$mb_log"
    run_mailbag_timed
    wait_until 120 listening "$mb_port" || die "mailbag did not start: $(tail -n 5 "$mb_log")"
}
run_mailbag_timed() { # (re)starts mailbag on the current cell; the caller waits for the port
    local d=$mb_dir/$mb_cell
    "$mb_bin" run --config "$d/mailbag.toml" --state-dir "$d" >>"$mb_log" 2>&1 &
    mb_pid=$!
    pids+=("$mb_pid")
    sample_mem "$mb_pid" "$mb_mem" &
    mb_sampler=$!
    pids+=("$mb_sampler")
}
stop_mailbag() {
    stop_pid "$mb_pid"
    mb_pid=
    wait "$mb_sampler" 2>/dev/null || true # it ends with its process
    forget_pid "$mb_sampler"
}
mailbag_accepted() { grep -c "accepted " "$mb_log" || true; }
mailbag_delivered() { grep -c "delivered " "$mb_log" || true; }
mailbag_deferred() { grep -c "deferred " "$mb_log" || true; }
delivered_is() { [ "$(mailbag_delivered)" = "$1" ]; }
mailbag_wait_deferred() { # COUNT: until all were tried once, or no progress for 20 s
    local last=-1 still=0 d i
    for ((i = 0; i < DRAIN_TIMEOUT * 2; i++)); do
        d=$(mailbag_deferred)
        [ "$d" -ge "$1" ] && return 0
        if [ "$d" = "$last" ]; then still=$((still + 1)); else still=0 last=$d; fi
        [ "$still" -ge 40 ] && break
        sleep 0.5
    done
    # Not a failure by itself: the drain below still has to deliver every message.
    grep -o 'accepted [0-9A-F]*' "$mb_log" | cut -d' ' -f2 | sort >"$mb_log.acc"
    grep -o 'deferred [0-9A-F]*' "$mb_log" | cut -d' ' -f2 | sort >"$mb_log.def"
    echo "  warning: mailbag tried $(mailbag_deferred) of $1 while the next hop was down; never tried:" \
        "$(comm -23 "$mb_log.acc" "$mb_log.def" | head -n 10 | tr '\n' ' ')" >&2
    anomalies+=("mailbag cell $mb_cell: $(($1 - $(mailbag_deferred))) message(s) not tried while the next hop was down")
}
mailbag_held() { "$mailbag_bin" queue list --json --spool "$mb_dir/$mb_cell/spool.img" | grep -o '"id"' | wc -l; }
mailbag_programmed() { # bytes the spool programmed, from its last "spool closed" line
    sed -n 's/.*spool closed: \([0-9]*\) bytes programmed.*/\1/p' "$mb_log" | tail -n 1
}

# Both MTAs are told the next hop is back, as an admin (or a hook) would: Postfix by
# `postqueue -f`, mailbag by `mailbag queue flush`. Left alone, mailbag notices by its probe
# (relay.probe-interval, 1 s here: up to a second more), Postfix at its next queue run.
flush_queue() { # MTA
    if [ "$1" = postfix ]; then
        postqueue -c "$pf_etc" -f
    else
        "$mailbag_bin" queue flush --config "$mb_dir/$mb_cell/mailbag.toml" >/dev/null ||
            die "mailbag queue flush failed"
    fi
}

# --- Postfix: a private instance (postfix -c), never the system's ----------------------

pf_port=$(free_port)
pf_mem=$dir/postfix.mem
cat >"$pf_etc/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $pf_queue
data_directory = $dir/postfix/data
mail_owner = postfix
setgid_group = postdrop
myhostname = pf.$DOMAIN
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mydestination =
mynetworks = 192.0.2.1/32
relay_domains = $DOMAIN
relay_recipient_maps =
transport_maps = inline:{ $DOMAIN=smtp:[127.0.0.1]:$sink_port }
local_recipient_maps =
local_transport = error:local delivery is disabled
alias_maps =
alias_database =
biff = no
smtpd_tls_security_level =
smtp_tls_security_level =
maillog_file_prefixes = $dir/postfix
maillog_file = $dir/postfix/maillog
EOF
cat >"$pf_etc/master.cf" <<EOF
$pf_port  inet  n       -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
start_postfix() {
    postfix -c "$pf_etc" start >"$dir/postfix/start.log" 2>&1 || die "postfix did not start: $(cat "$dir/postfix/start.log"; tail -n 5 "$dir/postfix/maillog")"
    pf_running=1
    wait_until 30 listening "$pf_port" || die "postfix did not listen on $pf_port"
    local master
    master=$(tr -d ' ' <"$pf_queue/pid/master.pid")
    sample_mem "$master" "$pf_mem" &
    pids+=("$!")
}
pf_files() { # queue files in QUEUE-DIRS...
    local q n=0
    for q in "$@"; do
        [ -d "$pf_queue/$q" ] && n=$((n + $(find "$pf_queue/$q" -type f | wc -l)))
    done
    echo "$n"
}
pf_all() { pf_files maildrop incoming active deferred hold corrupt; }
pf_all_deferred() { [ "$(pf_files maildrop incoming active)" = 0 ] && [ "$(pf_files deferred)" = "$1" ]; }
pf_empty() { [ "$(pf_all)" = 0 ]; }
pf_clear() {
    postsuper -c "$pf_etc" -d ALL >/dev/null 2>&1
    wait_until 30 pf_empty || die "postfix queue did not empty"
}

# --- one cell ----------------------------------------------------------------------------

declare -A result
anomalies=()
send() { # MTA_PORT SESSIONS COUNT SIZE LOG
    smtp-source -s "$2" -m "$3" -l "$4" -f "sender@client.example" -t "rcpt@$DOMAIN" \
        -M client.example "127.0.0.1:$1" >>"$5" 2>&1 || die "smtp-source failed: $(tail -n 5 "$5")"
}
arrived() { [ "$(sink_count)" -ge "$1" ]; }
held_mailbag() { [ "$(mailbag_accepted)" -ge "$1" ]; }
check_sink_exact() { # COUNT WHAT
    sleep 0.5 # anything more (a duplicate) would arrive now
    local got
    got=$(sink_count)
    [ "$got" = "$1" ] || die "$2: the sink got $got messages, expected $1"
}

held_cell() { # MTA SIZE COUNT SESSIONS: accept with the next hop down, then drain
    local mta=$1 size=$2 n=$3 s=$4 key="$1 $2 $3 $4" t0 t1 t2 t3 log=$dir/source.log
    listening "$sink_port" && die "something listens on the next hop's port $sink_port"
    if [ "$mta" = mailbag ]; then
        start_mailbag
        t0=$(now)
        send "$mb_port" "$s" "$n" "$size" "$log"
        t1=$(now)
        wait_until 10 held_mailbag "$n" || die "mailbag accepted $(mailbag_accepted) of $n"
        [ "$(mailbag_accepted)" = "$n" ] || die "mailbag accepted $(mailbag_accepted), expected $n"
        # Like Postfix below: every message has been tried once and is held.
        mailbag_wait_deferred "$n"
        start_sink
        t2=$(now)
        flush_queue mailbag
        wait_until "$DRAIN_TIMEOUT" arrived "$n" || die "mailbag drain: $(sink_count) of $n arrived"
        t3=$(now)
        check_sink_exact "$n" "mailbag drain"
        wait_until 10 delivered_is "$n" || die "mailbag logged $(mailbag_delivered) deliveries of $n"
        stop_mailbag
        [ "$(mailbag_held)" = 0 ] || die "mailbag still holds $(mailbag_held) messages after the drain"
    else
        t0=$(now)
        send "$pf_port" "$s" "$n" "$size" "$log"
        t1=$(now)
        # Postfix has tried each message once and put it in the deferred queue.
        wait_until "$DRAIN_TIMEOUT" pf_all_deferred "$n" || die "postfix holds $(pf_all) (deferred: $(pf_files deferred)) of $n"
        start_sink
        t2=$(now)
        flush_queue postfix
        wait_until "$DRAIN_TIMEOUT" arrived "$n" || die "postfix drain: $(sink_count) of $n arrived"
        t3=$(now)
        check_sink_exact "$n" "postfix drain"
        wait_until 10 pf_empty || die "postfix still holds $(pf_all) messages after the drain"
        pf_clear
    fi
    stop_sink
    result["accept $key"]=$(div "$n" "$(sub "$t1" "$t0")")
    result["drain $key"]=$(sub "$t3" "$t2")
    printf '  %-8s %6s B x %-4s sessions=%-3s accept %8s msg/s  drain %7s s\n' "$mta" "$size" "$n" "$s" \
        "${result["accept $key"]}" "${result["drain $key"]}"
}

relay_cell() { # MTA SESSIONS: the next hop up, time until the last message arrived
    local mta=$1 s=$2 n=$N_RELAY t0 t1 port log=$dir/source.log
    start_sink
    if [ "$mta" = mailbag ]; then
        start_mailbag
        port=$mb_port
    else
        port=$pf_port
    fi
    t0=$(now)
    send "$port" "$s" "$n" 4096 "$log"
    wait_until "$DRAIN_TIMEOUT" arrived "$n" || die "$mta relay: $(sink_count) of $n arrived"
    t1=$(now)
    check_sink_exact "$n" "$mta relay"
    if [ "$mta" = mailbag ]; then
        wait_until 10 delivered_is "$n" || die "mailbag logged $(mailbag_delivered) deliveries of $n"
        stop_mailbag
        [ "$(mailbag_held)" = 0 ] || die "mailbag still holds messages after relaying"
    else
        wait_until 10 pf_empty || die "postfix still holds $(pf_all) messages after relaying"
    fi
    stop_sink
    result["relay $mta $s"]=$(div "$n" "$(sub "$t1" "$t0")")
    printf '  %-8s relay %s x 4096 B, %s sessions: %s msg/s\n' "$mta" "$n" "$s" "${result["relay $mta $s"]}"
}

# --- the depth series: does accepting get slower as mail piles up? --------------------

depth_series() { # MTA
    local mta=$1 held=0 b=0 t0 t1 t2 t3 port log=$dir/depth.log
    listening "$sink_port" && die "something listens on the next hop's port"
    if [ "$mta" = mailbag ]; then
        mb_size=$((256 << 20))
        start_mailbag
        mb_size=$((64 << 20))
        port=$mb_port
    else
        port=$pf_port
    fi
    while ((held < DEPTH_TOTAL)); do
        t0=$(now)
        send "$port" "$DEPTH_SESSIONS" "$DEPTH_BATCH" 4096 "$log"
        t1=$(now)
        result["depth $mta $b"]=$(div "$DEPTH_BATCH" "$(sub "$t1" "$t0")")
        printf '  %-8s depth: %6d held before, %d at %d sessions: %8s msg/s\n' "$mta" \
            "$held" "$DEPTH_BATCH" "$DEPTH_SESSIONS" "${result["depth $mta $b"]}"
        held=$((held + DEPTH_BATCH))
        b=$((b + 1))
    done
    if [ "$mta" = mailbag ]; then
        wait_until 30 held_mailbag "$held" || die "mailbag accepted $(mailbag_accepted) of $held"
        mailbag_wait_deferred "$held"
    else
        wait_until "$DRAIN_TIMEOUT" pf_all_deferred "$held" || die "postfix holds $(pf_all) of $held"
    fi
    start_sink
    t2=$(now)
    flush_queue "$mta"
    wait_until "$DRAIN_TIMEOUT" arrived "$held" || die "$mta depth drain: $(sink_count) of $held arrived"
    t3=$(now)
    check_sink_exact "$held" "$mta depth drain"
    result["depthdrain $mta"]=$(sub "$t3" "$t2")
    printf '  %-8s drained %d held in %s s\n' "$mta" "$held" "${result["depthdrain $mta"]}"
    if [ "$mta" = mailbag ]; then
        wait_until 30 delivered_is "$held" || die "mailbag logged $(mailbag_delivered) deliveries of $held"
        stop_mailbag
    else
        wait_until 30 pf_empty || die "postfix still holds $(pf_all)"
        pf_clear
    fi
    stop_sink
}

# --- restart with mail held: how long until port 25 answers again --------------------

listen_time() { # PORT START_TIME: seconds until PORT answers with its 220 greeting
    # Not just a socket in LISTEN state: mailbag binds its listeners before it mounts the
    # spool, and a connection made meanwhile waits in the kernel's backlog unanswered.
    python3 - "$1" <<'PY' || die "port $1 did not greet within 300 s"
import socket, sys, time
port, deadline = int(sys.argv[1]), time.monotonic() + 300
while time.monotonic() < deadline:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=300) as s:
            line = s.makefile("rb").readline()
            if line.startswith(b"220"):
                sys.exit(0)
    except OSError:
        pass
    time.sleep(0.01)
sys.exit(1)
PY
    sub "$(now)" "$2"
}
not_listening() { ! listening "$1"; }

restart_cell() { # MTA N: fill N with the next hop down, stop, start: time to listening
    local mta=$1 n=$2 t0 t2 t3 log=$dir/restart.log
    listening "$sink_port" && die "something listens on the next hop's port"
    if [ "$mta" = mailbag ]; then
        mb_size=$(((n * 5000 + (96 << 20)) / (1 << 20) * (1 << 20)))
        start_mailbag
        mb_size=$((64 << 20))
        send "$mb_port" 50 "$n" 4096 "$log"
        wait_until 60 held_mailbag "$n" || die "mailbag accepted $(mailbag_accepted) of $n"
        stop_mailbag
        t0=$(now)
        run_mailbag_timed
        result["restart mailbag $n"]=$(listen_time "$mb_port" "$t0")
    else
        send "$pf_port" 50 "$n" 4096 "$log"
        wait_until "$DRAIN_TIMEOUT" pf_all_deferred "$n" || die "postfix holds $(pf_all) of $n"
        postfix -c "$pf_etc" stop >/dev/null 2>&1
        wait_until 30 not_listening "$pf_port" || die "postfix did not stop"
        t0=$(now)
        postfix -c "$pf_etc" start >/dev/null 2>&1 || die "postfix did not restart"
        result["restart postfix $n"]=$(listen_time "$pf_port" "$t0")
    fi
    printf '  %-8s restart with %6d held: listening after %s s\n' "$mta" "$n" "${result["restart $mta $n"]}"
    if [ "$n" = "$RESTART_DRAIN" ]; then
        start_sink
        t2=$(now)
        flush_queue "$mta"
        wait_until "$DRAIN_TIMEOUT" arrived "$n" || die "$mta drain after restart: $(sink_count) of $n"
        t3=$(now)
        check_sink_exact "$n" "$mta drain after restart"
        result["restartdrain $mta"]=$(sub "$t3" "$t2")
        printf '  %-8s drained %d held after the restart in %s s\n' "$mta" "$n" "${result["restartdrain $mta"]}"
        stop_sink
    fi
    if [ "$mta" = mailbag ]; then
        stop_mailbag
    else
        pf_clear
    fi
}

# --- flash written per message over its life -----------------------------------------

life_cell() { # SESSIONS: LIFE_N x 4 KiB accepted with the next hop down, tried, delivered
    local s=$1 n=$LIFE_N bytes log=$dir/life.log
    start_mailbag
    send "$mb_port" "$s" "$n" 4096 "$log"
    wait_until 30 held_mailbag "$n" || die "mailbag accepted $(mailbag_accepted) of $n"
    mailbag_wait_deferred "$n"
    start_sink
    wait_until "$DRAIN_TIMEOUT" arrived "$n" || die "life: $(sink_count) of $n arrived"
    check_sink_exact "$n" "life"
    wait_until 30 delivered_is "$n" || die "mailbag logged $(mailbag_delivered) deliveries of $n"
    sleep 1 # the last removals ride the next group commit
    stop_mailbag
    stop_sink
    bytes=$(mailbag_programmed)
    [ -n "$bytes" ] || die "no spool statistics in $mb_log"
    result["life $s"]=$(awk -v b="$bytes" -v n="$n" 'BEGIN { printf "%.0f", b / n }')
    result["lifex $s"]=$(awk -v b="$bytes" -v n="$n" 'BEGIN { printf "%.2f", b / n / 4096 }')
    printf '  mailbag  flash: %s bytes programmed per 4 KiB message (%sx), %s sessions\n' \
        "${result["life $s"]}" "${result["lifex $s"]}" "$s"
}

# --- memory: the whole process, idle and at 50 sessions -------------------------------

mem_cell() { # LABEL BINARY
    local label=$1 bin=$2 rss pss log=$dir/mem.log f=$dir/mem-$1
    mb_bin=$bin
    mb_max=4096
    start_mailbag
    mb_max=100000
    sleep 2
    read -r rss pss < <(tree_mem "$mb_pid")
    result["memidle $label"]=$(kib_mib "$rss")
    rm -f "$f"
    sample_mem "$mb_pid" "$f" &
    local sampler=$!
    pids+=("$sampler")
    send "$mb_port" 50 "$MEM_N" 4096 "$log"
    stop_mailbag
    wait "$sampler" 2>/dev/null || true
    forget_pid "$sampler"
    read -r rss pss <"$f"
    result["mem50 $label"]=$(kib_mib "$rss")
    mb_bin=$mailbag_bin
    printf '  mailbag  memory (%s): %s MiB idle, %s MiB peak at 50 sessions\n' "$label" \
        "${result["memidle $label"]}" "${result["mem50 $label"]}"
}

# --- the run -----------------------------------------------------------------------------

kib_mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0 && a != "-" && a != "") printf "%.2f", a / b; else print "-" }'; }

musl_bin=
if [ "$MEM_N" != 0 ] && [ "$MUSL_BIN" != none ]; then
    if [ -n "$MUSL_BIN" ]; then
        musl_bin=$MUSL_BIN
    else
        echo "building a static musl mailbag for the memory cells (qemu/build-static.sh)"
        qemu/build-static.sh x86_64-unknown-linux-musl >/dev/null 2>"$dir/musl-build.log" ||
            die "static musl build failed: $(tail -n 5 "$dir/musl-build.log")"
        musl_bin=$root/qemu/build/bin/x86_64-unknown-linux-musl/mailbag
    fi
    [ -x "$musl_bin" ] || die "$musl_bin is not an executable"
fi

echo "work dir $dir ($(df --output=source "$dir" | tail -n 1)); next hop 127.0.0.1:$sink_port;" \
    "mailbag :$mb_port, postfix :$pf_port ($(postconf -d -h mail_version))"
start_postfix
pf_clear
started=$(now)
cells=()
for size_n in "4096 $N_4K" "102400 $N_100K"; do
    read -r size n <<<"$size_n"
    for s in $SESSIONS; do
        cells+=("$size $n $s")
        for mta in mailbag postfix; do
            held_cell "$mta" "$size" "$n" "$s"
        done
    done
done
for s in $RELAY_SESSIONS; do
    for mta in mailbag postfix; do
        relay_cell "$mta" "$s"
    done
done
depth_batches=0
if [ "$DEPTH_TOTAL" -gt 0 ]; then
    depth_batches=$(((DEPTH_TOTAL + DEPTH_BATCH - 1) / DEPTH_BATCH))
    for mta in mailbag postfix; do
        depth_series "$mta"
    done
fi
for n in $RESTART_HELD; do
    for mta in mailbag postfix; do
        restart_cell "$mta" "$n"
    done
done
if [ "$LIFE_N" -gt 0 ]; then
    for s in 1 10; do
        life_cell "$s"
    done
fi
if [ "$MEM_N" -gt 0 ]; then
    mem_cell glibc "$mailbag_bin"
    [ -n "$musl_bin" ] && mem_cell musl "$musl_bin"
fi
postfix -c "$pf_etc" stop >/dev/null 2>&1
pf_running=0
sleep 0.5 # the samplers see their process gone

mb_rss=0 mb_pss=0 pf_rss=0 pf_pss=0
[ -f "$mb_mem" ] && read -r mb_rss mb_pss <"$mb_mem"
[ -f "$pf_mem" ] && read -r pf_rss pf_pss <"$pf_mem"
row() { printf '%-40s | %10s | %10s | %s\n' "$1" "$2" "$3" "$4"; }
table=$dir/table.txt
{
    echo "# mailbag $(git rev-parse --short HEAD) vs Postfix $(postconf -d -h mail_version), $(date -u +%F), $(nproc) CPUs, $(uname -r)"
    echo "# next hop down: accept rate; then drain time to a recovered next hop (each told at once: mailbag queue flush, Postfix postqueue -f)"
    echo "# smtp-source: one connection per message; relay: 4096 B, next hop up, until the last arrived"
    row "metric" "mailbag" "postfix" "mailbag/postfix"
    row "----------------------------------------" "----------" "----------" "---------------"
    for c in "${cells[@]}"; do
        read -r size n s <<<"$c"
        a=${result["accept mailbag $c"]} b=${result["accept postfix $c"]}
        row "accept msg/s $((size / 1024))K x$n, $s sess" "$a" "$b" "$(ratio "$a" "$b")"
    done
    for c in "${cells[@]}"; do
        read -r size n s <<<"$c"
        a=${result["drain mailbag $c"]} b=${result["drain postfix $c"]}
        row "drain s $((size / 1024))K x$n (after $s sess)" "$a" "$b" "$(ratio "$a" "$b")"
    done
    for s in $RELAY_SESSIONS; do
        a=${result["relay mailbag $s"]} b=${result["relay postfix $s"]}
        row "relay msg/s 4K x$N_RELAY, $s sess" "$a" "$b" "$(ratio "$a" "$b")"
    done
    if [ "$depth_batches" -gt 0 ]; then
        echo
        echo "# depth series: 4 KiB, $DEPTH_SESSIONS sessions, next hop down, batches of $DEPTH_BATCH; last column: mailbag's rate / its first batch's"
        printf '%-40s | %10s | %10s | %-15s | %s\n' "held before the batch" "mailbag" "postfix" "mailbag/postfix" "mailbag/first"
        first=${result["depth mailbag 0"]}
        for ((i = 0; i < depth_batches; i++)); do
            a=${result["depth mailbag $i"]} b=${result["depth postfix $i"]}
            printf '%-40s | %10s | %10s | %-15s | %s\n' "$((i * DEPTH_BATCH))" "$a" "$b" "$(ratio "$a" "$b")" "$(ratio "$a" "$first")"
        done
        a=${result["depthdrain mailbag"]} b=${result["depthdrain postfix"]}
        row "drain s of all $DEPTH_TOTAL held" "$a" "$b" "$(ratio "$a" "$b")"
    fi
    if [ -n "$RESTART_HELD" ]; then
        echo
        echo "# restart with mail held (4 KiB, filled at 50 sessions): seconds from start to the 220 greeting"
        for n in $RESTART_HELD; do
            a=${result["restart mailbag $n"]} b=${result["restart postfix $n"]}
            row "restart-to-220 s, $n held" "$a" "$b" "$(ratio "$a" "$b")"
        done
        a=${result["restartdrain mailbag"]:-} b=${result["restartdrain postfix"]:-}
        [ -n "$a" ] && row "drain s of $RESTART_DRAIN held after restart" "$a" "$b" "$(ratio "$a" "$b")"
    fi
    if [ "$LIFE_N" -gt 0 ]; then
        echo
        echo "# flash: bytes the spool programmed per 4 KiB message over its life ($LIFE_N messages: accepted with the next hop down, tried, delivered, reclaimed)"
        for s in 1 10; do
            row "flash bytes/message, $s sess" "${result["life $s"]}" "-" "${result["lifex $s"]}x payload"
        done
    fi
    if [ "$MEM_N" -gt 0 ]; then
        echo
        echo "# memory: mailbag's RSS idle (2 s after start) and peak while $MEM_N x 4 KiB arrive at 50 sessions (max-messages 4096, the router default; RSS includes the binary's text pages)"
        for l in glibc musl; do
            [ -n "${result["memidle $l"]:-}" ] || continue
            row "RSS MiB idle ($l)" "${result["memidle $l"]}" "-" ""
            row "RSS MiB peak at 50 sessions ($l)" "${result["mem50 $l"]}" "-" ""
        done
    fi
    echo
    row "peak RSS MiB over the run (tree sum)" "$(kib_mib "$mb_rss")" "$(kib_mib "$pf_rss")" "$(ratio "$mb_rss" "$pf_rss")"
    row "peak PSS MiB over the run (tree sum)" "$(kib_mib "$mb_pss")" "$(kib_mib "$pf_pss")" "$(ratio "$mb_pss" "$pf_pss")"
    for a in "${anomalies[@]}"; do
        echo "# note: $a"
    done
    echo "# run took $(sub "$(now)" "$started") s"
} >"$table"
cp "$table" "$out_dir/compare-postfix.txt"
echo
cat "$table"
echo "(saved to test-artifacts/bench/compare-postfix.txt; logs in $dir)"
