#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Smoke test of the arm64 system image (qemu/run-image.sh), from the host:
#  1. boot it (under a timeout) with the next hop down (nothing listens on its port);
#  2. send a message into the VM through the forwarded SMTP port, expect 250; a recipient
#     outside the configured domains must be refused (no open relay through the VM);
#  3. kill QEMU with SIGKILL (a power cut) and read the spool image the guest wrote (a host
#     file shared over 9p) with `mailbag spool inspect`: the message is held, pending;
#  4. boot again on the same spool: the daemon mounts it with the message still held;
#  5. start an SMTP sink on the host (the guest's next hop, via QEMU's user-network gateway):
#     the guest's probe sees it and delivers the message; the spool is empty afterwards.
# Exits non-zero on any failure. Prints timings (image build, boot to "smtp listening").
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
BOOT_TIMEOUT=${BOOT_TIMEOUT:-180}   # seconds to "smtp listening" (TCG emulation, shared CPU)
QEMU_TIMEOUT=${QEMU_TIMEOUT:-600}   # hard limit on each QEMU run
bin=qemu/build/bin/aarch64-unknown-linux-musl/mailbag

work=$(mktemp -d /tmp/mailbag-qemu-system.XXXXXX)
qemu_pid=""
launcher=""
# SIGKILL, by PID: to the guest this is a power cut.
stop_qemu() {
  if [ -n "$qemu_pid" ] && kill -0 "$qemu_pid" 2>/dev/null; then
    kill -KILL "$qemu_pid" 2>/dev/null || true
  fi
  [ -n "$launcher" ] && { wait "$launcher" 2>/dev/null || true; }
  qemu_pid=""
  launcher=""
}
sink_pid=""
stop_sink() { [ -n "$sink_pid" ] && { kill "$sink_pid" 2>/dev/null || true; wait "$sink_pid" 2>/dev/null || true; }; sink_pid=""; }
cleanup() { stop_sink; stop_qemu; rm -rf "$work"; }
trap cleanup EXIT
fail() { echo "qemu-system: FAIL: $*" >&2; [ -f "$work/console.log" ] && tail -n 30 "$work/console.log" >&2; exit 1; }
now() { date +%s.%N; }
since() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$(now)"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

smtp_port=$(free_port)
web_port=$(free_port)
sink_port=$(free_port)   # the guest's next hop is 10.0.2.2:$sink_port = host loopback; nothing listens
mkdir -p "$work/state"
sed "s/^next-hops = .*/next-hops = [\"10.0.2.2:$sink_port\"]/" qemu/guest-config.toml > "$work/guest.toml"
grep -q "10.0.2.2:$sink_port" "$work/guest.toml" || fail "could not set the next hop in the test config"
# Probe the next hop every 2 s (default 30 s) so the delivery check below is quick.
sed -i '/^\[relay\]/a probe-interval = 2' "$work/guest.toml"

t=$(now)
MAILBAG_CONFIG="$work/guest.toml" qemu/run-image.sh --build-only || fail "image build"
echo "qemu-system: image built in $(since "$t")s"

# Boots the image in the background; returns once the console says "smtp listening".
boot() {
  local want="smtp listening" t0 pidfile=$work/qemu.pid
  rm -f "$pidfile"
  : > "$work/console.log"
  t0=$(now)
  MAILBAG_STATE_DIR="$work/state" MAILBAG_SMTP_PORT=$smtp_port MAILBAG_WEB_PORT=$web_port MAILBAG_QEMU_PIDFILE=$pidfile \
    timeout -s KILL "$QEMU_TIMEOUT" qemu/run-image.sh --no-build < /dev/null > "$work/console.log" 2>&1 &
  launcher=$!
  local deadline=$((SECONDS + BOOT_TIMEOUT))
  while [ $SECONDS -lt $deadline ]; do
    [ -z "$qemu_pid" ] && [ -s "$pidfile" ] && qemu_pid=$(cat "$pidfile")
    grep -q "$want" "$work/console.log" && break
    kill -0 "$launcher" 2>/dev/null || fail "QEMU exited before '$want'"
    sleep 0.5
  done
  grep -q "$want" "$work/console.log" || fail "no '$want' within ${BOOT_TIMEOUT}s"
  [ -n "$qemu_pid" ] || qemu_pid=$(cat "$pidfile")
  echo "qemu-system: '$want' after $(since "$t0")s (boot)"
}

