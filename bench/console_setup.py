"""Set-up for bench/console.py: the guest's serial shell, the peer VM (a
copy of the Vireo VM's QEMU command line with VNC on TCP), websockify, and
the self-signed certificate. Python 3 standard library only."""

import os
import socket
import subprocess
import time

from benchlib import BenchError, terminate, wait_file_marker


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=30, proc=None):
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if proc is not None and proc.poll() is not None:
                raise BenchError(f"{proc.args[0]} exited with {proc.returncode}")
            if time.monotonic() > deadline:
                raise BenchError(f"nothing listens on 127.0.0.1:{port}")
            time.sleep(0.05)


class SerialShell:
    """Types commands into the guest kit's shell on the serial console (its
    QEMU chardev socket) and waits for their end marker, like the e2e
    harness's GuestRun. Stays connected until the output is in: QEMU drops
    input still queued behind the UART FIFO when the client goes away."""

    def __init__(self, path):
        self.path = path
        self.n = 0

    def run(self, command, timeout=60):
        self.n += 1
        nonce = f"{os.getpid()}x{self.n}"
        end = f"CB-END-{nonce}".encode()
        # "$(echo N)": the echo of the typed line never matches the marker.
        # A line of its own: the command may end in "&".
        typed = f"{command}\recho CB-END-$(echo {nonce})\r".encode()
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        deadline = time.monotonic() + timeout
        try:
            s.connect(self.path)
            s.sendall(typed)
            buf = b""
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BenchError(f"guest command did not finish: {command[:60]}")
                s.settimeout(left)
                try:
                    chunk = s.recv(65536)
                except socket.timeout:
                    continue
                if not chunk:
                    raise BenchError("serial console closed")
                buf = (buf + chunk)[-4096:]
                # The typed line echoes "CB-END-$(echo N)"; the output is CB-END-N.
                if end in buf:
                    return
        finally:
            s.close()


# Guest side of the workload, typed into the serial shell. tty1 is the VGA
# text console (720x400); the kit's own shell is on ttyS0.
GUEST_PREPARE = (
    # Hidden cursor: QEMU draws the VGA text cursor's blink itself, which
    # would be a screen change no key caused. Then an interactive shell on
    # tty1, so VNC key presses echo on the screen.
    "printf '\\033[?25l\\033[H\\033[J' >/dev/tty1; "
    "setsid sh -c 'exec sh -i </dev/tty1 >/dev/tty1 2>&1' &")
WORKLOAD = "while :; do dmesg; done >/dev/tty1"
GUEST_WORKLOAD_START = f"wl() {{ {WORKLOAD}; }}; wl & echo $! >/tmp/wl.pid"
GUEST_WORKLOAD_STOP = ("kill $(cat /tmp/wl.pid) 2>/dev/null; sleep 1; "
                       "printf '\\033[?25l\\033[H\\033[J' >/dev/tty1")


def split_qemu_opts(spec):
    """QEMU's key=value,... option string into its parts (",," is a comma)."""
    parts, cur, i = [], "", 0
    while i < len(spec):
        if spec[i] == ",":
            if spec[i + 1:i + 2] == ",":
                cur += ","
                i += 2
                continue
            parts.append(cur)
            cur = ""
        else:
            cur += spec[i]
        i += 1
    parts.append(cur)
    return parts


def join_qemu_opts(parts):
    return ",".join(p.replace(",", ",,") for p in parts)


def peer_argv(vireo_argv, vireo_data_dir, workdir, vnc_port, qemu_ws_port):
    """The Vireo VM's own QEMU command line with its per-VM files moved to
    `workdir` and VNC on 127.0.0.1 TCP (plus QEMU's own WebSocket listener):
    the same machine, devices, kernel, initrd and command line."""
    out, i = [], 0
    files = {}
    while i < len(vireo_argv):
        a = vireo_argv[i]
        v = vireo_argv[i + 1] if i + 1 < len(vireo_argv) else None
        if a == "-name":
            out += [a, "guest=consolebench-peer,debug-threads=on"]
        elif a == "-chardev":
            parts = split_qemu_opts(v)
            cid = next((p[3:] for p in parts if p.startswith("id=")), "c")
            for k, p in enumerate(parts):
                for key, suffix in (("path=", ".sock"), ("logfile=", ".log")):
                    if p.startswith(key):
                        files[cid + suffix] = os.path.join(workdir, f"peer-{cid}{suffix}")
                        parts[k] = key + files[cid + suffix]
            out += [a, join_qemu_opts(parts)]
        elif a == "-vnc":
            out += [a, f"127.0.0.1:{vnc_port - 5900},share=force-shared,"
                       f"websocket=127.0.0.1:{qemu_ws_port}"]
        elif a == "-pidfile":
            files["pid"] = os.path.join(workdir, "peer.pid")
            out += [a, files["pid"]]
        else:
            out.append(a)
            i += 1
            continue
        i += 2
    leftover = [a for a in out if vireo_data_dir in a]
    if leftover:
        raise BenchError(f"peer VM: unhandled per-VM paths in Vireo's QEMU argv: {leftover}")
    if "-vnc" not in vireo_argv:
        raise BenchError("the Vireo VM's QEMU has no -vnc (is the consoles branch merged?)")
    return out, files


class PeerVm:
    """The second VM: started and stopped here, not by Vireo."""

    def __init__(self, argv, files, workdir):
        self.argv = argv
        self.serial = SerialShell(files["serial0.sock"])
        self.log = files["serial0.log"]
        self.out_path = os.path.join(workdir, "peer-qemu.out")
        with open(self.out_path, "wb") as out:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)

    def wait_up(self, timeout):
        def failed():
            if self.proc.poll() is None:
                return None
            with open(self.out_path, "rb") as f:
                return f"peer QEMU exited: {f.read()[-400:].decode(errors='replace')}"
        wait_file_marker(self.log, 0, time.monotonic(), timeout, failed)

    def stop(self):
        terminate(self.proc, timeout=5)


class Websockify:
    """Debian's websockify in front of the peer's VNC TCP port. With --cert
    and without --ssl-only it takes wss and plain ws on the same port."""

    def __init__(self, port, target_port, cert, key, workdir):
        self.port = port
        self.log_path = os.path.join(workdir, "websockify.log")
        with open(self.log_path, "wb") as logf:
            self.proc = subprocess.Popen(
                ["websockify", "--cert", cert, "--key", key, f"127.0.0.1:{port}",
                 f"127.0.0.1:{target_port}"], stdin=subprocess.DEVNULL, stdout=logf,
                stderr=subprocess.STDOUT, start_new_session=True)
        wait_port(port, proc=self.proc)

    def stop(self):
        # It forks a child per connection, in its own process group.
        try:
            os.killpg(self.proc.pid, 15)
        except OSError:
            pass
        terminate(self.proc, timeout=5)


def self_signed_cert(workdir):
    cert = os.path.join(workdir, "websockify.crt")
    key = os.path.join(workdir, "websockify.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
                    "/CN=127.0.0.1", "-keyout", key, "-out", cert],
                   check=True, capture_output=True)
    return cert, key


def cert_info(path):
    r = subprocess.run(["openssl", "x509", "-in", path, "-noout", "-text"],
                       capture_output=True, text=True)
    for line in r.stdout.splitlines():
        line = line.strip()
        if line.startswith("Public Key Algorithm:") or line.startswith("Public-Key:"):
            return line
    return None
