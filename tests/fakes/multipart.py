"""A multipart/form-data body read as an upstream reads it: with the standard library's MIME
parser (independent of the gateway's own reader, services/ingress/multipart_form.py, so a
fake checks what the gateway sends rather than agreeing with it)."""
from __future__ import annotations

import email.policy
from email.parser import BytesParser


def form_fields(raw: bytes, content_type: str) -> dict[str, bytes] | None:
    """A multipart/form-data body's fields (files too) by name; None when it is not one."""
    if not content_type.startswith("multipart/form-data"):
        return None
    message = BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode("latin-1") + raw)
    if not message.is_multipart():
        return None
    fields: dict[str, bytes] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            fields[name] = payload
    return fields
