"""What a request goes to: the URL's origin and the request's head, encoded once."""

from __future__ import annotations

from urllib.parse import urlsplit

__all__ = ["ACCEPT_ENCODING", "Target"]

ACCEPT_ENCODING = "gzip, deflate"


class Target:
    """One URL with its static headers, the request's head encoded once."""

    __slots__ = ("head", "host", "origin", "port", "server_hostname", "tls")

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.tls = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.tls else 80)
        self.server_hostname = self.host
        self.origin = (parts.scheme, self.host, self.port)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        default_port = parts.port is None or parts.port == (443 if self.tls else 80)
        host_header = (f"[{self.host}]" if ":" in self.host else self.host) + (
            "" if default_port else f":{self.port}"
        )
        lines = [f"POST {path} HTTP/1.1", f"Host: {host_header}"]
        names = {name.lower() for name in headers}
        for name, value in headers.items():
            _check_header(name, value)
            lines.append(f"{name}: {value}")
        if "accept-encoding" not in names:
            lines.append(f"Accept-Encoding: {ACCEPT_ENCODING}")
        self.head = ("\r\n".join(lines) + "\r\n").encode("latin-1")


def _check_header(name: str, value: str) -> None:
    if not name or any(c in name for c in "\r\n: \t") or "\r" in value or "\n" in value:
        raise ValueError(f"Newline or carriage return character detected in HTTP header {name!r}")
