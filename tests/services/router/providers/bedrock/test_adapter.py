"""The `bedrock` adapter on the wire, against a real fake Bedrock runtime that verifies every
SigV4 signature (recomputed with botocore from the known test credentials) and checks
Converse bodies as the service does: what goes out, what it makes of the answers, and how
each failure becomes a GatewayError (providers/bedrock/errors.py). Streams: test_stream.py."""
from __future__ import annotations

import base64
import json
import socket
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from services.router.http_client import UpstreamHttp
from services.router.providers.base import ChatCall, EmbeddingsCall
from services.router.providers.bedrock import BedrockConfig, BedrockProvider, payloads
from shared.errors import GatewayError
from tests.fakes.bedrock_checks import AwsCredentials
from tests.fakes.bedrock_upstream import CREDENTIALS, REGION, FakeBedrock

CLAUDE = "anthropic.claude-3-5-sonnet-20240620-v1:0"
LLAMA = "meta.llama3-1-70b-instruct-v1:0"
PROFILE_ARN = "arn:aws:bedrock:us-west-2:123456789012:inference-profile/us.anthropic.claude-3-5-haiku-20241022-v1:0"
TITAN = "amazon.titan-embed-text-v2:0"
API_KEY = "ABSKQmVkcm9ja0FQSUtleS1leGFtcGxlLWtleS1mb3ItdGVzdHM="
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there, upstream."}]
PROMPT_WORDS = 2 + 3
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
PIXEL = base64.b64encode(b"\x89PNG\r\n\x1a\n not really a png").decode()


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeBedrock]:
    with FakeBedrock(api_key=API_KEY) as server:
        yield server


def _config(fake: FakeBedrock, **fields: Any) -> BedrockConfig:
    """The test credentials by reference unless `fields` name others."""
    base: dict[str, Any] = {"name": "bedrock-west", "region": REGION, "endpoint_url": fake.endpoint, "timeout_s": 10}
    if not {"api_key", "access_key_id"} & set(fields):
        base |= {"access_key_id": "env:JG_TEST_AWS_KEY_ID", "secret_access_key": "env:JG_TEST_AWS_SECRET"}
    return BedrockConfig.model_validate({**base, **fields})


@pytest.fixture
def provider(fake: FakeBedrock, http: UpstreamHttp, monkeypatch: pytest.MonkeyPatch) -> BedrockProvider:
    monkeypatch.setenv("JG_TEST_AWS_KEY_ID", CREDENTIALS.access_key_id)
    monkeypatch.setenv("JG_TEST_AWS_SECRET", CREDENTIALS.secret_access_key)
    fake.clear()
    return BedrockProvider(_config(fake), http)


async def _chat(provider: BedrockProvider, model: str = CLAUDE, **body: Any) -> dict[str, Any]:
    done = await provider.chat(ChatCall({"model": "gateway-name", "messages": MESSAGES, **body}, model))
    return orjson.loads(done.raw)  # type: ignore[no-any-return]


async def _error(call: Any) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        await call
    return caught.value


# -- what goes out ---------------------------------------------------------------------------
async def test_sends_a_signed_converse_request_with_system_blocks(provider: BedrockProvider, fake: FakeBedrock) -> None:
    await _chat(provider)
    (sent,) = fake.requests  # answered 200: the fake recomputed the signature and it matched
    assert sent.method == "POST" and sent.model == CLAUDE and sent.path == f"/model/{CLAUDE}/converse"
    auth = sent.headers["authorization"]
    assert auth.startswith(f"AWS4-HMAC-SHA256 Credential={CREDENTIALS.access_key_id}/")
    assert f"/{REGION}/bedrock/aws4_request" in auth and "SignedHeaders=" in auth and "x-amz-date" in auth
    assert "x-amz-security-token" not in sent.headers
    assert CREDENTIALS.secret_access_key not in json.dumps(sent.headers)
    assert sent.json == {"system": [{"text": "Be brief."}],
                         "messages": [{"role": "user", "content": [{"text": "Hello there, upstream."}]}]}


async def test_inference_config_is_translated(provider: BedrockProvider, fake: FakeBedrock) -> None:
    await _chat(provider, max_tokens=50, max_completion_tokens=60, temperature=0.2, top_p=0.9, stop="\n\n",
                presence_penalty=0.5, seed=7, user="u-1")
    sent = fake.requests[-1].json
    assert sent["inferenceConfig"] == {"maxTokens": 60, "temperature": 0.2, "topP": 0.9, "stopSequences": ["\n\n"]}
    assert set(sent) == {"system", "messages", "inferenceConfig"}  # penalties, seed, user: no counterpart


