"""Provider secrets out of error text: an upstream (or a proxy in front of it) may repeat the
credentials it received in its error body, and that text would otherwise reach the caller,
the call records, the spool, the pages and the logs.

The transport chokepoint runs every error message through `secrets_redact` before it returns
it, so nothing downstream needs to know. It removes:

- the secret values this process sends: the provider's key (its `api_key_env` variable) and
  any environment variable whose name says it holds a key, token or secret;
- anything shaped like a credential: `Bearer …` / `Basic …`, OpenAI and Anthropic keys
  (`sk-…`), Google API keys (`AIza…`), and the value after a header or field named
  `authorization`, `x-api-key`, `api-key` (Azure), `x-goog-api-key`, `api_key`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

__all__ = ["REDACTED", "secrets_known", "secrets_redact"]

REDACTED = "[redacted]"
_MIN_SECRET = 8  # shorter values are not secrets worth the false positives
_SECRET_ENV = re.compile(r"(API_KEY|_KEY|_TOKEN|_SECRET|PASSWORD)$")

_SHAPES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=-]{6,}"), rf"\1\2{REDACTED}"),
    (
        re.compile(
            r"""(?i)\b(authorization|proxy-authorization|x-api-key|api-key|x-goog-api-key|api_key|apikey)"""
            r"""(["']?\s*[:=]\s*["']?)(?!\[redacted\])(?!(?:bearer|basic)\s)([^\s"',;}]{4,})"""
        ),
        rf"\1\2{REDACTED}",
    ),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{8,}"), REDACTED),
    (re.compile(r"\bAIza[0-9A-Za-z_-]{20,}"), REDACTED),
)


def secrets_known(*, env_names: Iterable[str] = ()) -> list[str]:
    """The secret values this process may send: the named variables' values and those of every
    variable named like a key, token or secret (longest first, so a key containing another
    is removed whole)."""
    names = set(env_names)
    names.update(name for name in os.environ if _SECRET_ENV.search(name))
    values = {os.environ.get(name, "") for name in names if name}
    return sorted((v for v in values if len(v) >= _MIN_SECRET), key=len, reverse=True)


def secrets_redact(text: str, *, env_names: Iterable[str] = ()) -> str:
    """`text` with every known secret value and every credential-shaped string replaced by
    `[redacted]`."""
    if not text:
        return text
    for secret in secrets_known(env_names=env_names):
        if secret in text:
            text = text.replace(secret, REDACTED)
    for pattern, replacement in _SHAPES:
        text = pattern.sub(replacement, text)
    return text
