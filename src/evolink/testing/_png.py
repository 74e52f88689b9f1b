"""Small, real PNG images, deterministic from the prompt, made with zlib and struct only."""

from __future__ import annotations

import functools
import hashlib
import math
import re
import struct
import zlib

_RATIO = re.compile(r"^(\d+(?:\.\d+)?):(\d+(?:\.\d+)?)$")
_PIXELS = re.compile(r"^(\d{2,5})[xX*](\d{2,5})$")
#: The seed's mapping for the three ratios it documents.
_NAMED = {"1:1": (1024, 1024), "2:3": (1024, 1536), "3:2": (1536, 1024)}
MAX_SIDE = 4096


def image_size(size: str | None) -> tuple[int, int]:
    """Pixel width and height for a request's `size` (ratios, `WxH`, or 1024x1024)."""
    if size is None:
        return 1024, 1024
    if size in _NAMED:
        return _NAMED[size]
    pixels = _PIXELS.match(size)
    if pixels:
        width, height = int(pixels[1]), int(pixels[2])
        return max(1, min(width, MAX_SIDE)), max(1, min(height, MAX_SIDE))
    ratio = _RATIO.match(size)
    if ratio and float(ratio[1]) > 0 and float(ratio[2]) > 0:
        # About a megapixel in the asked shape, on a 16-pixel grid.
        aspect = float(ratio[1]) / float(ratio[2])
        width = round(1024 * math.sqrt(aspect) / 16) * 16
        height = round(1024 / math.sqrt(aspect) / 16) * 16
        return max(16, min(width, MAX_SIDE)), max(16, min(height, MAX_SIDE))
    return 1024, 1024  # "auto" and anything else


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


@functools.lru_cache(maxsize=32)
def render_png(prompt: str, width: int, height: int, index: int) -> bytes:
    """An RGB PNG of a colour pattern seeded by the prompt and the image's index."""
    digest = hashlib.sha256(f"{index}\x00{prompt}".encode()).digest()
    base = [digest[0], digest[1], digest[2]]
    step = [1 + digest[3] % 5, 1 + digest[4] % 5, 1 + digest[5] % 5]
    # One row of a horizontal gradient, built in Python once...
    row = bytearray(width * 3)
    for x in range(width):
        for channel in range(3):
            row[x * 3 + channel] = (base[channel] + (x * step[channel]) // 8) & 0xFF
    # Row y is the gradient with every byte shifted by shift(y): diagonal colour bands.
    # With PNG's "Up" filter (type 2) each such row is one repeated byte, the difference
    # of two shifts, so the image is cheap to make and compresses to almost nothing.
    shift_per_row = 1 + digest[6] % 3

    def shift(y: int) -> int:
        return (y * shift_per_row // 4) % 256

    line = width * 3
    rows = [b"\x00" + bytes(row)]
    rows.extend(
        b"\x02" + bytes(((shift(y) - shift(y - 1)) % 256,)) * line for y in range(1, height)
    )
    scanlines = b"".join(rows)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(scanlines, 6))
        + _chunk(b"IEND", b"")
    )
