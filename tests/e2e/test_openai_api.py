"""The official openai SDK against the gateway behaves as against OpenAI."""
from __future__ import annotations

import base64
import struct

import httpx
import openai
import pytest

from tests.e2e.gateway import Gateway
from tests.fakes.openai_upstream import FakeOpenAI

MESSAGES = [{"role": "user", "content": "Say hello to the gateway"}]


@pytest.fixture(scope="module")
def key(gateway: Gateway) -> str:
    return gateway.create_key("sdk-tests")[0]


@pytest.fixture(scope="module")
def client(gateway: Gateway, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0)


def test_plain_chat(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    completion = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.total_tokens == (
        completion.usage.prompt_tokens + completion.usage.completion_tokens)
    sent = [r for r in fake_openai.requests if r.json and r.json.get("messages") == MESSAGES][-1]
    assert sent.bearer is not None and sent.bearer.startswith("sk-upstream-")  # the gateway's credential
    assert sent.json["model"] == "gpt-4o-mini"


def test_streamed_chat_ends_with_usage(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True,
                                            stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens > 0


def test_streamed_chat_without_usage_request_gets_no_usage_chunk(client: openai.OpenAI,
                                                                  fake_openai: FakeOpenAI) -> None:
    chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
    assert all(c.choices for c in chunks)  # no usage-only chunk the client did not ask for
    upstream = [r for r in fake_openai.requests if r.json and r.json.get("stream")][-1]
    assert upstream.json["stream_options"]["include_usage"] is True  # but the gateway asked, to charge it


def test_tool_calls_pass_through(client: openai.OpenAI) -> None:
    tools = [{"type": "function", "function": {
        "name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                              "required": ["city"]}}}]
    completion = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, tools=tools)
    call = completion.choices[0].message.tool_calls[0]
    assert completion.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather" and "city" in call.function.arguments


def test_embeddings_float_and_base64(client: openai.OpenAI) -> None:
    result = client.embeddings.create(model="text-embedding-3-small", input=["one", "two"])
    assert [d.index for d in result.data] == [0, 1]
    assert all(isinstance(x, float) for x in result.data[0].embedding)
    raw = client.embeddings.with_raw_response.create(model="text-embedding-3-small", input="one",
                                                     encoding_format="base64")
    encoded = raw.http_response.json()["data"][0]["embedding"]
    assert len(struct.unpack(f"<{len(base64.b64decode(encoded)) // 4}f", base64.b64decode(encoded))) > 0


def test_models(client: openai.OpenAI) -> None:
    ids = {m.id for m in client.models.list()}
    assert {"gpt-4o-mini", "failover", "text-embedding-3-small"} <= ids
    assert client.models.retrieve("gpt-4o-mini").id == "gpt-4o-mini"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")


def test_bad_key_is_401(gateway: Gateway) -> None:
    bad = openai.OpenAI(base_url=gateway.url + "/v1", api_key="jg-not-a-real-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as err:
        bad.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert err.value.status_code == 401
    assert err.value.code == "invalid_api_key"


def test_unknown_model_is_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as err:
        client.chat.completions.create(model="gpt-9-imaginary", messages=MESSAGES)
    assert err.value.code == "model_not_found"


def test_model_outside_the_keys_allowlist_is_403(gateway: Gateway) -> None:
    key, _ = gateway.create_key("limited", models=["gpt-4o"])
    limited = openai.OpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0)
    assert limited.chat.completions.create(model="gpt-4o", messages=MESSAGES).choices
    with pytest.raises(openai.PermissionDeniedError):
        limited.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert {m.id for m in limited.models.list()} == {"gpt-4o"}


def test_guardrail_block_names_the_rule(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="gpt-4o-mini",
                                       messages=[{"role": "user", "content": "this is TOP SECRET material"}])
    assert err.value.status_code == 400
    assert err.value.code == "guardrail_blocked"
    assert "no-top-secret" in err.value.message


def test_pii_is_redacted_before_the_upstream(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    content = "mail jane.doe@example.com, card 4111 1111 1111 1111"
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": content}])
    sent = [r for r in fake_openai.requests if r.json and "card" in str(r.json.get("messages"))][-1]
    text = sent.json["messages"][0]["content"]
    assert "jane.doe@example.com" not in text and "4111 1111 1111 1111" not in text


def test_failover_to_the_second_deployment(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    before = len(fake_openai.requests)
    completion = client.chat.completions.create(model="failover", messages=MESSAGES)
    assert completion.choices[0].message.content
    tried = [r.json["model"] for r in fake_openai.requests[before:] if r.json]
    assert tried == ["fail-500", "gpt-4o-mini"]


def test_streamed_failover(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(model="failover", messages=MESSAGES, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def test_all_deployments_failing_is_502(client: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as err:
        client.chat.completions.create(model="always-500", messages=MESSAGES)
    assert err.value.status_code == 502


def test_upstream_down_is_502(client: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as err:
        client.chat.completions.create(model="unreachable", messages=MESSAGES)
    assert err.value.status_code == 502
    with pytest.raises(openai.InternalServerError):
        list(client.chat.completions.create(model="unreachable", messages=MESSAGES, stream=True))


def test_upstream_400_passes_through(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="bad-request", messages=MESSAGES)
    assert "fake upstream refused" in err.value.message


def test_upstream_429_is_429_with_retry_after(client: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as err:
        client.chat.completions.create(model="rate-limited", messages=MESSAGES)
    assert err.value.response.headers.get("retry-after") == "7"  # the upstream's, passed on


def test_errors_never_leak_the_upstream_key(gateway: Gateway, key: str) -> None:
    from tests.e2e.conftest import UPSTREAM_KEY

    with httpx.Client(base_url=gateway.url, headers={"authorization": f"Bearer {key}"}) as http:
        for model in ("always-500", "unreachable", "bad-request", "rate-limited"):
            response = http.post("/v1/chat/completions", json={"model": model, "messages": MESSAGES})
            assert UPSTREAM_KEY not in response.text


def test_request_id_and_bad_bodies(gateway: Gateway, key: str) -> None:
    with httpx.Client(base_url=gateway.url, headers={"authorization": f"Bearer {key}"}) as http:
        ok = http.post("/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": MESSAGES},
                       headers={"x-request-id": "req-abc-123"})
        assert ok.headers["x-request-id"] == "req-abc-123"
        assert http.get("/v1/models").headers["x-request-id"]
        broken = http.post("/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"})
        assert broken.status_code == 400 and broken.json()["error"]["type"] == "invalid_request_error"
        missing = http.post("/v1/chat/completions", json={"model": "gpt-4o-mini"})
        assert missing.status_code == 400 and missing.json()["error"]["param"] == "messages"
        huge = http.post("/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": [
            {"role": "user", "content": "x" * (33 * 1024 * 1024)}]})  # the default limit is 32 MiB
        assert huge.status_code == 413 and huge.json()["error"]["code"] == "request_too_large"
        assert http.get("/v1/nowhere").status_code == 404
