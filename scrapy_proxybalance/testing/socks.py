"""Real SOCKS servers from Debian's packages, for tests: ``microsocks`` (SOCKS5, with or without
a login) and ``dante-server`` (SOCKS4 and SOCKS5, no login), each on 127.0.0.1 and leaving
from an exit address of its own (``-b`` for microsocks, ``external`` for dante), so the farm's
site sees which one a request came through. Started and stopped by PID.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from .wire import HOST, closed_port

DANTE = """logoutput: stderr
internal: {host} port = {port}
external: {exit_ip}
socksmethod: none
clientmethod: none
user.privileged: root
user.unprivileged: root
client pass {{ from: 127.0.0.0/8 to: 0.0.0.0/0 }}
socks pass {{ from: 127.0.0.0/8 to: 127.0.0.0/8 command: connect }}
"""


def available(kind: str) -> bool:
    """Whether this machine has that server (``microsocks``, or ``danted`` from dante-server)."""
    return shutil.which(kind) is not None or Path(f"/usr/sbin/{kind}").exists()


class SocksServer:
    def __init__(self, kind: str = "microsocks", exit_ip: str = HOST, user: str = "", password: str = "") -> None:
        if kind not in ("microsocks", "danted"):
            raise ValueError(f"no SOCKS server {kind!r}: microsocks or danted")
        self.kind, self.exit_ip, self.user, self.password = kind, exit_ip, user, password
        self.port = 0
        self.process: subprocess.Popen | None = None
        self.folder: tempfile.TemporaryDirectory[str] | None = None

    def url(self, scheme: str = "socks5") -> str:
        login = f"{self.user}:{self.password}@" if self.user else ""
        return f"{scheme}://{login}{HOST}:{self.port}"

    def start(self) -> SocksServer:
        self.port = closed_port()
        if self.kind == "microsocks":
            command = [shutil.which("microsocks") or "/usr/bin/microsocks", "-i", HOST, "-p", str(self.port),
                       "-b", self.exit_ip]
            if self.user:
                command += ["-u", self.user, "-P", self.password]
        else:
            self.folder = tempfile.TemporaryDirectory(prefix="danted-")
            conf = Path(self.folder.name) / "danted.conf"
            conf.write_text(DANTE.format(host=HOST, port=self.port, exit_ip=self.exit_ip))
            command = [shutil.which("danted") or "/usr/sbin/danted", "-f", str(conf), "-N", "1"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection((HOST, self.port), timeout=0.2):
                return self
            with contextlib.suppress(subprocess.TimeoutExpired):  # (it is not listening yet: wait, unless it exits)
                self.process.wait(timeout=0.02)
                raise RuntimeError(f"{self.kind} exited at once (status {self.process.returncode})")
        self.stop()
        raise RuntimeError(f"{self.kind} did not listen on {HOST}:{self.port}")

    def stop(self) -> None:
        """End the server (by its PID); it refuses connections from then on."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        if self.folder is not None:
            self.folder.cleanup()
            self.folder = None

    def __enter__(self) -> SocksServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