async def test_temporary_credentials_send_their_session_token(http: UpstreamHttp, monkeypatch: pytest.MonkeyPatch) -> None:
    sts = AwsCredentials("ASIAEXAMPLEJETGATE02", "tEmPoRaRy/SeCrEt+KeY0123456789abcdefghij", "FwoGZXIvYXdzEJr//token")
    for name, value in (("JG_STS_ID", sts.access_key_id), ("JG_STS_SECRET", sts.secret_access_key),
                        ("JG_STS_TOKEN", sts.session_token or "")):
        monkeypatch.setenv(name, value)
    with FakeBedrock(credentials=sts) as fake:
        config = _config(fake, access_key_id="env:JG_STS_ID", secret_access_key="env:JG_STS_SECRET",
                         session_token="env:JG_STS_TOKEN")
        body = orjson.loads((await BedrockProvider(config, http).chat(ChatCall({"messages": MESSAGES}, CLAUDE))).raw)
        assert body["choices"][0]["message"]["content"] == payloads.REPLY_TEXT
        assert fake.requests[-1].headers["x-amz-security-token"] == sts.session_token
        no_token = _config(fake, access_key_id="env:JG_STS_ID", secret_access_key="env:JG_STS_SECRET")
        error = await _error(BedrockProvider(no_token, http).chat(ChatCall({"messages": MESSAGES}, CLAUDE)))
        assert (error.status, error.code) == (502, "upstream_auth_failed")


async def test_a_bedrock_api_key_is_sent_as_a_bearer_token(fake: FakeBedrock, http: UpstreamHttp,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", API_KEY)
    provider = BedrockProvider(_config(fake, api_key="env:AWS_BEARER_TOKEN_BEDROCK"), http)
    body = orjson.loads((await provider.chat(ChatCall({"messages": MESSAGES}, CLAUDE))).raw)
    assert body["choices"][0]["message"]["content"] == payloads.REPLY_TEXT
    sent = fake.requests[-1]
    assert sent.headers["authorization"] == f"Bearer {API_KEY}" and "x-amz-date" not in sent.headers


async def test_model_ids_and_inference_profile_arns_are_one_encoded_path_segment(provider: BedrockProvider,
                                                                                 fake: FakeBedrock) -> None:
    body = await _chat(provider, PROFILE_ARN)
    assert body["model"] == PROFILE_ARN
    sent = fake.requests[-1]
    assert sent.model == PROFILE_ARN and "%2F" in sent.path and sent.path.endswith("/converse")


# -- answers ---------------------------------------------------------------------------------
async def test_a_converse_answer_becomes_a_chat_completion(provider: BedrockProvider) -> None:
    body = await _chat(provider)
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-") and body["model"] == CLAUDE
    (choice,) = body["choices"]
    assert choice["message"] == {"role": "assistant", "content": payloads.REPLY_TEXT, "refusal": None}
    assert choice["finish_reason"] == "stop"
    assert body["usage"] == {"prompt_tokens": PROMPT_WORDS, "completion_tokens": payloads.COMPLETION_TOKENS,
                             "total_tokens": PROMPT_WORDS + payloads.COMPLETION_TOKENS,
                             "prompt_tokens_details": {"cached_tokens": 0, "cache_creation_tokens": 0}}


async def test_llama_models_work_through_converse(provider: BedrockProvider, fake: FakeBedrock) -> None:
    body = await _chat(provider, LLAMA, tools=[WEATHER], tool_choice="auto")
    assert body["choices"][0]["finish_reason"] == "tool_calls" and fake.requests[-1].model == LLAMA
    error = await _error(provider.chat(ChatCall({"messages": MESSAGES, "tools": [WEATHER], "tool_choice": "required"},
                                                LLAMA)))
    assert (error.status, error.retryable) == (400, False)
    assert "toolChoice.any" in error.message  # Bedrock's own words: Llama takes no forced tool choice


@pytest.mark.parametrize(("model", "extra", "finish", "content"), [
    (CLAUDE, {"max_tokens": 3}, "length", "Hello! This"),  # stopReason max_tokens
    (CLAUDE, {"stop": [" fake"]}, "stop", "Hello! This is the"),  # stopReason stop_sequence
    ("guardrail", {}, "content_filter", "Sorry, the model cannot answer this question."),  # guardrail_intervened
])
async def test_stop_reasons_become_finish_reasons(provider: BedrockProvider, model: str, extra: dict[str, Any],
                                                  finish: str, content: str) -> None:
    choice = (await _chat(provider, model, **extra))["choices"][0]
    assert (choice["finish_reason"], choice["message"]["content"]) == (finish, content)


async def test_prompt_cache_reads_and_writes_count_as_prompt_tokens(provider: BedrockProvider) -> None:
    done = await provider.chat(ChatCall({"messages": MESSAGES}, "cache-hit"))
    prompt = PROMPT_WORDS + payloads.CACHE_READ_TOKENS + payloads.CACHE_WRITE_TOKENS
    assert done.usage is not None and done.usage.prompt_tokens == prompt
    usage = orjson.loads(done.raw)["usage"]
    assert usage["prompt_tokens_details"] == {"cached_tokens": payloads.CACHE_READ_TOKENS,
                                              "cache_creation_tokens": payloads.CACHE_WRITE_TOKENS}


async def test_cache_control_becomes_a_cache_point(provider: BedrockProvider, fake: FakeBedrock) -> None:
    system = {"role": "system", "content": [{"type": "text", "text": "Long rules.", "cache_control": {"type": "ephemeral"}}]}
    await provider.chat(ChatCall({"messages": [system, {"role": "user", "content": "Hi"}]}, CLAUDE))
    assert fake.requests[-1].json["system"] == [{"text": "Long rules."}, {"cachePoint": {"type": "default"}}]


# -- tools -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("choice", "sent_choice"), [
    (None, None), ("auto", {"auto": {}}), ("required", {"any": {}}),
    ({"type": "function", "function": {"name": "get_weather"}}, {"tool": {"name": "get_weather"}}),
])
async def test_tool_use_becomes_tool_calls(provider: BedrockProvider, fake: FakeBedrock, choice: Any, sent_choice: Any) -> None:
    body = await _chat(provider, tools=[WEATHER], **({"tool_choice": choice} if choice is not None else {}))
    config = fake.requests[-1].json["toolConfig"]
    assert config["tools"] == [{"toolSpec": {"name": "get_weather", "description": "Weather for a city",
                                             "inputSchema": {"json": WEATHER["function"]["parameters"]}}}]  # type: ignore[index]
    assert config.get("toolChoice") == sent_choice
    out = body["choices"][0]
    assert out["finish_reason"] == "tool_calls" and out["message"]["content"] == payloads.TOOL_PREAMBLE
    (call,) = out["message"]["tool_calls"]
    assert call["id"].startswith("tooluse_") and call["type"] == "function"
    assert call["function"]["name"] == "get_weather" and json.loads(call["function"]["arguments"]) == {"city": "Paris"}


