"""An independent reader of W&B's `.wandb` files for the tests, written from the format, not from the
platform's own reader (gan_platform/tracking/wandb_files.payloads), so that tests of that reader
and of what a run wrote do not compare the reader with itself.

The format (LevelDB's log layout, as W&B writes it):

    file    = header, then 32 KiB blocks (the header is the first 7 bytes of block 0)
    header  = b":W&B" + magic 0xBEE1 (little-endian) + version 0
    block   = records; a record never crosses a block's end; fewer than 7 bytes left at a block's
              end are zero padding
    record  = checksum (uint32 LE) + length (uint16 LE) + type (1 byte) + `length` bytes of data
    type    = 1 FULL (a whole payload), or a payload split across blocks as 2 FIRST, 3 MIDDLE..., 4 LAST
    checksum= CRC-32 (IEEE, zlib's) of the type byte followed by the data, unmasked: W&B's choice, where
              LevelDB itself stores a masked CRC-32C (every record of W&B's files checks as the former)

`records` verifies every one of these rules and raises `FormatError` naming the offset of the first
break; `allow_cut=True` accepts a file that ends inside its last record (what a kill leaves) and
returns the whole payloads before it.
"""

from __future__ import annotations

import struct
import zlib

BLOCK = 32 * 1024
HEADER_LEN = 7
FILE_HEADER = b":W&B" + struct.pack("<HB", 0xBEE1, 0)
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


class FormatError(ValueError):
    pass


def checksum(kind: int, data: bytes) -> int:
    return zlib.crc32(bytes([kind]) + data) & 0xFFFFFFFF


def _fragments(data: bytes, allow_cut: bool):
    """(offset, type, data) of every record fragment, block by block."""
    if data[:HEADER_LEN] != FILE_HEADER:
        raise FormatError(f"no W&B file header at 0: {data[:HEADER_LEN]!r}")
    for block_start in range(0, len(data), BLOCK):
        block = data[block_start:block_start + BLOCK]
        at = HEADER_LEN if block_start == 0 else 0
        while at < len(block):
            if len(block) - at < HEADER_LEN:
                if block_start + BLOCK <= len(data) and block[at:] != bytes(len(block) - at):
                    raise FormatError(f"non-zero padding at {block_start + at}")
                if block_start + BLOCK > len(data) and not allow_cut and block[at:] != bytes(len(block) - at):
                    raise FormatError(f"a record header cut short at {block_start + at}")
                break
            crc, length, kind = struct.unpack("<IHB", block[at:at + HEADER_LEN])
            if kind == 0 and length == 0 and crc == 0:  # zeros to the block's end
                if block[at:] != bytes(len(block) - at):
                    raise FormatError(f"non-zero padding at {block_start + at}")
                break
            end = at + HEADER_LEN + length
            if end > BLOCK:
                raise FormatError(f"a record crosses its block's end at {block_start + at}")
            if end > len(block):
                if allow_cut and block_start + len(block) == len(data):
                    return
                raise FormatError(f"a record cut short at {block_start + at}")
            payload = block[at + HEADER_LEN:end]
            if kind not in (FULL, FIRST, MIDDLE, LAST):
                raise FormatError(f"record type {kind} at {block_start + at}")
            if checksum(kind, payload) != crc:
                raise FormatError(f"checksum mismatch at {block_start + at}")
            yield block_start + at, kind, payload
            at = end


def records(data: bytes, allow_cut: bool = False) -> list[bytes]:
    """The whole payloads of a `.wandb` file, every rule checked (module docstring)."""
    out, parts = [], None
    for offset, kind, payload in _fragments(data, allow_cut):
        if kind == FULL:
            if parts is not None:
                raise FormatError(f"a FULL record inside a split one at {offset}")
            out.append(payload)
        elif kind == FIRST:
            if parts is not None:
                raise FormatError(f"a FIRST record inside a split one at {offset}")
            parts = [payload]
        else:
            if parts is None:
                raise FormatError(f"a {'MIDDLE' if kind == MIDDLE else 'LAST'} record without its FIRST at {offset}")
            parts.append(payload)
            if kind == LAST:
                out.append(b"".join(parts))
                parts = None
    if parts is not None and not allow_cut:
        raise FormatError("the file ends inside a split record")
    return out


def record_starts(data: bytes) -> list[int]:
    """The offset at which each whole payload's first fragment starts."""
    return [offset for offset, kind, _ in _fragments(data, False) if kind in (FULL, FIRST)]
