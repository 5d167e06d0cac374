"""The upstream's rate-limit and processing headers reach the client through the gateway,
plain and streamed; where the gateway limits the key itself, its own x-ratelimit-* win."""
from __future__ import annotations

import httpx
import openai

from tests.e2e.gateway import Gateway
from tests.fakes.openai_wire import RATE_LIMIT_HEADERS

MESSAGES = [{"role": "user", "content": "which limits apply to me"}]


def test_a_plain_answer_carries_the_upstreams_rate_limit_headers(gateway: Gateway) -> None:
    key, _ = gateway.create_key("upstream-headers")
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    for name, value in RATE_LIMIT_HEADERS.items():
        assert raw.headers[name] == value
    assert raw.headers["openai-processing-ms"] == "1"
    assert raw.parse().choices[0].message.content


def test_a_stream_carries_them_in_its_head(gateway: Gateway) -> None:
    key, _ = gateway.create_key("upstream-headers-stream")
    body = {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True}
    with httpx.stream("POST", gateway.url + "/v1/chat/completions", json=body, timeout=30,
                      headers={"authorization": f"Bearer {key}"}) as response:
        assert response.status_code == 200
        assert response.headers["x-ratelimit-remaining-tokens"] == RATE_LIMIT_HEADERS["x-ratelimit-remaining-tokens"]
        assert any(line.startswith("data: ") for line in response.iter_lines())


def test_the_gateways_own_limits_replace_the_upstreams(gateway: Gateway) -> None:
    key, _ = gateway.create_key("own-limits", rpm_limit=50)
    response = httpx.post(gateway.url + "/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": MESSAGES},
                          headers={"authorization": f"Bearer {key}"}, timeout=30)
    assert response.status_code == 200
    assert response.headers["x-ratelimit-limit-requests"] == "50"  # the key's limit at the gateway, not OpenAI's
    assert response.headers["openai-processing-ms"] == "1"