boot

t=$(now)
python3 - "$smtp_port" <<'PY' || fail "SMTP conversation with the guest"
import smtplib, sys
port = int(sys.argv[1])
s = smtplib.SMTP("127.0.0.1", port, timeout=60)
code, _ = s.ehlo("host.test")
assert code == 250, f"EHLO {code}"
# No open relay through the VM: a recipient outside example.test is refused.
s.mail("alice@sender.test")
code, msg = s.rcpt("eve@elsewhere.test")
assert 500 <= code < 600, f"relay recipient got {code} {msg!r}"
s.rset()
body = "From: alice@sender.test\r\nTo: bob@example.test\r\nSubject: qemu smoke\r\n\r\nheld while the primary is down\r\n"
refused = s.sendmail("alice@sender.test", ["bob@example.test"], body)
assert refused == {}, refused
s.quit()
print("qemu-system: message accepted (250) by the guest")
PY
echo "qemu-system: SMTP session in $(since "$t")s"
grep -q "accepted .*from=<alice@sender.test> to=<bob@example.test>" "$work/console.log" \
  || fail "guest console does not log the accepted message"

# The admin page answers through the forwarded port (the login page; no password here).
python3 - "$web_port" <<'PY' || fail "the guest's admin page did not answer"
import sys, urllib.request
body = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/", timeout=30).read().decode()
assert "mailbag" in body and "<html" in body.lower(), body[:200]
print("qemu-system: admin page answers through the forwarded port")
PY

# Power cut: the 250 promised the message is on the spool; kill QEMU without warning.
stop_qemu
inspect() { qemu-aarch64-static "$bin" spool inspect "$work/state/spool.img" "$@"; }
inspect --json > "$work/inspect.json" || fail "mailbag spool inspect failed"
python3 - "$work/inspect.json" <<'PY' || fail "spool content after the power cut"
import json, sys
msgs = json.load(open(sys.argv[1]))
assert len(msgs) == 1, f"expected 1 held message, got {len(msgs)}"
m = msgs[0]
assert m["sender"] == "alice@sender.test", m
assert [r["address"] for r in m["recipients"]] == ["bob@example.test"], m
assert all(r["status"] == "Pending" for r in m["recipients"]), m
print(f"qemu-system: spool holds {m['id']} ({m['size']} B) for bob@example.test after the power cut")
PY

# Restart on the same spool: the daemon recovers and still holds the message.
boot
grep -Eq "spool mounted in [0-9]+ ms: 1 messages?," "$work/console.log" || fail "restart did not find the held message"

# The primary comes back: an SMTP sink on the host (the guest's 10.0.2.2:$sink_port). The
# guest's next-hop probe sees it and delivers the held message.
t=$(now)
mkdir -p "$work/sink" && chmod 777 "$work/sink"
(cd "$work/sink" && exec smtp-sink -u nobody -d "m." "127.0.0.1:$sink_port" 10) &
sink_pid=$!
deadline=$((SECONDS + 90))
until grep -qs "Subject: qemu smoke" "$work"/sink/m.* ; do
  [ $SECONDS -lt $deadline ] || fail "the held message did not reach the sink on the host"
  sleep 0.5
done
stop_sink
echo "qemu-system: held message delivered to the host's sink $(since "$t")s after it came up"
grep -q "delivered 0000000100000000" "$work/console.log" || fail "guest console does not log the delivery"
grep -qs "by mailbag-qemu.example.test (mailbag)" "$work"/sink/m.* || fail "delivered copy lacks the guest's Received header"
sleep 1
stop_qemu
inspect --json > "$work/inspect.json" || fail "mailbag spool inspect failed"
python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); assert m == [], m' "$work/inspect.json" \
  || fail "the spool still holds mail after delivery"
echo "qemu-system: ok"
