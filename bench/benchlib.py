"""Helpers for bench/manager.py: vireod and libvirtd lifecycles, an HTTP
client over a unix socket, marker detection and a closed-loop load runner.

Python 3 standard library only (the benchmark must run on a bare Debian 12).
"""

import grp
import http.client
import json
import os
import select
import signal
import socket
import statistics
import subprocess
import threading
import time

MARKER = b"VIREO-GUEST-UP"
LIBVIRT_URI = "qemu:///system"


class BenchError(Exception):
    pass


def log(msg):
    print(f"[bench] {msg}", file=os.sys.stderr, flush=True)


def percentile(values, p):
    """Nearest-rank percentile (same definition as bench/api_load.cc)."""
    if not values:
        return None
    s = sorted(values)
    rank = max(1, min(len(s), int(p / 100.0 * len(s) + 0.999999)))
    return s[rank - 1]


def median(values):
    return statistics.median(values) if values else None


def read_proc_status(pid):
    """VmRSS and VmHWM of a process, in KiB."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    out[key] = int(rest.split()[0])
    except OSError:
        pass
    return out


def pid_alive(pid):
    """True for a live process; a zombie (exited, not yet reaped by a parent
    that may never reap it) counts as gone."""
    if not pid:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return False


def read_pid_file(path):
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def terminate(proc_or_pid, timeout=20):
    """SIGTERM, then SIGKILL after the timeout. Accepts a Popen or a pid."""
    if proc_or_pid is None:
        return
    if isinstance(proc_or_pid, subprocess.Popen):
        if proc_or_pid.poll() is not None:
            return
        proc_or_pid.terminate()
        try:
            proc_or_pid.wait(timeout)
        except subprocess.TimeoutExpired:
            proc_or_pid.kill()
            proc_or_pid.wait()
        return
    pid = proc_or_pid
    if not pid_alive(pid):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if pid_alive(pid):
        os.kill(pid, signal.SIGKILL)


class QemuSpawnWatch:
    """Notes when a QEMU process named `-name guest=NAME,...` first appears,
    by scanning new /proc entries. Splits a manager's start latency into its
    own launch cost and the (noisy, TCG-bound) guest boot."""

    def __init__(self, name, t0):
        self.prefix = f"guest={name},".encode()
        self.t0 = t0
        self.old = set(os.listdir("/proc"))
        self.young = {}  # pid -> first seen; rechecked since a fork execs later
        self.spawn_ms = None

    def poll(self):
        if self.spawn_ms is not None:
            return
        now = time.monotonic()
        for pid in os.listdir("/proc"):
            if pid in self.old or not pid.isdigit():
                continue
            if now - self.young.setdefault(pid, now) > 5:
                self.old.add(pid)
                continue
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    args = f.read().split(b"\0")
            except OSError:
                continue
            if any(a.startswith(self.prefix) for a in args):
                self.spawn_ms = (now - self.t0) * 1000.0
                return


def wait_file_marker(path, offset, t0, timeout, failed=None, watch=None):
    """Polls `path` every 2 ms until MARKER appears after `offset`. Returns
    milliseconds since t0 (time.monotonic()). `failed()` may return an error
    text to give up early (e.g. the launcher exited with an error); `watch`
    (a QemuSpawnWatch) is polled on the way."""
    deadline = t0 + timeout
    buf = b""
    fd = None
    last_check = 0.0
    try:
        while True:
            if fd is None:
                try:
                    fd = os.open(path, os.O_RDONLY)
                    os.lseek(fd, offset, os.SEEK_SET)
                except OSError:
                    fd = None
            if fd is not None:
                while True:
                    chunk = os.read(fd, 65536)
                    if not chunk:
                        break
                    buf = buf[-len(MARKER):] + chunk
                    if MARKER in buf:
                        return (time.monotonic() - t0) * 1000.0
            if watch is not None:
                watch.poll()
            now = time.monotonic()
            if now > deadline:
                raise BenchError(f"no {MARKER.decode()} in {path} after {timeout}s")
            if failed is not None and now - last_check > 0.1:
                last_check = now
                why = failed()
                if why:
                    raise BenchError(why)
            time.sleep(0.002)
    finally:
        if fd is not None:
            os.close(fd)


def wait_pipe_marker(pipe, t0, timeout):
    """Reads a pipe until MARKER; returns milliseconds since t0."""
    deadline = t0 + timeout
    buf = b""
    fd = pipe.fileno()
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise BenchError(f"no {MARKER.decode()} on the serial pipe after {timeout}s")
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            raise BenchError("QEMU closed the serial pipe before " + MARKER.decode())
        buf = buf[-len(MARKER):] + chunk
        if MARKER in buf:
            return (time.monotonic() - t0) * 1000.0


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=120):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


class VireoApi:
    """Minimal client of docs/api.md over the unix socket (keep-alive)."""

    def __init__(self, sock_path):
        self.sock_path = sock_path
        self.conn = None

    def request(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        for attempt in (0, 1):
            try:
                if self.conn is None:
                    self.conn = UnixHTTPConnection(self.sock_path)
                self.conn.request(method, path, body=data, headers=headers)
                resp = self.conn.getresponse()
                return resp.status, resp.read()
            except (OSError, http.client.HTTPException):
                # The server may have closed an idle keep-alive connection.
                if self.conn is not None:
                    self.conn.close()
                self.conn = None
                if attempt:
                    raise

    def json(self, method, path, body=None):
        status, raw = self.request(method, path, body)
        try:
            doc = json.loads(raw) if raw else {}
        except ValueError:
            doc = {"error": raw[:300].decode(errors="replace")}
        if status >= 300:
            raise BenchError(f"{method} {path}: HTTP {status}: {doc.get('error', doc)}")
        return doc

    def call_wait(self, method, path, body=None, timeout=300):
        """Sends a request; for an async reply waits for the operation and
        fails unless it succeeded. Returns the metadata."""
        doc = self.json(method, path, body)
        if doc.get("type") != "async":
            return doc.get("metadata")
        op_url = doc["operation"]
        while True:
            op = self.json("GET", f"{op_url}/wait?timeout={timeout}")["metadata"]
            if op.get("status") == "Success":
                return op
            if op.get("status") == "Failure":
                raise BenchError(f"{method} {path}: operation failed: {op.get('err')}")
            timeout = 60


class Vireod:
    """A private vireod: temp data dir, unix socket, HTTPS off unless
    `https` names a listen address (host:port)."""

    def __init__(self, binary, workdir, tag, accel, extra_args=(), https=""):
        self.data_dir = os.path.join(workdir, f"vireo-{tag}")
        os.makedirs(self.data_dir, exist_ok=True)
        self.sock = os.path.join(self.data_dir, "vireo.sock")
        self.log_path = os.path.join(workdir, f"vireod-{tag}.log")
        argv = [binary, "--data-dir", self.data_dir, "--socket", self.sock, "--https", https,
                "--log-level", os.environ.get("BENCH_VIREOD_LOG_LEVEL", "warn")]
        if accel:
            argv += ["--accel", accel]
        argv += list(extra_args)
        with open(self.log_path, "ab") as logf:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        self.api = VireoApi(self.sock)
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise BenchError(f"vireod exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                self.info = self.api.json("GET", "/1.0")["metadata"]
                break
            except (OSError, BenchError, http.client.HTTPException):
                if time.monotonic() > deadline:
                    raise BenchError(f"vireod did not answer on {self.sock}: {self.log_tail()}")
                time.sleep(0.05)

    def log_tail(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-600:].decode(errors="replace")
        except OSError:
            return ""

    def rss(self):
        return read_proc_status(self.proc.pid)

    def stop(self):
        # Guests keep running across a vireod restart by design: remove them.
        try:
            for inst in self.api.json("GET", "/1.0/instances?recursion=1")["metadata"]:
                pid = (inst.get("status") or {}).get("pid") or 0
                if pid:
                    terminate(pid, timeout=5)
        except Exception:  # best effort while tearing down
            pass
        terminate(self.proc)


def virsh(*args, check=True, timeout=300):
    r = subprocess.run(["virsh", "-c", LIBVIRT_URI, *args], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise BenchError(f"virsh {' '.join(args)[:80]}: {r.stderr.strip()[:300]}")
    return r


class Libvirtd:
    """Uses a running libvirtd, or starts one (and virtlogd) and stops them
    at the end."""

    PID_FILE = "/run/libvirtd.pid"
    VIRTLOGD_PID_FILE = "/run/virtlogd.pid"

    def __init__(self, workdir):
        self.workdir = workdir
        self.started = []  # pids we launched
        self.notes = []

    def ensure(self):
        for tool in ("virsh", "/usr/sbin/libvirtd", "/usr/sbin/virtlogd"):
            if not (os.path.exists(tool) or subprocess.run(["which", tool],
                                                           capture_output=True).returncode == 0):
                raise BenchError(f"{tool} not installed (scripts/setup installs libvirt)")
        if pid_alive(read_pid_file(self.PID_FILE)):
            self.notes.append("used the libvirtd that was already running")
        else:
            if not pid_alive(read_pid_file(self.VIRTLOGD_PID_FILE)):
                subprocess.run(["/usr/sbin/virtlogd", "-d"], check=True)
                self.started.append(self._wait_pid(self.VIRTLOGD_PID_FILE))
            subprocess.run(self._libvirtd_argv(), check=True, cwd="/")
            self.started.append(self._wait_pid(self.PID_FILE))
        deadline = time.monotonic() + 60
        while virsh("version", check=False, timeout=30).returncode != 0:
            if time.monotonic() > deadline:
                raise BenchError("libvirtd does not answer on " + LIBVIRT_URI)
            time.sleep(0.2)

    def _libvirtd_argv(self):
        # On a host where /dev/kvm is root-only (no udev rule ran), libvirt 9.0
        # probes QEMU with KVM, then finds that its QEMU user cannot use KVM
        # and throws its capability cache away on every call: each `virsh
        # create` re-probes for ~50 s. Debian's udev rule would make /dev/kvm
        # root:kvm 0660; give libvirtd that view in a private mount namespace
        # instead of changing the host.
        try:
            st = os.stat("/dev/kvm")
            kvm_gid = grp.getgrnam("kvm").gr_gid
        except (OSError, KeyError):
            return ["/usr/sbin/libvirtd", "-d"]
        if st.st_gid == kvm_gid and st.st_mode & 0o060 == 0o060:
            return ["/usr/sbin/libvirtd", "-d"]
        node = os.path.join(self.workdir, "kvm-node")
        try:
            os.mknod(node, 0o660 | 0o020000, st.st_rdev)
            os.chown(node, 0, kvm_gid)
            os.chmod(node, 0o660)
        except OSError as e:
            self.notes.append(f"could not fix /dev/kvm's view for libvirtd: {e}")
            return ["/usr/sbin/libvirtd", "-d"]
        self.notes.append("libvirtd ran in a private mount namespace where /dev/kvm is "
                          "root:kvm 0660 (Debian's udev default); the host's node is root-only")
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                f"mount --bind '{node}' /dev/kvm && exec /usr/sbin/libvirtd -d"]

    @staticmethod
    def _wait_pid(path):
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            pid = read_pid_file(path)
            if pid_alive(pid):
                return pid
            time.sleep(0.05)
        raise BenchError(f"no live pid in {path}")

    def pid(self):
        return read_pid_file(self.PID_FILE)

    def stop(self):
        for pid in reversed(self.started):
            terminate(pid)
        self.started = []


def closed_loop(clients, duration, make_worker, warmup=1.0):
    """Runs `clients` threads, each calling its own worker back to back for
    `duration` seconds after `warmup` unmeasured seconds. make_worker() returns
    (call, close); call() raises on failure. Returns a stats dict."""
    lat = [[] for _ in range(clients)]
    errors = [0] * clients
    first_error = []
    barrier = threading.Barrier(clients + 1)
    times = {}

    def body(i):
        try:
            call, close = make_worker()
        except Exception as e:  # counted, reported once
            errors[i] += 1
            first_error.append(str(e))
            barrier.wait()
            return
        try:
            barrier.wait()
            while time.monotonic() < times["start"]:
                call()
            while True:
                t0 = time.monotonic()
                if t0 >= times["end"]:
                    break
                try:
                    call()
                    lat[i].append((time.monotonic() - t0) * 1000.0)
                except Exception as e:
                    errors[i] += 1
                    if not first_error:
                        first_error.append(str(e))
        finally:
            close()

    threads = [threading.Thread(target=body, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    times["start"] = time.monotonic() + warmup
    times["end"] = times["start"] + duration
    barrier.wait()
    for t in threads:
        t.join()
    all_lat = [x for per in lat for x in per]
    out = {
        "clients": clients,
        "duration_s": duration,
        "requests": len(all_lat),
        "errors": sum(errors),
        "throughput_rps": len(all_lat) / duration,
        "p50_ms": percentile(all_lat, 50),
        "p90_ms": percentile(all_lat, 90),
        "p99_ms": percentile(all_lat, 99),
        "max_ms": max(all_lat) if all_lat else None,
    }
    if first_error:
        out["first_error"] = first_error[0]
    return out
