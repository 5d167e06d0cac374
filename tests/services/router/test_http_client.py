"""The router's one upstream client, on real sockets: answers, streams, and transport
failures as retryable GatewayErrors."""
from __future__ import annotations

import socket

import orjson
import pytest

from services.router.http_client import UpstreamHttp, UpstreamTimeouts
from shared.errors import GatewayError
from tests.fakes.openai_upstream import FakeOpenAI

FAST = UpstreamTimeouts(total_s=5, connect_s=2)
CHAT = orjson.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
HEADERS = {"content-type": "application/json"}


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_post_returns_status_lowercase_headers_and_body(fake: FakeOpenAI, http: UpstreamHttp) -> None:
    response = await http.post("fake", fake.base_url + "/chat/completions", CHAT, HEADERS, FAST)
    assert response.status == 200 and response.headers["content-type"].startswith("application/json")
    assert orjson.loads(response.content)["object"] == "chat.completion"


async def test_a_stream_arrives_line_by_line(fake: FakeOpenAI, http: UpstreamHttp) -> None:
    body = orjson.dumps({**orjson.loads(CHAT), "stream": True})
    async with http.stream("fake", fake.base_url + "/chat/completions", body, HEADERS, FAST) as stream:
        assert stream.status == 200
        lines = [line async for line in stream.lines()]
    data = [line for line in lines if line.startswith(b"data: ")]
    assert data[-1].strip() == b"data: [DONE]" and all(line.endswith(b"\n") for line in lines)


async def test_refused_connection_is_a_retryable_502_naming_the_provider(http: UpstreamHttp) -> None:
    with pytest.raises(GatewayError) as caught:
        await http.post("down", f"http://127.0.0.1:{closed_port()}/v1/x", b"{}", HEADERS, FAST)
    error = caught.value
    assert (error.status, error.code, error.retryable) == (502, "upstream_unreachable", True)
    assert "down" in error.message and "127.0.0.1" not in error.message


async def test_silence_past_the_timeout_is_a_retryable_504(fake: FakeOpenAI, http: UpstreamHttp) -> None:
    hang = orjson.dumps({"model": "hang", "messages": []})
    short = UpstreamTimeouts(total_s=0.3, connect_s=1)
    with pytest.raises(GatewayError) as plain:
        await http.post("slow", fake.base_url + "/chat/completions", hang, HEADERS, short)
    assert (plain.value.status, plain.value.code, plain.value.retryable) == (504, "upstream_timeout", True)
    with pytest.raises(GatewayError) as streamed:
        async with http.stream("slow", fake.base_url + "/chat/completions", hang, HEADERS, short):
            pass
    assert streamed.value.status == 504
