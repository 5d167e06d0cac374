"""The official openai SDK through the whole gateway (ingress → guardrails → router as
processes) to Gemini models on the fake Gemini server: plain, streamed with usage,
embeddings, Vertex, and charged like any other model."""
from __future__ import annotations

import base64
import struct
from typing import Any

import openai
import pytest

from services.router.providers.gemini import payloads
from tests.e2e.gateway import Gateway, wait_for
from tests.fakes.gemini_upstream import FakeGemini

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello to Gemini"}]
PROMPT_TOKENS = 6  # the words of both messages, as the fake counts them


@pytest.fixture(scope="module")
def key(gateway: Gateway) -> tuple[str, str]:
    return gateway.create_key("gemini-sdk-tests")


@pytest.fixture(scope="module")
def client(gateway: Gateway, key: tuple[str, str]) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=key[0], max_retries=0)


def test_plain_chat(client: openai.OpenAI, fake_gemini: FakeGemini) -> None:
    completion = client.chat.completions.create(model="gemini-flash", messages=MESSAGES, max_tokens=64)
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.content == payloads.REPLY_TEXT
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (
        PROMPT_TOKENS, payloads.CANDIDATES_TOKENS)
    sent = [r for r in fake_gemini.model_requests() if r.path.endswith("gemini-2.5-flash:generateContent")][-1]
    assert sent.headers["x-goog-api-key"].startswith("sk-upstream-")  # the gateway's credential, not the client's
    assert sent.json["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert sent.json["generationConfig"] == {"maxOutputTokens": 64}


def test_stream_with_include_usage(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(model="gemini-flash", messages=MESSAGES, stream=True,
                                                 stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == payloads.REPLY_TEXT
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == payloads.CANDIDATES_TOKENS
    assert chunks[-1].usage.prompt_tokens == PROMPT_TOKENS


def test_stream_without_usage_request_has_no_usage_chunk(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(model="gemini-flash", messages=MESSAGES, stream=True))
    assert chunks and all(c.choices for c in chunks)


def test_embeddings_float_and_base64(client: openai.OpenAI) -> None:
    result = client.embeddings.create(model="gemini-embedding", input=["one", "two"], dimensions=4)
    assert [d.index for d in result.data] == [0, 1]
    assert result.data[0].embedding == payloads.embedding_vector(0, 4)
    assert result.usage.prompt_tokens > 0
    raw = client.embeddings.with_raw_response.create(model="gemini-embedding", input="one", encoding_format="base64")
    encoded = base64.b64decode(raw.http_response.json()["data"][0]["embedding"])
    dims = payloads.EMBEDDING_DIMENSIONS
    assert list(struct.unpack(f"<{dims}f", encoded)) == pytest.approx(payloads.embedding_vector(0, dims))


def test_vertex_with_a_service_account(client: openai.OpenAI, fake_gemini: FakeGemini) -> None:
    completion = client.chat.completions.create(model="gemini-vertex", messages=MESSAGES)
    assert completion.choices[0].message.content == payloads.REPLY_TEXT
    vertex = [r for r in fake_gemini.model_requests() if r.path.startswith("/v1/projects/fake-project/")]
    assert vertex and vertex[-1].headers["authorization"].startswith("Bearer ya29.fake-")
    assert fake_gemini.token_requests()


def test_gemini_errors_reach_the_sdk_in_openai_shape(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="gemini-flash", messages=[{"role": "tool", "content": "orphan",
                                                                        "tool_call_id": "call_none"}])
    assert err.value.status_code == 400 and err.value.param == "messages[0].tool_call_id"


def test_plain_and_streamed_calls_are_charged_with_gemini_usage(gateway: Gateway) -> None:
    key, key_id = gateway.create_key("gemini-charged")
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0)
    client.chat.completions.create(model="gemini-flash", messages=MESSAGES)
    list(client.chat.completions.create(model="gemini-flash", messages=MESSAGES, stream=True))  # no usage asked

    def row() -> dict[str, Any] | None:
        rows = gateway.usage(key_id=key_id, group_by="model")
        return rows[0] if rows and rows[0]["requests"] == 2 else None

    charged = wait_for(row)
    assert charged["group"] == {"model": "gemini-flash"}
    assert (charged["prompt_tokens"], charged["completion_tokens"]) == (2 * PROMPT_TOKENS, 2 * payloads.CANDIDATES_TOKENS)
