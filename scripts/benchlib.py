"""Helpers shared by the benchmarks against QEMU (snapshots/bench, migration/bench): our release binary, a
guest console to scan for checkguest markers, our REST API, QEMU's QMP and command line."""
import json
import os
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GUEST = os.path.join(ROOT, "Tests/Guest/build/checkguest.elf")


def release_bin():
    out = subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout.strip()
    path = os.path.join(out, "cloud-hypervisor")
    if not os.path.exists(path):
        sys.exit("build the release binary first: swift build -c release")
    return path


class Console:
    """A child process whose merged stdout/stderr we scan for guest markers."""

    def __init__(self, argv):
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        os.set_blocking(self.proc.stdout.fileno(), False)
        self.buf = b""

    def wait_for(self, marker, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
            except BlockingIOError:
                chunk = None
            if chunk == b"":
                raise RuntimeError(f"exited while waiting for {marker!r}: {self.buf[-2000:]!r}")
            if chunk:
                self.buf += chunk
                idx = self.buf.find(marker)
                if idx >= 0:
                    line_end = self.buf.find(b"\n", idx)
                    if line_end >= 0:
                        line = self.buf[idx:line_end]
                        self.buf = self.buf[line_end + 1:]
                        return line.decode(errors="replace")
            else:
                time.sleep(0.005)
        raise RuntimeError(f"timeout waiting for {marker!r}: {self.buf[-2000:]!r}")

    def send(self, text):
        self.proc.stdin.write(text.encode())
        self.proc.stdin.flush()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def http(sock_path, method, endpoint, body=None):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock_path)
    data = json.dumps(body).encode() if body is not None else b""
    req = f"{method} /api/v1/{endpoint} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {len(data)}\r\n"
    if body is not None:
        req += "Content-Type: application/json\r\n"
    s.sendall(req.encode() + b"\r\n" + data)
    resp = b""
    while b"\r\n\r\n" not in resp:
        resp += s.recv(65536)
    head, rest = resp.split(b"\r\n\r\n", 1)
    status = int(head.split()[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v)
    while len(rest) < length:
        rest += s.recv(65536)
    s.close()
    if status >= 300:
        raise RuntimeError(f"{endpoint}: HTTP {status} {rest!r}")
    return rest


def wait_socket(path, timeout=10):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{path} did not appear")
        time.sleep(0.01)


class QMP:
    def __init__(self, path):
        wait_socket(path)
        deadline = time.monotonic() + 10
        while True:   # the socket file appears at bind(), before QEMU listens
            self.s = socket.socket(socket.AF_UNIX)
            try:
                self.s.connect(path)
                break
            except ConnectionRefusedError:
                self.s.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.002)
        self.f = self.s.makefile("rwb")
        self.events = []   # every asynchronous event read so far, in order (QMP: name, data, timestamp)
        self._read()
        self.cmd("qmp_capabilities")

    def _read(self):
        while True:
            msg = json.loads(self.f.readline())
            if "event" not in msg:
                return msg
            self.events.append(msg)

    def event_time(self, name):
        """Host wall-clock time (s) of the first `name` event seen so far, or None."""
        for e in self.events:
            if e["event"] == name:
                return e["timestamp"]["seconds"] + e["timestamp"]["microseconds"] / 1e6
        return None

    def cmd(self, name, **args):
        self.f.write(json.dumps({"execute": name, "arguments": args}).encode() + b"\n")
        self.f.flush()
        reply = self._read()
        if "error" in reply:
            raise RuntimeError(f"QMP {name}: {reply['error']}")
        return reply.get("return")


def qemu_argv(mem, qmp, append, extra=()):
    """QEMU+KVM (microvm: it boots the PVH checkguest directly, like us) with QMP on a UNIX socket."""
    return ["qemu-system-x86_64", "-accel", "kvm", "-cpu", "host,-arch-capabilities", "-M", "microvm",
            "-smp", "2", "-m", str(mem), "-kernel", GUEST, "-append", append, "-serial", "stdio",
            "-display", "none", "-nodefaults", "-no-user-config", "-qmp", f"unix:{qmp},server=on,wait=off"] + list(extra)
