"""Pass-through (`/p/{provider}/...`) through the whole gateway to the fake upstreams: each
provider's own SDK pointed at the gateway with the gateway's key; the upstream sees the
provider's key, never the gateway's; path tricks refused before anything leaves; a
redirect never followed; usage recorded at the mapped model's price."""
from __future__ import annotations

import http.client
from decimal import Decimal
from typing import Any

import anthropic
import httpx
import openai
import pytest

from services.router.providers.anthropic import payloads as anthropic_payloads
from services.router.providers.gemini import payloads as gemini_payloads
from services.router.providers.openai import payloads as openai_payloads
from tests.e2e.conftest import PRICE_IN, PRICE_OUT, UPSTREAM_KEY, charged, pg_rows
from tests.e2e.gateway import Gateway, wait_for
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.gemini_upstream import FakeGemini
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.redirect_upstream import FakeRedirector

QUESTION = "Where does the pass-through go?"


def _cost(prompt: int, completion: int) -> Decimal:
    return (PRICE_IN * prompt + PRICE_OUT * completion) / 1_000_000


def _never_saw(requests: list[Any], key: str) -> None:
    for request in requests:
        assert all(key not in value for value in request.headers.values())


def _ledger(gateway: Gateway, key_id: str) -> list[Any]:
    return pg_rows(gateway, "SELECT model, provider, prompt_tokens, completion_tokens, cost, status FROM spend_ledger "
                            "WHERE key_id = $1 ORDER BY time", key_id)


