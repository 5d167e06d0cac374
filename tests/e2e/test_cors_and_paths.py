"""A browser app calls the gateway: preflights pass without a key, answers name the origin
and expose the headers a client reads; a trailing slash is served, not redirected."""
from __future__ import annotations

import httpx
import pytest

from tests.e2e.gateway import Gateway

ORIGIN = "https://app.example.com"
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi from a browser"}]}


@pytest.fixture(scope="module")
def key(gateway: Gateway) -> str:
    return gateway.create_key("browser")[0]


def test_a_preflight_is_answered_without_a_key(gateway: Gateway) -> None:
    response = httpx.options(gateway.url + "/v1/chat/completions", headers={
        "origin": ORIGIN, "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type, x-stainless-os"}, timeout=10)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    assert "POST" in response.headers["access-control-allow-methods"]
    allowed = response.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed and "x-stainless-os" in allowed
    assert "access-control-allow-credentials" not in response.headers


def test_a_cross_origin_answer_names_the_origin_and_exposes_the_request_id(gateway: Gateway, key: str) -> None:
    response = httpx.post(gateway.url + "/v1/chat/completions", json=CHAT, timeout=30,
                          headers={"authorization": f"Bearer {key}", "origin": ORIGIN})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    assert "x-request-id" in response.headers["access-control-expose-headers"]


def test_a_trailing_slash_is_served_with_its_body(gateway: Gateway, key: str) -> None:
    response = httpx.post(gateway.url + "/v1/chat/completions/", json=CHAT, timeout=30,
                          headers={"authorization": f"Bearer {key}"}, follow_redirects=False)
    assert response.status_code == 200
    assert response.json()["object"] == "chat.completion"
    models = httpx.get(gateway.url + "/v1/models/", headers={"authorization": f"Bearer {key}"}, timeout=10)
    assert models.status_code == 200 and models.json()["object"] == "list"
