#!/usr/bin/env bash
# Accept and relay benchmark: mailbag against a private Postfix instance, same machine, same disk.
#
# Usage (as root): tests/bench/compare-postfix.sh [DIR]
#   DIR: spool image, Postfix queue and logs (default: target/bench/compare-postfix);
#   both MTAs keep their queue there, so on the same filesystem.
# Environment (message counts per cell; defaults keep the run near 10 minutes):
#   N_4K=1000 N_100K=200 N_RELAY=1000  SESSIONS="1 10 50"  RELAY_SESSIONS=10
#   DRAIN_TIMEOUT=300 (seconds a cell may wait for its messages)
# Needs Postfix >= 3.4 (postfix, postqueue, postsuper, smtp-source, smtp-sink).
#
# Per MTA and cell: accept rate with the next hop down (smtp-source, one connection per
# message), then the time to drain that held queue to a recovered next hop (an smtp-sink
# started on the next hop's port; Postfix is told `postqueue -f`, mailbag notices with its
# probe, relay.probe-interval = 1 s); relay rate with the next hop up (first byte sent to the
# last message arrived at the sink); peak memory of the whole MTA (Postfix: master and all
# its children summed). Every count is checked: a lost or duplicated message fails the run.
# The table goes to stdout and test-artifacts/bench/compare-postfix.txt.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
dir=${1:-target/bench/compare-postfix}
N_4K=${N_4K:-1000}
N_100K=${N_100K:-200}
N_RELAY=${N_RELAY:-1000}
SESSIONS=${SESSIONS:-1 10 50}
RELAY_SESSIONS=${RELAY_SESSIONS:-10}
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
start_mailbag() { # a fresh spool image for every cell
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
[spool]
path = "$d/spool.img"
size = 268435456
max-messages = 100000
max-bytes = 260000000
[relay]
next-hops = ["127.0.0.1:$sink_port"]
probe-interval = 1
[firewall]
mode = "off"
[web]
listen = []
EOF
    mb_log=$d/mailbag.log
    "$mailbag_bin" run --config "$d/mailbag.toml" --state-dir "$d" >"$mb_log" 2>&1 &
    mb_pid=$!
    pids+=("$mb_pid")
    wait_until 60 grep -qs "smtp listening on" "$mb_log" || die "mailbag did not start: $(cat "$mb_log")"
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
        postqueue -c "$pf_etc" -f
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

relay_cell() { # MTA: the next hop up, time until the last message arrived
    local mta=$1 n=$N_RELAY t0 t1 port log=$dir/source.log
    start_sink
    if [ "$mta" = mailbag ]; then
        start_mailbag
        port=$mb_port
    else
        port=$pf_port
    fi
    t0=$(now)
    send "$port" "$RELAY_SESSIONS" "$n" 4096 "$log"
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
    result["relay $mta"]=$(div "$n" "$(sub "$t1" "$t0")")
    printf '  %-8s relay %s x 4096 B, %s sessions: %s msg/s\n' "$mta" "$n" "$RELAY_SESSIONS" "${result["relay $mta"]}"
}

# --- the run -----------------------------------------------------------------------------

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
for mta in mailbag postfix; do
    relay_cell "$mta"
done
postfix -c "$pf_etc" stop >/dev/null 2>&1
pf_running=0
sleep 0.5 # the samplers see their process gone

kib_mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0 && a != "-") printf "%.2f", a / b; else print "-" }'; }
mb_rss=0 mb_pss=0 pf_rss=0 pf_pss=0
[ -f "$mb_mem" ] && read -r mb_rss mb_pss <"$mb_mem"
[ -f "$pf_mem" ] && read -r pf_rss pf_pss <"$pf_mem"
table=$dir/table.txt
{
    echo "# mailbag $(git rev-parse --short HEAD) vs Postfix $(postconf -d -h mail_version), $(date -u +%F), $(nproc) CPUs, $(uname -r)"
    echo "# next hop down: accept rate; then drain time to a recovered next hop (mailbag probe-interval 1 s, Postfix postqueue -f)"
    echo "# smtp-source: one connection per message; relay: $RELAY_SESSIONS sessions, 4096 B, next hop up, until the last arrived"
    printf '%-34s | %10s | %10s | %s\n' "metric" "mailbag" "postfix" "mailbag/postfix"
    printf '%-34s-|-%10s-|-%10s-|-%s\n' "----------------------------------" "----------" "----------" "---------------"
    for c in "${cells[@]}"; do
        read -r size n s <<<"$c"
        a=${result["accept mailbag $c"]} b=${result["accept postfix $c"]}
        printf '%-34s | %10s | %10s | %s\n' "accept msg/s $((size / 1024))K x$n, $s sess" "$a" "$b" "$(ratio "$a" "$b")"
    done
    for c in "${cells[@]}"; do
        read -r size n s <<<"$c"
        a=${result["drain mailbag $c"]} b=${result["drain postfix $c"]}
        printf '%-34s | %10s | %10s | %s\n' "drain s $((size / 1024))K x$n (after $s sess)" "$a" "$b" "$(ratio "$a" "$b")"
    done
    a=${result["relay mailbag"]} b=${result["relay postfix"]}
    printf '%-34s | %10s | %10s | %s\n' "relay msg/s 4K x$N_RELAY, $RELAY_SESSIONS sess" "$a" "$b" "$(ratio "$a" "$b")"
    printf '%-34s | %10s | %10s | %s\n' "peak RSS MiB (process tree sum)" "$(kib_mib "$mb_rss")" "$(kib_mib "$pf_rss")" "$(ratio "$mb_rss" "$pf_rss")"
    printf '%-34s | %10s | %10s | %s\n' "peak PSS MiB (process tree sum)" "$(kib_mib "$mb_pss")" "$(kib_mib "$pf_pss")" "$(ratio "$mb_pss" "$pf_pss")"
    for a in "${anomalies[@]}"; do
        echo "# note: $a"
    done
    echo "# run took $(sub "$(now)" "$started") s"
} >"$table"
cp "$table" "$out_dir/compare-postfix.txt"
echo
cat "$table"
echo "(saved to test-artifacts/bench/compare-postfix.txt; logs in $dir)"
