"""Plumbing shared by the benchmarks: free ports, waiting for a listener, the fake provider
server in a process of its own (so it never competes with the measured process's loop)."""

import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, timeout: float = 30.0) -> None:
    """Bounded wait until something accepts connections on 127.0.0.1:`port`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


def start_fake_server(port: int) -> subprocess.Popen:
    """tests.fake_provider.FakeProviderServer (zero latency) in a subprocess; SIGTERM stops it."""
    code = (
        "import signal, threading\n"
        "from tests.fake_provider import FakeProviderServer\n"
        f"server = FakeProviderServer(port={port}).start()\n"
        "done = threading.Event()\n"
        "signal.signal(signal.SIGTERM, lambda *a: done.set())\n"
        "done.wait()\n"
        "server.stop()\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT)
    wait_port(port)
    return proc
