"""The .mrt file: a 16-byte header, then the entropy-coded payload (see docs/bitstream.md)."""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from ..errors import MrtlabError

MAGIC = b"MR"
VERSION = 1
HEADER = struct.Struct(">2sB4sHHB")   # magic, version, fingerprint, height, width, tokens
CRC = struct.Struct(">I")
HEADER_BYTES = HEADER.size + CRC.size  # 16
MAX_SIDE = 65535
MAX_PIXELS = 50_000_000  # the largest image coded or decoded (README: memory and time it takes)


@dataclass(frozen=True)
class Header:
    fingerprint: bytes
    height: int
    width: int
    tokens: int  # latent tokens per window used by the encoder
    version: int = VERSION


def pack(header: Header, payload: bytes) -> bytes:
    head = HEADER.pack(MAGIC, header.version, header.fingerprint, header.height, header.width,
                       header.tokens)
    return head + CRC.pack(zlib.crc32(head + payload)) + payload


def unpack(data: bytes) -> tuple[Header, bytes]:
    """Check magic, version, checksum and bounds; every failure is one clear sentence."""
    if not (data.startswith(MAGIC) or MAGIC.startswith(data)):  # what a file is, before its length
        raise MrtlabError("not an mrtlab file (wrong magic bytes)")
    if len(data) < HEADER_BYTES:
        raise MrtlabError(f"truncated: {len(data)} bytes, an .mrt header alone is {HEADER_BYTES}")
    _, version, fp, height, width, tokens = HEADER.unpack_from(data)
    if version != VERSION:
        raise MrtlabError(f"format version {version} is not supported (this mrtlab reads {VERSION})")
    (crc,) = CRC.unpack_from(data, HEADER.size)
    payload = data[HEADER_BYTES:]
    if zlib.crc32(data[:HEADER.size] + payload) != crc:
        raise MrtlabError("damaged file: checksum mismatch (truncated, corrupted or with extra bytes)")
    if height == 0 or width == 0 or tokens == 0:
        raise MrtlabError(f"damaged file: impossible header ({width}×{height}, {tokens} tokens)")
    if width * height > MAX_PIXELS:  # checked before any work: a forged header cannot make it run
        raise MrtlabError(f"image too large to decode ({width}×{height} = {width * height / 1e6:.0f} MP; "
                          f"the limit is {MAX_PIXELS / 1e6:.0f} MP)")
    return Header(fp, height, width, tokens, version), payload
