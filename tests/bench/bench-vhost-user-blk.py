#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""fio in a Linux guest: libvmapple's vhost-user-blk back end against QEMU's
own virtio-blk-pci on the same image file, in the same run.

    bench-vhost-user-blk.py --backend EXE [--rounds N] [--runtime S] [--tcg]

Every configuration boots the same kernel and initramfs (tests/guest) and runs
the same fio jobs on /dev/vda (direct=1, libaio, 512 MiB region):
  randread-4k-qd32  4 KiB random reads, queue depth 32        (IOPS)
  seqread-1m        1 MiB sequential reads, queue depth 8     (MB/s)
  seqwrite-1m       1 MiB sequential writes, queue depth 8    (MB/s)
Configurations (2 vCPUs, 2 queues, 256-entry vrings each), in pairs that
treat the host page cache alike:
  libvmapple-direct  -device vhost-user-blk-pci + libvmapple-vhost-user-blk
                     --direct (io_uring, O_DIRECT)
  qemu-native        -device virtio-blk-pci, cache=none,aio=native (O_DIRECT)
  libvmapple         the back end through the host page cache (its default)
  qemu-writeback     -device virtio-blk-pci, cache=writeback,aio=io_uring
Rounds are interleaved (the machine may be shared); each figure is the
median. Lines in tests/bench/bench.h's format: the limit is QEMU's figure,
the ratio libvmapple / QEMU.
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "guest"))
import guestlib  # noqa: E402
from guestlib import log  # noqa: E402

IMAGE_BYTES = 512 << 20
QSIZE = 256

JOBS = {
    "randread-4k-qd32": ("randread", "4k", 32, "IOPS"),
    "seqread-1m": ("read", "1m", 8, "MB/s"),
    "seqwrite-1m": ("write", "1m", 8, "MB/s"),
}


def fio_job(name, rw, bs, qd, runtime):
    return (f"[global]\nfilename=/dev/vda\ndirect=1\nioengine=libaio\ntime_based=1\n"
            f"runtime={runtime}\nramp_time=2\nsize={IMAGE_BYTES}\ngroup_reporting=1\n"
            f"randrepeat=0\n[{name}]\nrw={rw}\nbs={bs}\niodepth={qd}\nnumjobs=1\n")


def figure(job, fields):
    """IOPS or MB/s from fio's terse (v3) line: read bw KiB/s at 7, IOPS at 8; write at 48, 49."""
    rw, _, _, unit = JOBS[job]
    f = fields
    read_bw, read_iops = float(f[6]), float(f[7])
    write_bw, write_iops = float(f[47]), float(f[48])
    if unit == "IOPS":
        return read_iops if "read" in rw else write_iops
    return (read_bw if "read" in rw else write_bw) * 1024 / 1e6