def test_the_anthropic_sdk_plain_and_streamed(gateway: Gateway, fake_anthropic: FakeAnthropic) -> None:
    key, key_id = gateway.create_key("passthrough-anthropic")
    client = anthropic.Anthropic(base_url=gateway.url + "/p/claude", api_key=key, max_retries=0)
    before = len(fake_anthropic.requests)
    message = client.messages.create(model="claude-sonnet-4-5", max_tokens=256,
                                     messages=[{"role": "user", "content": QUESTION}],
                                     extra_headers={"anthropic-beta": "passthrough-test", "x-dropped": "yes"})
    assert message.type == "message" and message.id.startswith("msg_01")
    assert "".join(b.text for b in message.content if b.type == "text") == anthropic_payloads.REPLY_TEXT
    assert message.usage.output_tokens == anthropic_payloads.COMPLETION_TOKENS
    with client.messages.stream(model="claude-sonnet-4-5", max_tokens=256,
                                messages=[{"role": "user", "content": QUESTION}]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == anthropic_payloads.REPLY_TEXT and final.usage.output_tokens == anthropic_payloads.COMPLETION_TOKENS
    seen = fake_anthropic.requests[before:]
    assert [r.path for r in seen] == ["/v1/messages", "/v1/messages"]
    assert all(r.api_key == UPSTREAM_KEY for r in seen)  # the provider's key went, injected by the router
    assert seen[0].headers["anthropic-version"] == client.default_headers["anthropic-version"]  # the SDK's own
    assert seen[0].headers["anthropic-beta"] == "passthrough-test" and "x-dropped" not in seen[0].headers
    _never_saw(seen, key)
    assert seen[0].json.get("stream") in (None, False) and seen[1].json["stream"] is True  # the bodies as sent
    rows = charged(gateway, key_id, 2)
    assert {row["status"] for row in rows} == {"ok"}
    ledger = _ledger(gateway, key_id)
    assert [(r["model"], r["provider"]) for r in ledger] == [("claude-sonnet", "claude")] * 2  # mapped to the gateway model
    for row in ledger:  # the upstream's own counts, at claude-sonnet's price
        assert row["completion_tokens"] == anthropic_payloads.COMPLETION_TOKENS and row["prompt_tokens"] > 0
        assert row["cost"] == _cost(row["prompt_tokens"], row["completion_tokens"])
    assert ledger[0]["prompt_tokens"] == message.usage.input_tokens


def test_the_openai_sdk_plain_streamed_and_get(gateway: Gateway, fake_openai: FakeOpenAI) -> None:
    key, key_id = gateway.create_key("passthrough-openai")
    client = openai.OpenAI(base_url=gateway.url + "/p/fake/v1", api_key=key, max_retries=0)
    before = len(fake_openai.requests)
    completion = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": QUESTION}])
    assert completion.choices[0].message.content == openai_payloads.REPLY_TEXT
    assert completion.usage is not None
    chunks = list(client.chat.completions.create(model="gpt-4o-mini", stream=True,
                                                 stream_options={"include_usage": True},
                                                 messages=[{"role": "user", "content": QUESTION}]))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == openai_payloads.REPLY_TEXT
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == openai_payloads.COMPLETION_TOKENS
    models = client.models.list()  # a GET, naming no model: allowed for a key without model limits
    assert "gpt-4o-mini" in [m.id for m in models.data]
    seen = fake_openai.requests[before:]
    assert [(r.method, r.path) for r in seen] == [("POST", "/v1/chat/completions")] * 2 + [("GET", "/v1/models")]
    assert all(r.bearer == UPSTREAM_KEY for r in seen)
    _never_saw(seen, key)
    assert "stream_options" not in seen[0].json and seen[1].json["stream_options"] == {"include_usage": True}
    charged(gateway, key_id, 3)
    ledger = _ledger(gateway, key_id)
    assert [r["model"] for r in ledger] == ["gpt-4o-mini", "gpt-4o-mini", "p/fake"]  # a call naming no model: p/{provider}
    assert (ledger[0]["prompt_tokens"], ledger[0]["completion_tokens"]) == (
        completion.usage.prompt_tokens, completion.usage.completion_tokens)
    assert ledger[1]["completion_tokens"] == openai_payloads.COMPLETION_TOKENS
    assert ledger[0]["cost"] == _cost(completion.usage.prompt_tokens, completion.usage.completion_tokens) > 0
    assert (ledger[2]["prompt_tokens"], ledger[2]["completion_tokens"], ledger[2]["cost"]) == (0, 0, 0)  # no usage


def test_gemini_with_its_own_key_header(gateway: Gateway, fake_gemini: FakeGemini) -> None:
    key, key_id = gateway.create_key("passthrough-gemini")
    body = {"contents": [{"role": "user", "parts": [{"text": QUESTION}]}]}
    with httpx.Client(base_url=gateway.url, timeout=30) as client:
        answer = client.post("/p/gemini/v1beta/models/gemini-2.5-flash:generateContent", json=body,
                             headers={"x-goog-api-key": key}, params={"key": key})
        assert answer.status_code == 200, answer.text
        recorded = fake_gemini.requests[-1]
        with client.stream("POST", "/p/gemini/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", json=body,
                           headers={"x-goog-api-key": key}) as streamed:
            events = [line for line in streamed.iter_lines() if line.startswith("data: ")]
    usage = answer.json()["usageMetadata"]
    assert recorded.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert recorded.headers["x-goog-api-key"] == UPSTREAM_KEY and key not in recorded.query  # `?key=` dropped
    assert fake_gemini.requests[-1].query == "alt=sse" and len(events) > 1  # Gemini's own SSE events
    _never_saw(fake_gemini.requests[-2:], key)
    charged(gateway, key_id, 2)
    rows = _ledger(gateway, key_id)
    assert [row["model"] for row in rows] == ["gemini-flash"] * 2  # the path's model, mapped
    assert (rows[0]["prompt_tokens"], rows[0]["completion_tokens"]) == (usage["promptTokenCount"],
                                                                       usage["candidatesTokenCount"])
    assert usage["candidatesTokenCount"] == gemini_payloads.CANDIDATES_TOKENS
    assert rows[1]["completion_tokens"] == gemini_payloads.CANDIDATES_TOKENS  # the stream's last usageMetadata


TRICKS = [
    "/p/fake/v1/../../admin/keys",
    "/p/fake/v1/./models",
    "/p/fake//127.0.0.1:9/v1/models",
    "/p/fake/http://127.0.0.1:9/v1/models",
    "/p/fake/v1/%2e%2e/%2e%2e/admin",
    "/p/fake/v1%2fmodels",
    "/p/fake/v1/models%252f..",
    "/p/fake/v1/models%00",
    "/p/fake/v1/models%5c..",
    "/p/fake/v1\\models",
]


@pytest.mark.parametrize("path", TRICKS)
def test_path_tricks_are_refused(gateway: Gateway, fake_openai: FakeOpenAI, path: str) -> None:
    key, _ = gateway.create_key("passthrough-tricks")
    before = len(fake_openai.requests)
    connection = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=30)
    try:  # http.client sends the path exactly as written (httpx would normalise the dots away)
        connection.request("GET", path, headers={"authorization": f"Bearer {key}"})
        response = connection.getresponse()
        status, body = response.status, response.read()
    finally:
        connection.close()
    assert status == 400, (path, status, body)
    assert len(fake_openai.requests) == before  # nothing left the gateway


