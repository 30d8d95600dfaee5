"""Real-browser test support: the app served by uvicorn (ASGI, so streams really stream)
on a free loopback port, and Debian's Chromium driven by Playwright.

Use in a test module:  `from tests.browser import live_url, page, login  # noqa: F401`
(or the fixtures re-exported by tests/conftest.py).
"""

import contextlib
import os
import shutil
import socket
import threading
from collections.abc import Iterator

import pytest

# Playwright's sync API runs an event loop in the test thread; Django must allow ORM use there.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def served(app) -> Iterator[int]:
    """`app` served by uvicorn in a background thread, as scripts/serve serves it (its
    protocol); yields the port."""
    import uvicorn

    port = _free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
        http="orchestrator_site.server:HttpProtocol",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    started = threading.Event()
    for _ in range(500):  # bounded wait for the socket to accept
        if server.started:
            started.set()
            break
        started.wait(0.01)
    assert started.is_set(), "uvicorn did not start"
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def live_url(transactional_db) -> Iterator[str]:
    """Base URL of the ASGI app served by uvicorn in a background thread."""
    from orchestrator_site.asgi import application

    with served(application) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def _browser():
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        pytest.skip(f"Chromium not found at {CHROMIUM}: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(_browser):
    context = _browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.dialogs = dialogs  # type: ignore[attr-defined]  # tests assert no alert() ran
    yield page
    context.close()


def login(page, live_url: str, username: str, password: str = "password") -> None:
    page.goto(f"{live_url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_url}/")


def screenshot_path(name: str) -> str | None:
    """Where a browser test saves a screenshot of what it checked: only when SCREENSHOT_DIR is
    set (`SCREENSHOT_DIR=var/shots make test`), to look at the pages; None (no file) otherwise."""
    folder = os.environ.get("SCREENSHOT_DIR")
    if not folder:
        return None
    os.makedirs(folder, exist_ok=True)
    return os.path.join(folder, f"{name}.png")
