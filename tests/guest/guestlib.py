# SPDX-License-Identifier: MIT
"""Shared by the real-guest test and benchmark: find the Debian tools, build
a busybox initramfs, pick KVM or TCG, run the back end and QEMU.

Only the Python standard library; everything runs as ordinary processes.
"""
import glob
import os
import re
import select
import shutil
import signal
import subprocess
import tempfile
import time

SKIP = 77  # meson's "skipped" exit status

GUEST_DIR = os.path.dirname(os.path.abspath(__file__))


class Skip(Exception):
    """A tool the test needs is missing: skip with this message."""


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def kernel():
    """The newest Debian kernel with its modules, as (vmlinuz, version)."""
    found = []
    for vmlinuz in glob.glob("/boot/vmlinuz-*"):
        ver = vmlinuz[len("/boot/vmlinuz-"):]
        if os.path.isdir(f"/lib/modules/{ver}"):
            found.append((vmlinuz, ver))
    if not found:
        raise Skip("no kernel in /boot with modules in /lib/modules (Debian: linux-image-amd64)")
    found.sort(key=lambda kv: [int(x) if x.isdigit() else x for x in re.split(r"[.-]", kv[1])])
    vmlinuz, ver = found[-1]
    if not os.access(vmlinuz, os.R_OK):
        raise Skip(f"{vmlinuz} is not readable by this user (Debian installs it 0600: run as root)")
    return vmlinuz, ver


def need(program, package):
    path = shutil.which(program) or next(
        (p for p in (f"/sbin/{program}", f"/usr/sbin/{program}") if os.access(p, os.X_OK)), None)
    if not path:
        raise Skip(f"{program} not found (Debian: {package})")
    return path


def is_static(path):
    out = subprocess.run(["ldd", path], capture_output=True, text=True)
    return out.returncode != 0 or "not a dynamic executable" in out.stdout + out.stderr


def tools(with_fio=False):
    """Check for everything; raise Skip naming what is missing."""
    t = {
        "qemu": need("qemu-system-x86_64", "qemu-system-x86"),
        "busybox": need("busybox", "busybox-static"),
        "mke2fs": need("mke2fs", "e2fsprogs"),
        "e2fsck": need("e2fsck", "e2fsprogs"),
        "debugfs": need("debugfs", "e2fsprogs"),
        "cpio": need("cpio", "cpio"),
        "modprobe": need("modprobe", "kmod"),
        "ldd": need("ldd", "libc-bin"),
    }
    if with_fio:
        t["fio"] = need("fio", "fio")
    if not is_static(t["busybox"]):
        raise Skip(f"{t['busybox']} is not statically linked (Debian: busybox-static)")
    t["vmlinuz"], t["kver"] = kernel()
    return t