def bench_line(name, value, unit, limit):
    print(f"bench: {name} {value:.3f} {unit} limit {limit:.3f} ratio "
          f"{value / limit if limit > 0 else 0.0:.3f}", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", required=True)
    ap.add_argument("--blkpattern")
    ap.add_argument("--workdir", default=".")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runtime", type=int, default=10, help="seconds per fio job")
    ap.add_argument("--tcg", action="store_true", help="do not try KVM")
    ap.add_argument("--pair", choices=("direct", "page-cache"),
                    help="run only one pair of configurations")
    ap.add_argument("--backend-arg", action="append", default=[],
                    help="an extra option for the back end (repeatable)")
    args = ap.parse_args()
    try:
        t = guestlib.tools(with_fio=True)
    except guestlib.Skip as e:
        print(f"SKIP: {e}")
        return guestlib.SKIP
    work = os.path.join(args.workdir, "vhost-bench")
    os.makedirs(work, exist_ok=True)
    jobs = {n: fio_job(n, *JOBS[n][:3], args.runtime) for n in JOBS}
    initramfs = guestlib.build_initramfs(t, os.path.join(work, "initramfs-fio.gz"),
                                         args.blkpattern, fio_jobs=jobs)
    accel, why = ("tcg", "forced") if args.tcg else guestlib.probe_accel(t, initramfs)
    log(f"accelerator: {accel} ({why})")
    img = os.path.join(work, "bench.img")
    with open(img, "wb") as f:
        chunk = bytes(range(256)) * 4096
        for _ in range(IMAGE_BYTES // len(chunk)):
            f.write(chunk)
    sockdir = tempfile.mkdtemp(prefix="vbench-")
    sock = os.path.join(sockdir, "blk.sock")
    be_args = ["--queues", "2", "--max-queue-size", str(QSIZE), "--seg-max", str(QSIZE - 2),
               "--quiet"] + args.backend_arg
    be = None
    vhost_dev = ["-chardev", f"socket,id=vblk,path={sock}", "-device",
                 f"vhost-user-blk-pci,chardev=vblk,num-queues=2,queue-size={QSIZE}"]
    configs = {
        "libvmapple-direct": vhost_dev,
        "qemu-native": ["-drive", f"file={img},if=none,id=d0,format=raw,cache=none,aio=native",
                        "-device", f"virtio-blk-pci,drive=d0,num-queues=2,queue-size={QSIZE}"],
        "libvmapple": vhost_dev,
        "qemu-writeback": ["-drive",
                           f"file={img},if=none,id=d0,format=raw,cache=writeback,aio=io_uring",
                           "-device", f"virtio-blk-pci,drive=d0,num-queues=2,queue-size={QSIZE}"],
    }
    if args.pair:
        keep = {"direct": ("libvmapple-direct", "qemu-native"),
                "page-cache": ("libvmapple", "qemu-writeback")}[args.pair]
        configs = {c: d for c, d in configs.items() if c in keep}
    results = {c: {j: [] for j in JOBS} for c in configs}
    try:
        for r in range(args.rounds):
            for c, devices in configs.items():
                start = time.monotonic()
                if c.startswith("libvmapple"):
                    # Only while it runs: it locks the image, as QEMU does.
                    be = guestlib.BackEnd(args.backend, sock, img,
                                          os.path.join(work, "backend.log"),
                                          be_args + (["--direct"] if c.endswith("direct") else []))
                q = guestlib.Qemu(t, accel, initramfs, "bench", devices, mem_mb=512,
                                  extra_cmdline="vtest.fio=" + ",".join(JOBS))
                status = q.wait(120 + 4 * len(JOBS) * args.runtime * (1 if accel == "kvm" else 3))
                v_lines = [ln for ln in q.lines if "VTEST fio " in ln]
                for line in v_lines:
                    parts = line.split("VTEST fio ", 1)[1].split()
                    name, rc, fields = parts[0], parts[1], parts[2:]
                    if rc != "0" or len(fields) < 60:
                        print("\n".join(q.lines))
                        raise RuntimeError(f"{c}: fio {name} failed")
                    results[c][name].append(figure(name, fields))
                if be:
                    be.stop()
                    be = None
                if status != 0 or len(v_lines) != len(JOBS):
                    print("\n".join(q.lines))
                    raise RuntimeError(f"{c}: the guest did not finish (status {status})")
                log(f"round {r + 1} {c}: " + ", ".join(
                    f"{j} {results[c][j][-1]:.0f} {JOBS[j][3]}" for j in JOBS) +
                    f" ({time.monotonic() - start:.0f} s)")
    finally:
        if be:
            be.stop()
        os.unlink(img)
    med = {c: {j: statistics.median(v) for j, v in results[c].items()} for c in configs}
    print(f"# guest under {accel.upper()}, 2 vCPUs; median of {args.rounds} interleaved rounds; "
          f"{args.runtime} s per fio job", flush=True)
    for j, (_, _, _, unit) in JOBS.items():
        if "qemu-native" in med:
            bench_line(f"vhost-user-blk-direct/{j}/vs-qemu-cache-none-aio-native",
                       med["libvmapple-direct"][j], unit, med["qemu-native"][j])
        if "qemu-writeback" in med:
            bench_line(f"vhost-user-blk/{j}/vs-qemu-cache-writeback-aio-io_uring",
                       med["libvmapple"][j], unit, med["qemu-writeback"][j])
    return 0


if __name__ == "__main__":
    sys.exit(main())
