"""Images: a simulated model cannot see, but it can say what it was sent.

For each image part of the user's message the answer names what it can tell without looking:
a data URI's media type, size and (PNG, JPEG, GIF, WebP) pixel dimensions read from the file's
header bytes, or a URL's host (never fetched). It says plainly that it is simulated and cannot
see the content, then answers the text of the message as usual.
"""

from __future__ import annotations

import base64
import binascii
import struct
from typing import Any
from urllib.parse import urlsplit

Message = dict[str, Any]
NAMES = {"image/png": "PNG", "image/jpeg": "JPEG", "image/gif": "GIF", "image/webp": "WebP"}
# JPEG start-of-frame markers (baseline, progressive, lossless, arithmetic): where the size is.
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_STANDALONE = {0x01, *range(0xD0, 0xDA)}


def image_dimensions(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG, JPEG, GIF or WebP file's header; None when unreadable."""
    try:
        if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
            width, height = struct.unpack(">II", data[16:24])
            return width, height
        if data[:6] in (b"GIF87a", b"GIF89a"):
            width, height = struct.unpack("<HH", data[6:10])
            return width, height
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _webp(data)
        if data[:2] == b"\xff\xd8":
            return _jpeg(data)
    except struct.error:
        return None
    return None


def _webp(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and data[20:21] == b"\x2f":
        b0, b1, b2, b3 = data[21:25]
        return 1 + (b0 | (b1 & 0x3F) << 8), 1 + (b1 >> 6 | b2 << 2 | (b3 & 0x0F) << 10)
    if chunk == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    return None


def _jpeg(data: bytes) -> tuple[int, int] | None:
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in _STANDALONE:
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if marker in _SOF:
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return width, height
        if marker == 0xDA:  # start of scan: no frame header before it
            return None
        pos += 2 + length
    return None


def _size(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MB"
    return f"{max(1, round(size / 1024))} KB"


def image_description(url: str) -> str:
    """'a 640×480 PNG (12 KB)', 'a JPEG (3 KB)', 'an image at example.com'."""
    if not url.startswith("data:"):
        return f"an image at {urlsplit(url).hostname or 'a URL'} (a link I did not open)"
    head, _, encoded = url.partition(",")
    media_type = head[5:].split(";", 1)[0].lower()
    label = NAMES.get(media_type, media_type or "image")
    try:
        data = base64.b64decode(encoded + "=" * (-len(encoded) % 4))
    except (binascii.Error, ValueError):
        return f"a {label} I could not decode"
    dimensions = image_dimensions(data)
    shape = f"{dimensions[0]}×{dimensions[1]} " if dimensions else ""
    return f"a {shape}{label} ({_size(len(data))})"


def image_urls(message: Message) -> list[str]:
    content = message.get("content")
    if not isinstance(content, list):
        return []
    return [
        part["image_url"]["url"]
        for part in content
        if isinstance(part, dict)
        and part.get("type") == "image_url"
        and isinstance(part.get("image_url"), dict)
    ]


def images_note(messages: list[Message]) -> str:
    """What the model says about the images of the last user message ("" when it has none)."""
    last = next((m for m in reversed(messages) if m.get("role") == "user"), None)
    urls = image_urls(last) if last else []
    if not urls:
        return ""
    described = [image_description(url) for url in urls]
    listed = described[0] if len(described) == 1 else f"{', '.join(described[:-1])} and {described[-1]}"
    noun = "it shows" if len(urls) == 1 else "they show"
    return f"You sent {listed}. I am a simulated model: I cannot see what {noun}, only the type and size."
