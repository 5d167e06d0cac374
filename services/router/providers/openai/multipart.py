"""A `multipart/form-data` body forwarded as the client sent it, but for one field's value
(the deployment's model name in an audio upload's `model`)."""
from __future__ import annotations

import re

from shared.errors import InvalidRequest

_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)


def boundary_of(content_type: str) -> bytes:
    found = _BOUNDARY.search(content_type)
    if not content_type.lower().startswith("multipart/form-data") or found is None:
        raise InvalidRequest("The body must be multipart/form-data with a boundary.", code="invalid_multipart")
    return found.group(1).encode("latin-1")


def _names(head: bytes, name: str) -> bool:
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-disposition:") and re.search(
                rb';\s*name="' + re.escape(name.encode()) + rb'"', line):
            return True
    return False


def with_field(raw: bytes, content_type: str, name: str, value: str) -> bytes:
    """`raw` with the text field `name` holding `value` (unchanged when it already does, or
    when there is no such field)."""
    delimiter = b"--" + boundary_of(content_type)
    parts = raw.split(delimiter)
    for index, part in enumerate(parts[1:-1], start=1):  # before the first delimiter: preamble; after the last: `--`
        head, sep, content = part.partition(b"\r\n\r\n")
        if not sep or not _names(head, name):
            continue
        if content.removesuffix(b"\r\n") == value.encode():
            return raw
        parts[index] = head + sep + value.encode() + b"\r\n"
        return delimiter.join(parts)
    return raw
