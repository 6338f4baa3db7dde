#!/bin/sh
# /init of the mailbag test image (busybox sh, PID 1). Loads the virtio drivers, brings up
# QEMU's user network (guest 10.0.2.15, host 10.0.2.2), mounts the host's state directory
# (9p) where the spool image lives, and runs the daemon in the foreground. When the daemon
# stops, the VM powers off.
/bin/busybox --install -s /bin
export PATH=/bin
mkdir -p /proc /sys /dev /tmp /state
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
# Modules in dependency order (written by qemu/run-image.sh from each module's depends=).
while read -r ko; do
  insmod "/modules/$ko" || echo "init: insmod $ko failed"
done < /modules/load-order
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2
# cache=none: every write and fsync goes straight to the host file, so what the daemon has
# synced is on the host disk even if QEMU is killed (a power cut).
mount -t 9p -o trans=virtio,version=9p2000.L,cache=none state /state \
  || echo "init: 9p mount failed; spool stays in RAM"
echo "init: network up, starting mailbag"
/bin/mailbag run --config /etc/mailbag.toml
echo "init: mailbag exited with $?"
sync
poweroff -f
