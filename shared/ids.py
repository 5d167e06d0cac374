"""Identifiers: time-ordered UUIDv7 for events and requests."""
from __future__ import annotations

import os
import time

_MS_BITS = (1 << 48) - 1
_LOW_62 = (1 << 62) - 1
_VERSION_AND_VARIANT = (0x7 << 76) | (0b10 << 62)


def uuid7() -> str:
    """48 bits of Unix milliseconds, version 7, 12 + 62 random bits, variant RFC 4122; as
    text, formatted directly (a `uuid.UUID` on the way costs half again: every event, call
    and request id is one of these)."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = ((ms & _MS_BITS) << 80) | _VERSION_AND_VARIANT | (((rand >> 62) & 0xFFF) << 64) | (rand & _LOW_62)
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
