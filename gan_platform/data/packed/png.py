"""Plain PNGs: the form `gan-dataset` writes, and a decoder for it that skips PNG's filters.

PNG stores each row behind a filter byte (none, sub, up, average, Paeth) and deflates the lot.
Pillow chooses filters per row even when it stores without compression (stylegan2-ada's
`compress_level=0`), so reading back costs an unfiltering pass: about 1.5 ms for a 256 x 256 RGB
image, far more than copying its 196 kB. A *plain* PNG (8-bit grey or RGB, not interlaced, filter
0 on every row) decodes to its pixels with one zlib call and a reshape (`decode_plain`), and is an
ordinary PNG to every other reader (Pillow, libpng, stylegan2-ada's loader). Anything else (other
filters, palettes, 16 bits, interlacing, a damaged file) makes `decode_plain` return None and the
caller falls back to Pillow, which also decides whether the file is unreadable.
"""

from __future__ import annotations

import struct
import zlib
from typing import Optional

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
COLOUR_TYPES = {1: 0, 3: 2}  # channels -> PNG colour type (0 grey, 2 RGB)


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def encode_plain(pixels: np.ndarray, level: int = 0) -> bytes:
    """uint8 (H, W) grey or (H, W, 3) RGB -> a plain PNG, deflated at zlib `level` (0: stored)."""
    if pixels.dtype != np.uint8 or pixels.ndim not in (2, 3) or (pixels.ndim == 3 and pixels.shape[2] not in (1, 3)):
        raise ValueError(f"a plain PNG holds uint8 (H, W) or (H, W, 3) pixels, not {pixels.dtype} {pixels.shape}")
    h, w = pixels.shape[:2]
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    rows = np.zeros((h, 1 + w * channels), dtype=np.uint8)  # column 0: filter type 0 (none) on every row
    rows[:, 1:] = pixels.reshape(h, w * channels)
    header = struct.pack(">IIBBBBB", w, h, 8, COLOUR_TYPES[channels], 0, 0, 0)
    return SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(rows.tobytes(), level)) + _chunk(b"IEND", b"")


def _plain_header(data: bytes) -> Optional[tuple[int, int, int]]:
    """(width, height, channels) when `data` starts as a plain PNG, else None."""
    if len(data) < 33 or data[:8] != SIGNATURE or data[12:16] != b"IHDR":
        return None
    w, h, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", data[16:29])
    if depth != 8 or interlace != 0 or colour not in (0, 2):
        return None
    return w, h, 1 if colour == 0 else 3


def decode_plain(data: bytes) -> Optional[np.ndarray]:
    """A plain PNG's pixels as uint8 (H, W) or (H, W, 3), read-only; None for any other bytes."""
    header = _plain_header(data)
    if header is None:
        return None
    w, h, channels = header
    pos, parts = 8, []
    while pos + 8 <= len(data):
        length, tag = struct.unpack(">I4s", data[pos:pos + 8])
        if tag == b"IDAT":
            parts.append(data[pos + 8:pos + 8 + length])
        elif tag == b"IEND":
            break
        pos += 12 + length
    else:
        return None  # no IEND: cut short
    try:
        raw = zlib.decompress(b"".join(parts))
    except zlib.error:
        return None
    if len(raw) != h * (1 + w * channels):
        return None
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(h, 1 + w * channels)
    if rows[:, 0].any():
        return None  # filtered rows: Pillow unfilters them
    pixels = rows[:, 1:]
    return pixels if channels == 1 else pixels.reshape(h, w, 3)
