"""Header limits in the ingress's HTTP protocol: a real uvicorn server with the bounded
httptools protocol, requests over a real socket."""
from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from services.ingress.http_limits import bounded_protocol

MAX_COUNT, MAX_BYTES = 20, 2048


async def count_headers(request: Request) -> PlainTextResponse:
    return PlainTextResponse(str(len(request.headers)))


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(Starlette(routes=[Route("/", count_headers)]), http=bounded_protocol(MAX_COUNT, MAX_BYTES),
                            lifespan="off", log_config=None, access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}/"
    server.should_exit = True
    thread.join(timeout=10)


def assert_431(response: httpx.Response, words: str) -> None:
    assert response.status_code == 431
    error = orjson.loads(response.content)["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == "request_headers_too_large"
    assert words in error["message"]
    assert response.headers["connection"] == "close" and response.headers["x-request-id"]


def test_headers_within_the_limits_reach_the_app(url: str) -> None:
    headers = {f"x-h{i}": "v" * 50 for i in range(MAX_COUNT - 6)}  # httpx adds host, accept, ...
    response = httpx.get(url, headers=headers)
    assert response.status_code == 200 and int(response.text) <= MAX_COUNT


def test_too_many_header_fields_are_431(url: str) -> None:
    assert_431(httpx.get(url, headers={f"x-h{i}": "v" for i in range(MAX_COUNT + 1)}), f"more than {MAX_COUNT}")


@pytest.mark.parametrize("where", ["header", "url"])
def test_too_many_header_bytes_are_431(url: str, where: str) -> None:
    if where == "header":
        response = httpx.get(url, headers={"x-big": "v" * MAX_BYTES})
    else:
        response = httpx.get(url + "?q=" + "a" * MAX_BYTES)
    assert_431(response, f"{MAX_BYTES} bytes")


def test_the_next_connection_is_served_again(url: str) -> None:
    with httpx.Client() as client:
        assert client.get(url).status_code == 200
        assert client.get(url, headers={"x-big": "v" * MAX_BYTES}).status_code == 431
        assert client.get(url).status_code == 200  # a new connection: the refused one was closed


def test_malformed_requests_keep_uvicorns_400(url: str) -> None:
    host, port = url.removeprefix("http://").rstrip("/").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        assert conn.recv(1024).startswith(b"HTTP/1.1 400")
