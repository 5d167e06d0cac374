"""Reading and validating request bodies: the size limit and OpenAI-shaped 400s."""
from __future__ import annotations

from collections.abc import Iterable

import pytest
from starlette.requests import Request

from services.ingress.body import parse_body, read_body
from shared.errors import InvalidRequest, PayloadTooLarge
from shared.openai_types import ChatCompletionRequest, EmbeddingsRequest


def request(chunks: Iterable[bytes], content_length: int | None = None) -> Request:
    pending = [{"type": "http.request", "body": c, "more_body": True} for c in chunks]
    pending.append({"type": "http.request", "body": b"", "more_body": False})

    async def receive() -> dict[str, object]:
        return pending.pop(0)

    headers = [(b"content-length", str(content_length).encode())] if content_length is not None else []
    return Request({"type": "http", "method": "POST", "path": "/", "headers": headers}, receive)  # type: ignore[arg-type]


async def test_body_within_the_limit_is_read_whole() -> None:
    assert await read_body(request([b'{"a":', b"1}"]), limit=100) == b'{"a":1}'


async def test_declared_length_over_the_limit_is_refused_before_reading() -> None:
    with pytest.raises(PayloadTooLarge) as caught:
        await read_body(request([b"x"], content_length=101), limit=100)
    assert caught.value.status == 413 and "100 bytes" in caught.value.message


async def test_streamed_body_over_the_limit_is_refused_without_a_length() -> None:
    with pytest.raises(PayloadTooLarge):
        await read_body(request([b"x" * 60, b"x" * 60]), limit=100)


@pytest.mark.parametrize(("raw", "message"), [
    (b"", "empty"), (b"{not json", "could not parse"), (b"[1, 2]", "JSON object"),
])
def test_bodies_that_are_not_a_json_object(raw: bytes, message: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_body(raw, ChatCompletionRequest)
    assert message in caught.value.message and caught.value.status == 400


def test_missing_field_names_the_parameter() -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_body(b'{"model": "m"}', ChatCompletionRequest)
    assert caught.value.param == "messages" and caught.value.code == "missing_required_parameter"


@pytest.mark.parametrize(("body", "param"), [
    (b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}', "stream"),
    (b'{"model": "m", "messages": [{"role": "wizard", "content": "x"}]}', "messages.0.role"),
    (b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": 3}', "temperature"),
    (b'{"model": "m", "messages": []}', "messages"),
])
def test_invalid_values_name_the_parameter(body: bytes, param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_body(body, ChatCompletionRequest)
    assert caught.value.param == param and caught.value.code == "invalid_value"


def test_unknown_fields_pass_validation_untouched() -> None:
    parsed = parse_body(b'{"model": "m", "input": "x", "user": "u-1", "x_vendor": {"a": 1}}', EmbeddingsRequest)
    assert parsed.model_extra == {"user": "u-1", "x_vendor": {"a": 1}}
