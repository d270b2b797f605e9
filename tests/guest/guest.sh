#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs inside the test guest (busybox sh, from the initramfs's /init), one
# phase per boot; the host (vhost-guest-test.py) chooses the phase on the
# kernel command line and reads the "VTEST key value..." lines it prints.
#
#   rw1     write pattern A over the whole disk (two writers, one per half, so
#           both queues work), drop caches, read it all back and compare
#   rw2     check pattern A survived the reconnection; ext4 on the first
#           FS_MB, files copied in, sync, umount, fsck; sha256 of that part;
#           the tail still holds pattern A
#   abrupt  rewrite the tail with pattern B forever (the host kills the VMM)
#   rw3     after the killed VMM: fsck and the files again, pattern C on the tail
#   ro      a read-only volume: writes fail, the file system mounts read-only
#   bench   fio jobs named on the command line (vtest.fio=...)
set -u
phase="$1"
# Full paths: busybox's sh runs its own applets (mke2fs, e2fsck) before PATH.
MKE2FS=/usr/local/bin/mke2fs
E2FSCK=/usr/local/bin/e2fsck
FIO=/usr/local/bin/fio
FS_MB=48
SEED_A=0x5eed00a1
SEED_B=0x5eed00b2
SEED_C=0x5eed00c3

vt() { echo "VTEST $*"; }

for i in $(seq 100); do
    [ -b /dev/vda ] && break
    sleep 0.1
done
if [ ! -b /dev/vda ]; then
    vt error "no /dev/vda"
    exit 1
fi
bytes=$(( $(cat /sys/block/vda/size) * 512 ))
fs_bytes=$(( FS_MB * 1024 * 1024 ))
tail_bytes=$(( bytes - fs_bytes ))
vt disk "$bytes" "$(cat /sys/block/vda/ro)" "$(ls /sys/block/vda/mq | wc -l)"

check_files() {
    mount -t ext4 -o "$1" /dev/vda /mnt || { vt error "mount $1 failed"; return 1; }
    vt files "$(ls /mnt/many | wc -l)" "$(sha256sum /mnt/random.bin | cut -d' ' -f1)" \
        "$(sha256sum /mnt/busybox | cut -d' ' -f1)"
    umount /mnt
}

case "$phase" in
probe)
    vt probe ok
    ;;
rw1)
    half=$(( bytes / 2 ))
    blkpattern write /dev/vda $SEED_A 0 $half &
    p1=$!
    blkpattern write /dev/vda $SEED_A $half $half &
    p2=$!
    wait $p1; r1=$?
    wait $p2; r2=$?
    vt write "$r1" "$r2"
    echo 3 > /proc/sys/vm/drop_caches
    blkpattern verify /dev/vda $SEED_A
    vt verify $?
    ;;
rw2)
    blkpattern verify /dev/vda $SEED_A
    vt verify-a $?
    $MKE2FS -q -F -t ext4 -b 4096 /dev/vda $(( fs_bytes / 4096 ))
    vt mkfs $?
    mount -t ext4 /dev/vda /mnt || vt error "mount failed"
    cp /bin/busybox /mnt/busybox
    head -c 1048576 /dev/urandom > /mnt/random.bin
    mkdir /mnt/many
    for i in $(seq 200); do echo "file $i" > /mnt/many/f$i; done
    sync
    vt files "$(ls /mnt/many | wc -l)" "$(sha256sum /mnt/random.bin | cut -d' ' -f1)" \
        "$(sha256sum /mnt/busybox | cut -d' ' -f1)"
    umount /mnt
    vt umount $?
    $E2FSCK -f -n /dev/vda > /tmp/fsck.log 2>&1
    r=$?
    vt fsck $r
    [ $r = 0 ] || cat /tmp/fsck.log
    echo 3 > /proc/sys/vm/drop_caches
    vt fs-sha "$(head -c $fs_bytes /dev/vda | sha256sum | cut -d' ' -f1)"
    blkpattern verify /dev/vda $SEED_A $fs_bytes $tail_bytes
    vt verify-tail-a $?
    ;;
abrupt)
    vt writing
    while true; do
        blkpattern write /dev/vda $SEED_B $fs_bytes $tail_bytes > /dev/null
    done
    ;;
rw3)
    $E2FSCK -f -n /dev/vda > /tmp/fsck.log 2>&1
    r=$?
    vt fsck $r
    [ $r = 0 ] || cat /tmp/fsck.log
    check_files ro
    blkpattern write /dev/vda $SEED_C $fs_bytes $tail_bytes
    vt write-tail-c $?
    echo 3 > /proc/sys/vm/drop_caches
    blkpattern verify /dev/vda $SEED_C $fs_bytes $tail_bytes
    vt verify-tail-c $?
    vt fs-sha "$(head -c $fs_bytes /dev/vda | sha256sum | cut -d' ' -f1)"
    ;;
ro)
    blkpattern write /dev/vda $SEED_B $fs_bytes 4096
    vt pattern-write $?
    dd if=/dev/zero of=/dev/vda bs=4096 count=1 seek=$(( fs_bytes / 4096 )) conv=fsync 2> /dev/null
    vt dd-write $?
    if mount -t ext4 -o rw /dev/vda /mnt 2> /dev/null; then
        touch /mnt/new-file 2> /dev/null
        vt touch $?
        umount /mnt
    else
        vt mount-rw failed
    fi
    check_files ro
    blkpattern verify /dev/vda $SEED_C $fs_bytes $tail_bytes
    vt verify-tail-c $?
    ;;
bench)
    for job in $(sed -n 's/.*vtest\.fio=\([^ ]*\).*/\1/p' /proc/cmdline | tr ',' ' '); do
        $FIO --output-format=terse --terse-version=3 /fio/$job.fio > /tmp/fio.out 2> /tmp/fio.err
        r=$?
        vt fio "$job" "$r" "$(tr ';' ' ' < /tmp/fio.out | head -1)"
        [ $r = 0 ] || cat /tmp/fio.err
    done
    ;;
*)
    vt error "unknown phase $phase"
    exit 1
    ;;
esac
exit 0