def test_a_redirect_is_not_followed(gateway: Gateway, redirector: FakeRedirector, redirect_target: FakeOpenAI) -> None:
    key, key_id = gateway.create_key("passthrough-redirect")
    with httpx.Client(base_url=gateway.url, timeout=30, follow_redirects=True) as client:
        answer = client.post("/p/redirector/v1/chat/completions", headers={"authorization": f"Bearer {key}"},
                             json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": QUESTION}]})
    assert answer.status_code == 302 and "location" not in answer.headers  # the client cannot follow it either
    assert redirector.paths[-1] == "/v1/chat/completions"
    assert redirect_target.requests == []  # the other host was never called
    charged(gateway, key_id, 1)
    row = _ledger(gateway, key_id)[0]
    assert (row["provider"], row["prompt_tokens"], row["cost"]) == ("redirector", 0, 0)  # the 302 reported no usage


def test_unknown_provider_and_provider_without_passthrough(gateway: Gateway) -> None:
    key, _ = gateway.create_key("passthrough-refusals")
    with httpx.Client(base_url=gateway.url, timeout=30, headers={"authorization": f"Bearer {key}"}) as client:
        unknown = client.post("/p/nowhere/v1/chat/completions", json={"model": "x"})
        mock = client.post("/p/local-mock/v1/chat/completions", json={"model": "x"})
        no_key = httpx.post(gateway.url + "/p/fake/v1/models", timeout=30)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "provider_not_found"
    assert mock.status_code == 400 and mock.json()["error"]["code"] == "passthrough_unsupported"
    assert no_key.status_code == 401


def test_a_key_limited_to_models(gateway: Gateway, fake_anthropic: FakeAnthropic) -> None:
    key, _ = gateway.create_key("passthrough-limited", models=["claude-sonnet"])
    client = anthropic.Anthropic(base_url=gateway.url + "/p/claude", api_key=key, max_retries=0)
    message = client.messages.create(model="claude-sonnet-4-5", max_tokens=64, messages=[{"role": "user", "content": "hi"}])
    assert message.type == "message"
    before = len(fake_anthropic.requests)
    with pytest.raises(anthropic.PermissionDeniedError):  # not a deployment of an allowed model
        client.messages.create(model="cache-hit", max_tokens=64, messages=[{"role": "user", "content": "hi"}])
    with httpx.Client(base_url=gateway.url, timeout=30, headers={"x-api-key": key}) as http:
        nameless = http.get("/p/claude/v1/models")  # names no model: a limited key may not
        other = http.post("/p/fake/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": []})
    assert nameless.status_code == 403 and other.status_code == 403
    assert len(fake_anthropic.requests) == before


def test_upstream_errors_come_back_as_they_are(gateway: Gateway, fake_openai: FakeOpenAI) -> None:
    key, key_id = gateway.create_key("passthrough-upstream-error")
    client = openai.OpenAI(base_url=gateway.url + "/p/fake/v1", api_key=key, max_retries=0)
    with pytest.raises(openai.RateLimitError) as limited:
        client.chat.completions.create(model="fail-429", messages=[{"role": "user", "content": QUESTION}])
    assert limited.value.response.headers["retry-after"] == "7"  # the fake's own, forwarded
    assert limited.value.code == "rate_limit_exceeded"  # the provider's body as is
    charged(gateway, key_id, 1)
    assert _ledger(gateway, key_id)[0]["status"] == "error"


def test_a_client_leaving_mid_stream_stops_the_upstream(gateway: Gateway, fake_openai: FakeOpenAI) -> None:
    key, key_id = gateway.create_key("passthrough-leaves")
    aborted = fake_openai.streams_aborted
    body = {"model": "slow-stream", "stream": True, "messages": [{"role": "user", "content": QUESTION}]}
    with httpx.Client(base_url=gateway.url, timeout=30) as client, client.stream(
            "POST", "/p/fake/v1/chat/completions", json=body, headers={"authorization": f"Bearer {key}"}) as answer:
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/event-stream")
        lines = answer.iter_lines()
        first = next(line for line in lines if line.startswith("data: "))
        assert '"chat.completion.chunk"' in first  # the upstream's own events, untouched
    rows = charged(gateway, key_id, 1)
    assert rows[0]["status"] == "cancelled"
    wait_for(lambda: fake_openai.streams_aborted > aborted, timeout=10)  # the router dropped the upstream stream
