"""Reading multipart uploads at the ingress (services/ingress/multipart_form.py), on bodies
made by httpx as the openai SDK makes them."""
from __future__ import annotations

import httpx
import pytest

from services.ingress.multipart_form import MAX_PARTS, read_form
from shared.errors import InvalidRequest


def encoded(data: dict[str, str | list[str]], files: dict[str, tuple[str, bytes]]) -> tuple[bytes, str]:
    request = httpx.Request("POST", "http://x/", data=data, files=files)
    return request.read(), request.headers["content-type"]


def test_fields_and_files() -> None:
    audio = b"\r\n--not-the-boundary\r\n" + bytes(range(256))
    raw, content_type = encoded({"model": "whisper", "timestamp_granularities[]": ["word", "segment"]},
                                {"file": ("speech.mp3", audio)})
    form = read_form(raw, content_type)
    assert form.files == {"file": ("speech.mp3", len(audio))}
    assert form.first() == {"model": "whisper", "timestamp_granularities[]": ["word", "segment"]}


@pytest.mark.parametrize("content_type", ["application/json", "multipart/form-data", "text/plain; boundary=x"])
def test_not_a_form(content_type: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        read_form(b"{}", content_type)
    assert refused.value.code == "invalid_content_type"


def test_broken_forms() -> None:
    raw, content_type = encoded({"model": "m"}, {"file": ("a.wav", b"123")})
    for broken in (raw[: len(raw) // 2], raw.replace(b"Content-Disposition", b"X-Other"), b"garbage"):
        with pytest.raises(InvalidRequest) as refused:
            read_form(broken, content_type)
        assert refused.value.code == "invalid_multipart"
    many, many_type = encoded({f"f{i}": "v" for i in range(MAX_PARTS + 1)}, {})
    with pytest.raises(InvalidRequest):
        read_form(many, many_type)