def copy_with_libs(path, root, dest_dir="bin"):
    """Copy a program and its shared-library closure (ldd) into root."""
    os.makedirs(os.path.join(root, dest_dir), exist_ok=True)
    shutil.copy2(path, os.path.join(root, dest_dir, os.path.basename(path)))
    if is_static(path):
        return
    out = subprocess.run(["ldd", path], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        m = re.search(r"(/\S+)\s+\(0x", line)
        if not m:
            continue
        lib = m.group(1)
        dst = os.path.join(root, lib.lstrip("/"))
        if not os.path.exists(dst):
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copy2(os.path.realpath(lib), dst)


def modules(t, names):
    """The .ko files (in load order) behind `names`, builtins left out."""
    order = []
    for name in names:
        out = subprocess.run([t["modprobe"], "--show-depends", "-S", t["kver"], name],
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise Skip(f"modprobe --show-depends {name}: {out.stderr.strip()}")
        for line in out.stdout.splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "insmod" and parts[1] not in order:
                order.append(parts[1])
    return order


INIT = """#!/bin/busybox sh
/bin/busybox --install -s /bin
# Our e2fsprogs, blkpattern and fio before busybox's applets of the same name.
export PATH=/usr/local/bin:/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
while read -r m; do
    insmod /lib/modules/$m 2> /dev/null || echo "VTEST insmod-failed $m"
done < /lib/modules/load
phase=$(sed -n 's/.*vtest\\.phase=\\([a-z0-9]*\\).*/\\1/p' /proc/cmdline)
echo "VTEST booted $phase"
sh /guest.sh "$phase"
echo "VTEST exit $?"
sync
poweroff -f
"""


def build_initramfs(t, out, blkpattern, fio_jobs=None):
    """busybox, e2fsprogs, blkpattern, virtio and ext4 modules, guest.sh (+ fio and its jobs)."""
    root = tempfile.mkdtemp(prefix="vtest-initramfs-")
    try:
        for d in ("bin", "sbin", "proc", "sys", "dev", "mnt", "tmp", "lib/modules", "fio"):
            os.makedirs(os.path.join(root, d), exist_ok=True)
        shutil.copy2(t["busybox"], os.path.join(root, "bin/busybox"))
        for prog in (t["mke2fs"], t["e2fsck"], blkpattern):
            if prog:
                copy_with_libs(prog, root, "usr/local/bin")
        if fio_jobs:
            copy_with_libs(t["fio"], root, "usr/local/bin")
            for name, text in fio_jobs.items():
                with open(os.path.join(root, "fio", name + ".fio"), "w") as f:
                    f.write(text)
        load = []
        for ko in modules(t, ["virtio_pci", "virtio_blk", "ext4"]):
            shutil.copy2(ko, os.path.join(root, "lib/modules", os.path.basename(ko)))
            load.append(os.path.basename(ko))
        with open(os.path.join(root, "lib/modules/load"), "w") as f:
            f.write("\n".join(load) + "\n")
        shutil.copy2(os.path.join(GUEST_DIR, "guest.sh"), os.path.join(root, "guest.sh"))
        with open(os.path.join(root, "init"), "w") as f:
            f.write(INIT)
        os.chmod(os.path.join(root, "init"), 0o755)
        files = subprocess.run(["find", "."], cwd=root, capture_output=True, text=True,
                               check=True).stdout
        with open(out, "wb") as f:
            cpio = subprocess.Popen([t["cpio"], "-o", "-H", "newc", "--quiet"], cwd=root,
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            gz = subprocess.Popen(["gzip", "-1"], stdin=cpio.stdout, stdout=f)
            cpio.stdout.close()
            cpio.communicate(files.encode())
            gz.wait()
            if cpio.returncode or gz.returncode:
                raise RuntimeError("building the initramfs failed")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return out


class Qemu:
    """qemu-system-x86_64 with the test kernel and initramfs, serial on a pipe."""

    def __init__(self, t, accel, initramfs, phase, devices, mem_mb=256, smp=2, extra_cmdline=""):
        quiet = "" if phase == "probe" else " quiet"
        cmd = [t["qemu"], "-nodefaults", "-no-user-config", "-display", "none",
               "-serial", "stdio", "-monitor", "none", "-no-reboot",
               "-smp", str(smp), "-m", str(mem_mb),
               "-object", f"memory-backend-memfd,id=mem,size={mem_mb}M,share=on",
               "-machine", "q35,memory-backend=mem",
               "-kernel", t["vmlinuz"], "-initrd", initramfs,
               "-append", f"console=ttyS0 panic=-1{quiet} vtest.phase={phase} {extra_cmdline}"]
        if accel == "kvm":
            cmd += ["-accel", "kvm", "-cpu", "host"]
        else:
            cmd += ["-accel", "tcg,thread=multi", "-cpu", "max"]
        cmd += devices
        self.cmd = cmd
        self.lines = []
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        self.buf = b""

    def read_until(self, pattern, timeout):
        """Collect serial lines until one matches `pattern` (regex) or QEMU ends."""
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        while True:
            for line in self.lines:
                if rx.search(line):
                    return line
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select([self.proc.stdout], [], [], min(left, 1.0))
            if r:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:
                    return None
                self.buf += chunk
                while b"\n" in self.buf:
                    line, self.buf = self.buf.split(b"\n", 1)
                    text = line.decode(errors="replace").rstrip("\r")
                    self.lines.append(text)
                    if os.environ.get("VTEST_VERBOSE"):
                        print("  guest| " + text, flush=True)

    def wait(self, timeout):
        """Read everything until QEMU exits (the guest powers off). Returns its status."""
        self.read_until(r"^\0never$", timeout)
        try:
            return self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def kill(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def vtest(self):
        """The guest's VTEST lines as {key: [values]} (the last of each key)."""
        out = {}
        for line in self.lines:
            m = re.search(r"VTEST (\S+)(.*)$", line)
            if m:
                out[m.group(1)] = m.group(2).split()
        return out


def probe_accel(t, initramfs):
    """KVM when /dev/kvm exists and a guest actually boots under it, else TCG.

    Nested KVM on some hosts hangs in early boot, so /dev/kvm answering is not
    enough: the kernel's first console line must come within seconds.
    """
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "tcg", "/dev/kvm is not usable"
    q = Qemu(t, "kvm", initramfs, "probe", [], mem_mb=128, smp=1)
    try:
        if not q.read_until(r"Linux version", 8):
            return "tcg", "a KVM guest printed nothing within 8 s (nested KVM hangs here)"
        if not q.read_until(r"VTEST probe ok", 30):
            return "tcg", "a KVM guest did not finish booting within 30 s"
        return "kvm", "a KVM guest boots"
    finally:
        q.kill()


class BackEnd:
    """libvmapple-vhost-user-blk on a socket, its log in a file."""

    def __init__(self, exe, sock, image, logpath, extra=()):
        if os.path.exists(sock):
            os.unlink(sock)
        self.logpath = logpath
        self.logf = open(logpath, "ab")
        self.cmd = [exe, "--socket", sock, "--image", image, "--variant", "root", *extra]
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=self.logf,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while not os.path.exists(sock):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the back end did not start: {self.log()}")
            time.sleep(0.02)

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        """SIGTERM, as a management layer would; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.logf.close()
        return self.proc.returncode

    def log(self):
        if not self.logf.closed:
            self.logf.flush()
        with open(self.logpath, errors="replace") as f:
            return f.read()
