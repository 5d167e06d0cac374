"""An AWS event-stream encoder (`application/vnd.amazon.eventstream`), for the fake Bedrock
runtime: botocore only decodes. A message is

    total length (u32 BE) | headers length (u32 BE) | prelude CRC32 (u32 BE)
    | headers | payload | message CRC32 (u32 BE, of every byte before it)

and each header `name length (u8) | name | value type (u8) | value`; ConverseStream's
headers are all strings (type 7: `length (u16 BE) | UTF-8`). CRC32 is zlib's (IEEE).
"""
from __future__ import annotations

import json
import struct
import zlib
from typing import Any

_STRING = 7


def encode_headers(headers: dict[str, str]) -> bytes:
    out = bytearray()
    for name, value in headers.items():
        raw_name, raw_value = name.encode(), value.encode()
        out += struct.pack(">B", len(raw_name)) + raw_name + struct.pack(">BH", _STRING, len(raw_value)) + raw_value
    return bytes(out)


def encode_message(headers: dict[str, str], payload: bytes) -> bytes:
    encoded = encode_headers(headers)
    prelude = struct.pack(">II", 12 + len(encoded) + len(payload) + 4, len(encoded))
    head = prelude + struct.pack(">I", zlib.crc32(prelude)) + encoded + payload
    return head + struct.pack(">I", zlib.crc32(head))


def event(event_type: str, body: dict[str, Any]) -> bytes:
    """One ConverseStream event: `:event-type` names it, its payload is its JSON."""
    return encode_message({":event-type": event_type, ":content-type": "application/json", ":message-type": "event"},
                          json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode())


def exception(exception_type: str, message: str) -> bytes:
    """An exception inside the stream, as ConverseStream sends one (`throttlingException`, ...)."""
    return encode_message({":exception-type": exception_type, ":content-type": "application/json",
                           ":message-type": "exception"}, json.dumps({"message": message}).encode())
