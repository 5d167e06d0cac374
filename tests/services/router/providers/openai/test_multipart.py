"""One field of a multipart upload changed, the rest byte for byte (services/router/providers/openai/multipart.py)."""
from __future__ import annotations

from email.parser import BytesParser
from email.policy import HTTP

import httpx

from services.router.providers.openai.multipart import with_field


def fields(raw: bytes, content_type: str) -> dict[str, bytes]:
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
    return {str(p.get_param("name", header="content-disposition")): p.get_payload(decode=True)
            for p in message.iter_parts()}


def test_the_model_field_is_replaced_and_nothing_else() -> None:
    audio = bytes(range(256)) * 3
    request = httpx.Request("POST", "http://x/", data={"model": "whisper", "language": "en"},
                            files={"file": ("a.mp3", audio, "audio/mpeg")})
    raw, content_type = request.read(), request.headers["content-type"]
    changed = with_field(raw, content_type, "model", "whisper-1")
    assert fields(changed, content_type) == {"model": b"whisper-1", "language": b"en", "file": audio}
    assert with_field(raw, content_type, "model", "whisper") == raw  # already so: the same bytes
    assert with_field(raw, content_type, "absent", "x") == raw