async def test_tool_calls_and_results_go_back_as_tool_use_and_tool_result_blocks(provider: BedrockProvider,
                                                                                  fake: FakeBedrock) -> None:
    calls = [{"id": f"tooluse_{city}", "type": "function",
              "function": {"name": "get_weather", "arguments": json.dumps({"city": city})}} for city in ("Paris", "Rome")]
    messages = [{"role": "user", "content": "Weather in Paris and Rome?"},
                {"role": "assistant", "content": None, "tool_calls": calls},
                {"role": "tool", "tool_call_id": "tooluse_Paris", "content": "18 C"},
                {"role": "tool", "tool_call_id": "tooluse_Rome", "content": [{"type": "text", "text": "24 C"}]},
                {"role": "user", "content": "Which is warmer?"}]
    done = await provider.chat(ChatCall({"messages": messages, "tools": [WEATHER]}, CLAUDE))
    assert done.usage is not None and done.usage.prompt_tokens == 5 + 2 + 2 + 3  # the fake accepted the history
    sent = fake.requests[-1].json["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert sent[1]["content"] == [{"toolUse": {"toolUseId": f"tooluse_{c}", "name": "get_weather", "input": {"city": c}}}
                                  for c in ("Paris", "Rome")]
    assert sent[2]["content"] == [{"toolResult": {"toolUseId": "tooluse_Paris", "content": [{"text": "18 C"}]}},
                                  {"toolResult": {"toolUseId": "tooluse_Rome", "content": [{"text": "24 C"}]}},
                                  {"text": "Which is warmer?"}]


