"""uvicorn's httptools protocol, with each turn of the event loop's writes sent in one call.

uvicorn writes a response's head (`http.response.start`) and each body message with a
`transport.write` of its own, so a plain JSON answer costs two socket writes and a stream one
more than it has batches. On a connection, a write is a system call that also runs the TCP
stack's send path (on loopback, the receiver's too): at concurrency 32 the head's write alone
was ~11 % of a streaming gateway worker's CPU. Here the connection's transport is wrapped so
that what the protocol writes during one turn of the event loop is joined and written at the
end of that turn (`loop.call_soon`): the head and the body of a plain answer go out in one
write, a stream's head with its first batch. Nothing waits longer than the current turn, and
closing the connection writes what is held first.

Served by `--http orchestrator_site.server:HttpProtocol` (scripts/serve, the benchmark);
everything else is uvicorn's own protocol.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["HttpProtocol", "TurnWrites"]


class TurnWrites:
    """A transport whose writes during one turn of the event loop reach the real transport
    as one write at the end of that turn; everything else is the real transport's."""

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not self._held:
            self._loop.call_soon(self.flush)
        self._held.append(bytes(data))

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        """Write what is held now (called at the end of the turn, and before a close)."""
        held = self._held
        if not held:
            return
        self._held = []
        if not self._transport.is_closing():
            self._transport.write(held[0] if len(held) == 1 else b"".join(held))

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._held = []
        self._transport.abort()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(len(part) for part in self._held)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.flush()  # a protocol taking over (a WebSocket upgrade) writes straight through
        self._transport.set_protocol(protocol)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class HttpProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(TurnWrites(transport, self.loop))  # type: ignore[arg-type]
