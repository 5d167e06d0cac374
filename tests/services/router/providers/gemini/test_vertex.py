"""The `gemini` adapter on Vertex AI: a service account's JWT-bearer grant at the (fake)
token endpoint, the token cached and sent as bearer to the publisher-model URLs."""
from __future__ import annotations

import asyncio
import json
from pathlib import Path

import orjson
import pytest
from google.auth import jwt

from services.router.http_client import UpstreamHttp
from services.router.providers.base import ChatCall, EmbeddingsCall
from services.router.providers.gemini import GeminiProvider, VertexConfig, payloads
from shared.errors import GatewayError
from tests.fakes.gemini_upstream import SA_EMAIL, FakeGemini
from tests.services.router.providers.gemini.conftest import vertex_config

MESSAGES = [{"role": "user", "content": "Hello from Vertex"}]
MODEL_PATH = "/v1/projects/fake-project/locations/europe-west4/publishers/google/models/gemini-2.5-pro"


async def test_chat_fetches_a_token_then_calls_the_publisher_model(vertex: GeminiProvider, gemini: FakeGemini) -> None:
    done = await vertex.chat(ChatCall({"messages": MESSAGES}, "gemini-2.5-pro"))
    assert orjson.loads(done.raw)["choices"][0]["message"]["content"] == payloads.REPLY_TEXT

    token_request, call = gemini.requests
    assert token_request.path == "/token"
    assert token_request.form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    claims = jwt.decode(token_request.form["assertion"], verify=False)
    assert claims["iss"] == SA_EMAIL and claims["aud"] == "https://oauth2.googleapis.com/token"
    assert claims["scope"] == "https://www.googleapis.com/auth/cloud-platform"
    assert claims["exp"] - claims["iat"] == 3600
    assert call.path == f"{MODEL_PATH}:generateContent"
    assert call.headers["authorization"].startswith("Bearer ya29.fake-")
    assert "x-goog-api-key" not in call.headers


async def test_token_is_cached_across_calls_and_streams(vertex: GeminiProvider, gemini: FakeGemini) -> None:
    await vertex.chat(ChatCall({"messages": MESSAGES}, "gemini-2.5-pro"))
    chunks = [c async for c in vertex.chat_stream(ChatCall({"messages": MESSAGES}, "gemini-2.5-pro"))]
    await vertex.embeddings(EmbeddingsCall({"input": "one"}, "text-embedding-005"))

    assert len(gemini.token_requests()) == 1
    calls = gemini.model_requests()
    assert [r.path for r in calls] == [f"{MODEL_PATH}:generateContent", f"{MODEL_PATH}:streamGenerateContent",
                                       MODEL_PATH.replace("gemini-2.5-pro", "text-embedding-005") + ":predict"]
    assert calls[1].query == "alt=sse" and len({r.headers["authorization"] for r in calls}) == 1
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == payloads.CANDIDATES_TOKENS


async def test_token_close_to_expiry_is_renewed(gemini: FakeGemini, key_file: Path, http: UpstreamHttp) -> None:
    gemini.clear()
    provider = GeminiProvider(vertex_config(gemini, key_file, token_refresh_margin_s=3600), http)  # always "expiring"
    for _ in range(2):
        await provider.chat(ChatCall({"messages": MESSAGES}, "gemini-2.5-pro"))
    assert len(gemini.token_requests()) == 2


async def test_refused_token_is_dropped_and_fetched_again(vertex: GeminiProvider, gemini: FakeGemini) -> None:
    await vertex.chat(ChatCall({"messages": MESSAGES}, "gemini-2.5-pro"))
    gemini.revoke_tokens()
    with pytest.raises(GatewayError) as caught:
        await vertex.chat(ChatCall({"messages": MESSAGES}, "gemini-2.5-pro"))
    assert (caught.value.status, caught.value.code, caught.value.retryable) == (502, "upstream_auth_failed", True)
    await vertex.chat(ChatCall({"messages": MESSAGES}, "gemini-2.5-pro"))
    assert len(gemini.token_requests()) == 2


async def test_vertex_embeddings_use_predict_with_its_token_counts(vertex: GeminiProvider, gemini: FakeGemini) -> None:
    done = await vertex.embeddings(EmbeddingsCall({"input": ["a b c", "d e"], "dimensions": 4}, "text-embedding-005"))
    sent = gemini.model_requests()[-1].json
    assert sent == {"instances": [{"content": "a b c"}, {"content": "d e"}], "parameters": {"outputDimensionality": 4}}
    body = orjson.loads(done.raw)
    assert [len(d["embedding"]) for d in body["data"]] == [4, 4]
    assert done.usage is not None and done.usage.prompt_tokens == 5  # statistics.token_count, summed


async def test_a_key_the_token_endpoint_does_not_trust_is_502(gemini: FakeGemini, tmp_path: Path,
                                                              http: UpstreamHttp) -> None:
    stranger = tmp_path / "stranger.json"
    stranger.write_text(json.dumps(FakeGemini().service_account()))  # a key `gemini` has never seen
    provider = GeminiProvider(vertex_config(gemini, stranger), http)
    with pytest.raises(GatewayError) as caught:
        await provider.chat(ChatCall({"messages": MESSAGES}, "gemini-2.5-pro"))
    error = caught.value
    assert (error.status, error.code, error.retryable) == (502, "upstream_auth_failed", True)
    assert "provider vertex" in error.message and "PRIVATE KEY" not in error.message


async def test_unreadable_key_file_is_502_without_its_content(gemini: FakeGemini, tmp_path: Path,
                                                              http: UpstreamHttp) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"client_email": "x@y", "private_key": "-----BEGIN PRIVATE KEY-----\\nnot a key\\n"}')
    for path in (broken, tmp_path / "missing.json"):
        provider = GeminiProvider(vertex_config(gemini, path), http)
        with pytest.raises(GatewayError) as caught:
            await provider.chat(ChatCall({"messages": MESSAGES}, "gemini-2.5-pro"))
        assert (caught.value.status, caught.value.code) == (502, "upstream_auth_failed")
        assert "not a key" not in caught.value.message


def test_default_vertex_urls() -> None:
    regional = VertexConfig(project="p", location="us-central1", credentials="file:/sa.json")
    assert regional.api_base() == "https://us-central1-aiplatform.googleapis.com/v1"
    assert VertexConfig(project="p", location="global", credentials="file:/sa.json").api_base() == (
        "https://aiplatform.googleapis.com/v1")


async def test_concurrent_first_calls_share_one_token_fetch(vertex: GeminiProvider, gemini: FakeGemini) -> None:
    done = await asyncio.gather(*(vertex.chat(ChatCall({"messages": MESSAGES}, "gemini-2.5-pro")) for _ in range(5)))
    assert len(done) == 5 and len(gemini.token_requests()) == 1
    assert len({r.headers["authorization"] for r in gemini.model_requests()}) == 1
