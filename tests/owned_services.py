"""Servers a test owns, so it can stall or stop them: a redis-server and a throwaway
PostgreSQL cluster, each on a free port under the test's temporary directory.

`pause()` sends SIGSTOP (the process keeps its sockets: clients connect and then wait, as
with a stalled server), `resume()` SIGCONT; tests resume in a `finally`. Missing binaries
skip the test cleanly.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.02)
    raise RuntimeError(f"nothing listens on port {port} after {timeout} s")


class OwnedRedis:
    def __init__(self, base: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed")
        self.port = free_port()
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            cwd=base,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_port(self.port, self.proc)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def pause(self) -> None:
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        self.resume()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def _pg_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


class OwnedPostgres:
    """initdb + postgres on a free port; as the `postgres` user when the tests run as root."""

    def __init__(self, base: Path) -> None:
        initdb, postgres = _pg_bin("initdb"), _pg_bin("postgres")
        if initdb is None or postgres is None:
            pytest.skip("PostgreSQL server binaries are not installed")
        # A directory of its own (pytest's are private to the test's user, and the server
        # runs as `postgres` when the tests run as root); removed by stop().
        self.dir = Path(tempfile.mkdtemp(prefix="owned-pg-"))
        self._user: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            try:
                self._user = pwd.getpwnam("postgres")
            except KeyError:
                pytest.skip("running as root without a postgres user for initdb")
            os.chown(self.dir, self._user.pw_uid, self._user.pw_gid)
        self.port = free_port()
        self._postgres = postgres
        subprocess.run(
            [initdb, "-D", str(self.dir / "data"), "-A", "trust", "-U", "postgres"],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=self._as_postgres,
        )
        self.start()

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        data, port = str(self.dir / "data"), str(self.port)
        self.proc = subprocess.Popen(
            [self._postgres, "-D", data, "-p", port, "-h", "127.0.0.1", "-k", str(self.dir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=self._as_postgres,
        )
        _wait_port(self.port, self.proc)

    def _as_postgres(self) -> None:
        if self._user is not None:
            os.setgid(self._user.pw_gid)
            os.setuid(self._user.pw_uid)

    def pause(self) -> None:
        """Stall the postmaster and every backend (connections hang, as on a frozen host)."""
        self._signal_all(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal_all(signal.SIGCONT)

    def _signal_all(self, sig: int) -> None:
        pids = [self.proc.pid]
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout
            pids += [int(p) for p in out.split()]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def stop(self) -> None:
        """A fast shutdown (SIGINT: clients disconnected, new connections refused)."""
        self.resume()
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def owned_redis(tmp_path) -> Iterator[OwnedRedis]:
    server = OwnedRedis(tmp_path)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def owned_postgres(tmp_path) -> Iterator[OwnedPostgres]:
    server = OwnedPostgres(tmp_path)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.dir, ignore_errors=True)
