"""Peer gateways measured in the same run as ours (`python -m bench gateway --peers`).

Portkey's open-source gateway (Node, `@portkey-ai/gateway`) is installed from npm into a scratch
folder (`var/bench-peers/portkey`, git-ignored; never a project dependency) the first time it
is needed, with `@hono/node-server` pinned to 1.13.8: with the version npm resolves, its
streamed responses fail (a known issue). It forwards to the same fake provider as ours, as an
OpenAI provider with a custom host, so both gateways do the same work per request: parse,
forward, return (Portkey records nothing; ours records every call and checks limits).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from bench._support import free_port, wait_port

ROOT = Path(__file__).resolve().parent.parent
PORTKEY_DIR = ROOT / "var" / "bench-peers" / "portkey"
PORTKEY_VERSION = "1.15.2"
HONO_NODE_SERVER = "1.13.8"
PORTKEY_SERVER = PORTKEY_DIR / "node_modules" / "@portkey-ai" / "gateway" / "build" / "start-server.js"


def portkey_install() -> Path:
    """The Portkey server script, installed on first use (needs node and npm)."""
    if PORTKEY_SERVER.exists():
        return PORTKEY_SERVER
    if not shutil.which("npm"):
        raise SystemExit("--peers needs node and npm (Portkey's gateway is a Node program)")
    PORTKEY_DIR.mkdir(parents=True, exist_ok=True)
    package = {
        "name": "bench-peers",
        "private": True,
        "dependencies": {"@portkey-ai/gateway": PORTKEY_VERSION, "@hono/node-server": HONO_NODE_SERVER},
        "overrides": {"@hono/node-server": HONO_NODE_SERVER},
    }
    (PORTKEY_DIR / "package.json").write_text(json.dumps(package, indent=2))
    print(f"installing Portkey's gateway {PORTKEY_VERSION} into {PORTKEY_DIR} ...", flush=True)
    subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=PORTKEY_DIR, check=True
    )
    return PORTKEY_SERVER


def portkey_start(env: dict[str, str]) -> tuple[subprocess.Popen, int]:
    """Portkey's gateway on a free loopback port (headless, production mode: no UI, no log stream)."""
    script = portkey_install()
    port = free_port()
    proc = subprocess.Popen(
        ["node", str(script), f"--port={port}", "--headless"],
        env={**env, "NODE_ENV": "production"},
        cwd=PORTKEY_DIR,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_port(port)
    return proc, port


def portkey_headers(fake_url: str, provider_key: str) -> dict[str, str]:
    """What a client sends Portkey to reach an OpenAI-compatible upstream at `fake_url`."""
    return {
        "Authorization": f"Bearer {provider_key}",
        "x-portkey-provider": "openai",
        "x-portkey-custom-host": f"{fake_url}/v1",
    }


def node_version() -> str:
    try:
        return subprocess.run(
            ["node", "--version"], capture_output=True, text=True, env=os.environ
        ).stdout.strip()
    except OSError:
        return "?"
