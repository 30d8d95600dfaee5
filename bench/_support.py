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


FAKE_KEY_ENV = "FAKE_PROVIDER_API_KEY"
FAKE_KEY = "sk-bench"


def setup_django(var_dir: str, *, allow_async_unsafe: bool = False) -> None:
    """Django on a scratch SQLite database in `var_dir` (never the dev one), migrated."""
    import os

    os.environ["ORCHESTRATOR_VAR_DIR"] = var_dir
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("REDIS_URL", None)
    os.environ["HTTPS"] = "false"
    os.environ["DJANGO_SETTINGS_MODULE"] = "orchestrator_site.settings"
    if allow_async_unsafe:  # set-up runs sync ORM beside a running loop
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    os.environ[FAKE_KEY_ENV] = FAKE_KEY
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def fake_model_create(fake_url: str) -> None:
    """Provider `fake` (kind openai, pointing at the fake server) and its model `bench-model`."""
    from decimal import Decimal

    from routing.models import ModelConfig, Provider

    fake = Provider.objects.create(
        name="fake", kind="openai", base_url=f"{fake_url}/v1", api_key_env=FAKE_KEY_ENV, options={}
    )
    ModelConfig.objects.create(
        name="bench-model",
        provider=fake,
        model_id="bench-model",
        input_cost_per_1k=Decimal("0.001"),
        output_cost_per_1k=Decimal("0.002"),
    )
