#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The vhost-user-blk back end under a real VMM and a real guest driver.

Debian's kernel boots under qemu-system-x86_64 (KVM when it works here, TCG
otherwise) with a busybox initramfs built here, shared guest memory
(memory-backend-memfd, share=on) and -device vhost-user-blk-pci connected to
libvmapple-vhost-user-blk, which serves a 64 MiB image file with 2 queues.
Linux's virtio-blk driver does the I/O. Five boots:

  rw1     pattern A over the whole disk, read back and compared in the guest;
          on the host the image holds exactly pattern A
  rw2     (a new front end on the same back end) pattern A is still there;
          ext4 on the first 48 MiB, files copied in, sync, umount, fsck; on
          the host the image's first 48 MiB have the guest's sha256, the host's
          e2fsck passes, the files read back with debugfs are the guest's, the
          tail still holds pattern A
  abrupt  the VMM is killed (SIGKILL) while the guest writes; the back end
          survives and serves the next front end
  rw3     fsck and files intact; pattern C written and read on the tail; the
          host sees pattern C and the untouched file system
  ro      a new back end with --read-only (and --direct: O_DIRECT): the volume
          is read-only in the guest, writes fail, the file system mounts
          read-only; the image is byte for byte unchanged

Exit 0 on success, 1 on failure, 77 (skipped) when a tool is missing.
"""
import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import guestlib  # noqa: E402
from guestlib import log  # noqa: E402

DISK_BYTES = 64 << 20
FS_BYTES = 48 << 20
SEED_A, SEED_C = "0x5eed00a1", "0x5eed00c3"


class Failure(Exception):
    pass


def sha256_file(path, length=None):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        left = length if length is not None else 1 << 62
        while left > 0:
            b = f.read(min(left, 1 << 20))
            if not b:
                break
            h.update(b)
            left -= len(b)
    return h.hexdigest()


def expect(cond, what, q=None, be=None):
    if cond:
        log(f"  ok: {what}")
        return
    if q is not None:
        print("---- guest serial output ----\n" + "\n".join(q.lines), flush=True)
    if be is not None:
        print("---- back end log ----\n" + be.log(), flush=True)
    raise Failure(what)


def run(args):
    t = guestlib.tools()
    if not args.blkpattern or not os.path.exists(args.blkpattern):
        raise guestlib.Skip("blkpattern was not built (the compiler cannot link statically: "
                            "Debian libc6-dev)")
    work = os.path.join(args.workdir, "vhost-guest")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    sockdir = tempfile.mkdtemp(prefix="vtest-sock-")  # short path: sun_path has 108 bytes
    sock = os.path.join(sockdir, "blk.sock")
    img = os.path.join(work, "disk.img")
    belog = os.path.join(work, "backend.log")
    initramfs = guestlib.build_initramfs(t, os.path.join(work, "initramfs.gz"), args.blkpattern)
    log(f"kernel {t['kver']}, initramfs {os.path.getsize(initramfs) >> 10} KiB")
    accel, why = ("tcg", "forced") if args.tcg else guestlib.probe_accel(t, initramfs)
    log(f"accelerator: {accel} ({why})")
    boot_timeout = 120 if accel == "kvm" else 600
    with open(img, "wb") as f:
        f.truncate(DISK_BYTES)
    devices = ["-chardev", f"socket,id=vblk,path={sock}",
               "-device", "vhost-user-blk-pci,chardev=vblk,num-queues=2"]
    blkpattern = args.blkpattern

    def boot(phase, be):
        log(f"boot: {phase}")
        start = time.monotonic()
        q = guestlib.Qemu(t, accel, initramfs, phase, devices)
        status = q.wait(boot_timeout)
        v = q.vtest()
        log(f"  guest finished in {time.monotonic() - start:.1f} s (qemu status {status})")
        expect(status == 0, f"{phase}: QEMU exited normally", q, be)
        expect(v.get("booted") == [phase], f"{phase}: the guest booted the phase", q, be)
        expect(v.get("exit") == ["0"], f"{phase}: the guest script succeeded", q, be)
        return q, v

    def host_pattern(seed, start=0, length=None):
        cmd = [blkpattern, "verify", img, seed]
        if length is not None:
            cmd += [str(start), str(length)]
        out = subprocess.run(cmd, capture_output=True, text=True)
        return out.returncode == 0, out.stdout.strip()

    be = guestlib.BackEnd(args.backend, sock, img, belog, ["--queues", "2"])
    try:
        # rw1
        q, v = boot("rw1", be)
        expect(v.get("disk") == [str(DISK_BYTES), "0", "2"],
               "rw1: a 64 MiB writable disk with 2 queues in the guest", q, be)
        expect(v.get("write") == ["0", "0"], "rw1: pattern A written by two writers", q, be)
        expect(v.get("verify") == ["0"], "rw1: pattern A read back and compared in the guest",
               q, be)
        ok, msg = host_pattern(SEED_A)
        expect(ok, f"rw1: the image file holds exactly pattern A ({msg})", q, be)

        # rw2: a new front end on the same back end
        q, v = boot("rw2", be)
        expect(v.get("verify-a") == ["0"], "rw2: pattern A survived the reconnection", q, be)
        expect(v.get("mkfs") == ["0"] and v.get("umount") == ["0"],
               "rw2: mkfs, mount, copy, sync, umount", q, be)
        expect(v.get("fsck") == ["0"], "rw2: e2fsck in the guest is clean", q, be)
        expect(v.get("verify-tail-a") == ["0"], "rw2: the tail beyond the file system still "
               "holds pattern A", q, be)
        files = v.get("files", [])
        host_busybox = sha256_file(t["busybox"])
        expect(len(files) == 3 and files[0] == "200" and files[2] == host_busybox,
               "rw2: 200 small files and a copy of busybox in the file system", q, be)
        fs_sha = v.get("fs-sha", [""])[0]
        expect(fs_sha == sha256_file(img, FS_BYTES),
               "rw2: the image's first 48 MiB are what the guest read (sha256)", q, be)
        fsck = subprocess.run([t["e2fsck"], "-f", "-n", img], capture_output=True, text=True)
        expect(fsck.returncode == 0, f"rw2: e2fsck on the host is clean ({fsck.stdout[-200:]!r})",
               q, be)
        for name, want in (("random.bin", files[1]), ("busybox", host_busybox)):
            out = os.path.join(work, "dump-" + name)
            subprocess.run([t["debugfs"], "-R", f"dump /{name} {out}", img], capture_output=True,
                           check=True)
            expect(os.path.exists(out) and sha256_file(out) == want,
                   f"rw2: /{name} read on the host with debugfs is the guest's", q, be)
        ok, msg = host_pattern(SEED_A, FS_BYTES, DISK_BYTES - FS_BYTES)
        expect(ok, f"rw2: on the host the tail holds pattern A ({msg})", q, be)

        # abrupt: the VMM dies while writing
        log("boot: abrupt")
        q = guestlib.Qemu(t, accel, initramfs, "abrupt", devices)
        expect(q.read_until(r"VTEST writing", boot_timeout) is not None,
               "abrupt: the guest is writing", q, be)
        time.sleep(3)
        q.kill()
        deadline = time.monotonic() + 30
        while "front end 3 disconnected" not in be.log() and time.monotonic() < deadline:
            time.sleep(0.1)
        expect("front end 3 disconnected" in be.log() and be.alive(),
               "abrupt: QEMU killed mid-write; the back end noticed and is still running",
               None, be)

        # rw3: the next front end gets a working device and the data
        q, v = boot("rw3", be)
        expect(v.get("fsck") == ["0"], "rw3: the file system is clean after the killed VMM",
               q, be)
        expect(v.get("files") == files, "rw3: the files are intact", q, be)
        expect(v.get("write-tail-c") == ["0"] and v.get("verify-tail-c") == ["0"],
               "rw3: pattern C written and read back on the tail", q, be)
        expect(v.get("fs-sha") == [fs_sha] and sha256_file(img, FS_BYTES) == fs_sha,
               "rw3: the file system's blocks are unchanged (guest and host sha256)", q, be)
        ok, msg = host_pattern(SEED_C, FS_BYTES, DISK_BYTES - FS_BYTES)
        expect(ok, f"rw3: on the host the tail holds pattern C ({msg})", q, be)
        status = be.stop()
        text = be.log()
        expect(status == 0, "the back end ends cleanly on SIGTERM", None, be)
        expect(re.search(r"\] (error|warning):", text) is None,
               "the back end logged no error or warning", None, be)
        expect("front end 4 disconnected" in text, "the back end served 4 front ends", None, be)

        # ro: a read-only back end
        before = sha256_file(img)
        # Direct I/O (O_DIRECT) here, where the file system allows it.
        try:
            be = guestlib.BackEnd(args.backend, sock, img, belog + ".ro",
                                  ["--read-only", "--direct", "--queues", "2"])
        except RuntimeError as e:
            if "VMAPPLE_BLOCKDEV_DIRECT" not in str(e):
                raise
            log("  (no direct I/O on this file system: the read-only back end uses the page cache)")
            be = guestlib.BackEnd(args.backend, sock, img, belog + ".ro2",
                                  ["--read-only", "--queues", "2"])
        q, v = boot("ro", be)
        expect(v.get("disk", [None, None])[1] == "1", "ro: the guest sees a read-only disk", q, be)
        expect(v.get("pattern-write", ["0"])[0] != "0" and v.get("dd-write", ["0"])[0] != "0",
               "ro: raw writes fail in the guest", q, be)
        expect(v.get("mount-rw") == ["failed"] or (v.get("touch", ["0"])[0] != "0"),
               "ro: the file system cannot be written", q, be)
        expect(v.get("files") == files, "ro: the files read back", q, be)
        expect(v.get("verify-tail-c") == ["0"], "ro: pattern C reads back", q, be)
        status = be.stop()
        expect(status == 0, "ro: the back end ends cleanly", None, be)
        expect(sha256_file(img) == before, "ro: the image file is unchanged (sha256)", None, be)
        expect("0 bytes written" in be.log() and "read-only" in be.log(),
               "ro: the back end wrote nothing", None, be)
    finally:
        if be.alive():
            be.stop()
        shutil.rmtree(sockdir, ignore_errors=True)
    log(f"PASS ({accel})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", required=True, help="libvmapple-vhost-user-blk")
    ap.add_argument("--blkpattern", help="the statically linked blkpattern tool")
    ap.add_argument("--workdir", default=".", help="where the image and logs go")
    ap.add_argument("--tcg", action="store_true", help="do not try KVM")
    args = ap.parse_args()
    try:
        run(args)
    except guestlib.Skip as e:
        print(f"SKIP: {e}", flush=True)
        return guestlib.SKIP
    except Failure as e:
        print(f"FAIL: {e}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
