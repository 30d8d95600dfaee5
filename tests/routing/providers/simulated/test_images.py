"""Images sent to a simulated model: it says what it can tell without seeing them (type, size,
pixel dimensions from the header, a URL's host), that it is simulated, and answers the text."""

from __future__ import annotations

import base64
import struct
from typing import Any

import pytest

from routing.messages import messages_parse
from routing.providers.base import ProviderSpec, SamplingOptions
from routing.providers.simulated import reset_random
from routing.providers.simulated.images import image_dimensions
from tests.routing.providers.conftest import complete, request, stream


def png(width: int, height: int, size: int = 0) -> bytes:
    header = (
        b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + struct.pack(">II", width, height) + b"\x08\x02\0\0\0"
    )
    return header + b"\0" * max(0, size - len(header))


def jpeg(width: int, height: int) -> bytes:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0"
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, height, width, 3) + b"\x01\x22\0\x02\x11\x01\x03\x11\x01"
    return b"\xff\xd8" + app0 + b"\xff\xfe" + struct.pack(">H", 6) + b"hi\xff\xff" + sof + b"\xff\xda"


def gif(width: int, height: int) -> bytes:
    return b"GIF89a" + struct.pack("<HH", width, height) + b"\0" * 20


def webp_lossy(width: int, height: int) -> bytes:
    frame = b"\0\0\0" + b"\x9d\x01\x2a" + struct.pack("<HH", width, height)
    return b"RIFF" + struct.pack("<I", 30) + b"WEBP" + b"VP8 " + struct.pack("<I", len(frame)) + frame


def webp_lossless(width: int, height: int) -> bytes:
    bits = (width - 1) | (height - 1) << 14
    data = b"\x2f" + struct.pack("<I", bits)
    return b"RIFF" + struct.pack("<I", 30) + b"WEBP" + b"VP8L" + struct.pack("<I", len(data)) + data


def webp_extended(width: int, height: int) -> bytes:
    data = b"\x10\0\0\0" + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    return b"RIFF" + struct.pack("<I", 30) + b"WEBP" + b"VP8X" + struct.pack("<I", len(data)) + data


def data_uri(media_type: str, data: bytes) -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode()}"


def sim() -> ProviderSpec:
    reset_random("sim")
    return ProviderSpec(name="sim", kind="simulated", options={"latency_ms_mean": 0, "latency_ms_jitter": 0})


def ask(text: str, *urls: str, **fields) -> str:
    parts: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    parts += [{"type": "image_url", "image_url": {"url": url}} for url in urls]
    messages = messages_parse([{"role": "user", "content": parts}])
    return complete(sim(), request("sim-a", messages=messages, **fields)).text


@pytest.mark.parametrize(
    "data",
    [
        png(640, 480),
        jpeg(1024, 768),
        gif(32, 16),
        webp_lossy(300, 200),
        webp_lossless(4000, 3000),
        webp_extended(12, 9000),
    ],
    ids=["png", "jpeg", "gif", "webp-lossy", "webp-lossless", "webp-extended"],
)
def test_the_pixel_size_is_read_from_each_formats_header(data):
    expected = {
        b"\x89P": (640, 480),
        b"\xff\xd8": (1024, 768),
        b"GI": (32, 16),
    }.get(data[:2]) or {b"VP8 ": (300, 200), b"VP8L": (4000, 3000), b"VP8X": (12, 9000)}[data[12:16]]

    assert image_dimensions(data) == expected


def test_an_unreadable_header_gives_no_size():
    assert image_dimensions(b"\xff\xd8\xff\xda") is None
    assert image_dimensions(b"not an image at all") is None
    assert image_dimensions(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0") is None


def test_the_answer_describes_a_png_and_answers_the_question():
    text = ask("What is 17 * 23?", data_uri("image/png", png(640, 480, size=12 * 1024)))

    assert text == (
        "You sent a 640×480 PNG (12 KB). I am a simulated model: I cannot see what it shows, "
        "only the type and size.\n\n17 * 23 = 391"
    )


def test_several_images_and_a_url_are_each_described():
    text = ask(
        "Compare these.",
        data_uri("image/jpeg", jpeg(1024, 768)),
        data_uri("image/webp", webp_lossy(300, 200)),
        "https://images.example.com/cat.png",
    )

    assert text.startswith(
        "You sent a 1024×768 JPEG (1 KB), a 300×200 WebP (1 KB) and an image at images.example.com "
        "(a link I did not open). I am a simulated model: I cannot see what they show"
    )


def test_an_image_without_a_question_gets_the_description_only():
    text = ask("", data_uri("image/gif", gif(32, 16)))

    assert text == (
        "You sent a 32×16 GIF (1 KB). I am a simulated model: I cannot see what it shows, only the type and size."
    )


def test_an_image_whose_header_cannot_be_read_is_described_by_type_and_size():
    assert ask("What is this?", data_uri("image/png", b"garbage" * 300)).startswith("You sent a PNG (2 KB).")


def test_a_json_answer_stays_bare_json_with_an_image():
    text = ask(
        "Reply in JSON.",
        data_uri("image/png", png(1, 1)),
        sampling=SamplingOptions(response_format={"type": "json_object"}),
    )

    assert text.startswith("{")


def test_a_streamed_answer_describes_the_image_too():
    messages = messages_parse(
        [
            {
                "role": "user",
                "content": [{"type": "image_url", "image_url": {"url": data_uri("image/png", png(2, 3))}}],
            }
        ]
    )

    *words, _ = stream(sim(), request("sim-a", messages=messages))

    assert "".join(words).startswith("You sent a 2×3 PNG (1 KB).")
