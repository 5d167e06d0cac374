"""A browser app calls the gateway: with CORS switched on for its origin, preflights pass
without a key and answers name the origin and expose the headers a client reads; with CORS
off (the default) nothing is allowed. A trailing slash is served, not redirected."""
from __future__ import annotations

import json

import httpx
import pytest

from tests.e2e.gateway import Gateway

ORIGIN = "https://app.example.com"
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi from a browser"}]}
PREFLIGHT = {"origin": ORIGIN, "access-control-request-method": "POST",
             "access-control-request-headers": "authorization, content-type, x-stainless-os"}


@pytest.fixture(scope="module")
def key(gateway: Gateway) -> str:
    return gateway.create_key("browser")[0]


@pytest.fixture(scope="module")
def cors_url(gateway: Gateway) -> str:
    """An ingress replica with CORS on for one origin."""
    return gateway.extra_ingress(JETGATE_INGRESS__CORS_ALLOW_ORIGINS=json.dumps([ORIGIN]))


def test_a_preflight_is_answered_without_a_key(cors_url: str) -> None:
    response = httpx.options(cors_url + "/v1/chat/completions", headers=PREFLIGHT, timeout=10)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert "POST" in response.headers["access-control-allow-methods"]
    allowed = response.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed and "x-stainless-os" in allowed
    assert "access-control-allow-credentials" not in response.headers


def test_another_origin_is_not_allowed(cors_url: str) -> None:
    response = httpx.options(cors_url + "/v1/chat/completions", timeout=10,
                             headers={**PREFLIGHT, "origin": "https://evil.example.net"})
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers


def test_a_cross_origin_answer_names_the_origin_and_exposes_the_request_id(cors_url: str, key: str) -> None:
    response = httpx.post(cors_url + "/v1/chat/completions", json=CHAT, timeout=30,
                          headers={"authorization": f"Bearer {key}", "origin": ORIGIN})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert "x-request-id" in response.headers["access-control-expose-headers"]


def test_cors_is_off_by_default(gateway: Gateway) -> None:
    response = httpx.options(gateway.url + "/v1/chat/completions", headers=PREFLIGHT, timeout=10)
    assert response.status_code == 405
    assert "access-control-allow-origin" not in response.headers


def test_a_trailing_slash_is_served_with_its_body(gateway: Gateway, key: str) -> None:
    response = httpx.post(gateway.url + "/v1/chat/completions/", json=CHAT, timeout=30,
                          headers={"authorization": f"Bearer {key}"}, follow_redirects=False)
    assert response.status_code == 200
    assert response.json()["object"] == "chat.completion"
    models = httpx.get(gateway.url + "/v1/models/", headers={"authorization": f"Bearer {key}"}, timeout=10)
    assert models.status_code == 200 and models.json()["object"] == "list"