async def test_tool_choice_none_sends_no_tool_config(provider: BedrockProvider, fake: FakeBedrock) -> None:
    body = await _chat(provider, tools=[WEATHER], tool_choice="none")
    assert "toolConfig" not in fake.requests[-1].json and body["choices"][0]["finish_reason"] == "stop"


# -- images ----------------------------------------------------------------------------------
async def test_data_url_images_become_image_bytes(provider: BedrockProvider, fake: FakeBedrock) -> None:
    content = [{"type": "text", "text": "Describe"},
               {"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{PIXEL}", "detail": "high"}}]
    await provider.chat(ChatCall({"messages": [{"role": "user", "content": content}]}, CLAUDE))
    (message,) = fake.requests[-1].json["messages"]
    assert message["content"] == [{"text": "Describe"}, {"image": {"format": "jpeg", "source": {"bytes": PIXEL}}}]
    assert base64.b64decode(message["content"][1]["image"]["source"]["bytes"]).startswith(b"\x89PNG")


# -- refused before anything is sent ---------------------------------------------------------
@pytest.mark.parametrize(("extra", "param"), [
    ({"n": 2}, "n"),
    ({"temperature": 1.5}, "temperature"),
    ({"logprobs": True}, "logprobs"),
    ({"response_format": {"type": "json_object"}}, "response_format"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x.test/cat.png"}}]}]},
     "messages[0].content[0].image_url"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/bmp;base64,AA"}}]}]},
     "messages[0].content[0].image_url"),
    ({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "AA", "format": "wav"}}]}]},
     "messages[0].content[0]"),
    ({"messages": [{"role": "assistant", "content": None, "tool_calls": [
        {"id": "t1", "type": "function", "function": {"name": "f", "arguments": "{not json"}}]}]},
     "messages[0].tool_calls[0].function.arguments"),
    ({"tools": [{"type": "code_interpreter"}]}, "tools[0]"),
    ({"tools": [WEATHER], "tool_choice": "none", "messages": [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "tool_calls": [{"id": "t1", "type": "function", "function": {"name": "get_weather",
                                                                                          "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "t1", "content": "sunny"}]}, "tool_choice"),
])
async def test_what_converse_cannot_express_is_a_clear_400(provider: BedrockProvider, fake: FakeBedrock,
                                                           extra: dict[str, Any], param: str) -> None:
    error = await _error(provider.chat(ChatCall({"messages": MESSAGES, **extra}, CLAUDE)))
    assert (error.status, error.type, error.param, error.retryable) == (400, "invalid_request_error", param, False)
    assert "bedrock-west" in error.message
    assert fake.requests == []


# -- errors ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("model", "status", "retryable", "code"), [
    ("fail-throttling", 429, True, "rate_limit_exceeded"),
    ("fail-not-ready", 503, True, "service_unavailable"),
    ("fail-unavailable", 503, True, "service_unavailable"),
    ("fail-internal", 502, True, "upstream_error"),
    ("fail-access", 502, True, "upstream_auth_failed"),
    ("fail-not-found", 502, True, "upstream_model_not_found"),
    ("fail-timeout", 504, True, "upstream_timeout"),
    ("fail-validation", 400, False, None),
    ("too-long", 400, False, "context_length_exceeded"),
])
async def test_bedrock_exceptions_map_to_gateway_errors(provider: BedrockProvider, model: str, status: int,
                                                        retryable: bool, code: str | None) -> None:
    for call in (provider.chat(ChatCall({"messages": MESSAGES}, model)),
                 anext(provider.chat_stream(ChatCall({"messages": MESSAGES}, model)))):
        error = await _error(call)
        assert (error.status, error.retryable, error.code) == (status, retryable, code)
        assert "bedrock-west" in error.message or status == 400


async def test_invalid_requests_keep_bedrocks_message(provider: BedrockProvider) -> None:
    error = await _error(provider.chat(ChatCall({"messages": MESSAGES}, "fail-validation")))
    assert error.message == "Malformed input request: fake runtime refused this request"
    too_long = await _error(provider.chat(ChatCall({"messages": MESSAGES}, "too-long")))
    assert too_long.message == "Input is too long for requested model." and too_long.param == "messages"


@pytest.mark.parametrize("wrong", [
    {"JG_TEST_AWS_SECRET": "wrongSecretThatMustStayPrivate/0123456789ab"},  # InvalidSignatureException
    {"JG_TEST_AWS_KEY_ID": "AKIDUNKNOWNJETGATE99"},  # UnrecognizedClientException
])
async def test_refused_credentials_never_show_the_key(fake: FakeBedrock, http: UpstreamHttp,
                                                      monkeypatch: pytest.MonkeyPatch, wrong: dict[str, str]) -> None:
    monkeypatch.setenv("JG_TEST_AWS_KEY_ID", CREDENTIALS.access_key_id)
    monkeypatch.setenv("JG_TEST_AWS_SECRET", CREDENTIALS.secret_access_key)
    for name, value in wrong.items():
        monkeypatch.setenv(name, value)
    provider = BedrockProvider(_config(fake), http)
    for call in (provider.chat(ChatCall({"messages": MESSAGES}, CLAUDE)),
                 anext(provider.chat_stream(ChatCall({"messages": MESSAGES}, CLAUDE))),
                 provider.embeddings(EmbeddingsCall({"input": "x"}, TITAN))):
        error = await _error(call)
        assert (error.status, error.retryable, error.code) == (502, True, "upstream_auth_failed")
        assert "bedrock-west" in error.message
        for text in (error.message, str(error), repr(error)):
            for secret in (*wrong.values(), CREDENTIALS.secret_access_key):
                assert secret not in text


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_unreachable_is_502_and_hanging_is_504(provider: BedrockProvider, fake: FakeBedrock,
                                                     http: UpstreamHttp) -> None:
    down = BedrockProvider(_config(fake, api_key="env:JG_TEST_AWS_SECRET",
                                   endpoint_url=f"http://127.0.0.1:{_closed_port()}"), http)
    error = await _error(down.chat(ChatCall({"messages": MESSAGES}, CLAUDE)))
    assert (error.status, error.retryable, error.code) == (502, True, "upstream_unreachable")
    slow = BedrockProvider(_config(fake).model_copy(update={"timeout_s": 0.3}), http)
    for call in (slow.chat(ChatCall({"messages": MESSAGES}, "hang")),
                 anext(slow.chat_stream(ChatCall({"messages": MESSAGES}, "hang")))):
        error = await _error(call)
        assert (error.status, error.retryable, error.code) == (504, True, "upstream_timeout")


# -- embeddings (Titan) ----------------------------------------------------------------------
async def test_titan_embeddings_one_invoke_per_input(provider: BedrockProvider, fake: FakeBedrock) -> None:
    done = await provider.embeddings(EmbeddingsCall({"input": ["one text", "and another one"], "dimensions": 512}, TITAN))
    body = orjson.loads(done.raw)
    assert [len(item["embedding"]) for item in body["data"]] == [512, 512] and body["model"] == TITAN
    assert sorted(r.json["inputText"] for r in fake.requests) == ["and another one", "one text"]
    assert all(r.path == f"/model/{TITAN}/invoke" and r.json["dimensions"] == 512 for r in fake.requests)
    assert done.usage is not None and done.usage.prompt_tokens == 2 + 3 == done.usage.total_tokens
    assert body["data"][0]["embedding"] == pytest.approx(payloads.titan_embedding("one text", 512))


async def test_embeddings_titan_cannot_make_are_a_clear_400(provider: BedrockProvider, fake: FakeBedrock) -> None:
    error = await _error(provider.embeddings(EmbeddingsCall({"input": "x"}, "cohere.embed-english-v3")))
    assert (error.status, error.code, error.retryable) == (400, "unsupported_endpoint", False)
    assert "bedrock-west" in error.message and "titan" in error.message.lower()
    error = await _error(provider.embeddings(EmbeddingsCall({"input": [[1, 2, 3]]}, TITAN)))
    assert (error.status, error.param) == (400, "input")
    assert fake.requests == []
    error = await _error(provider.embeddings(EmbeddingsCall({"input": "x", "dimensions": 100}, TITAN)))
    assert (error.status, error.retryable) == (400, False) and "dimensions" in error.message  # Bedrock's refusal


async def test_a_large_batch_keeps_its_order(provider: BedrockProvider, fake: FakeBedrock) -> None:
    texts = [f"text number {i}" for i in range(40)]  # more than EMBED_CONCURRENCY calls
    body = orjson.loads((await provider.embeddings(EmbeddingsCall({"input": texts, "dimensions": 256}, TITAN))).raw)
    assert [item["index"] for item in body["data"]] == list(range(40)) and len(fake.requests) == 40
    for text, item in zip(texts, body["data"], strict=True):
        assert item["embedding"] == pytest.approx(payloads.titan_embedding(text, 256))
