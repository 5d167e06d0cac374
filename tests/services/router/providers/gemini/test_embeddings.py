"""Embeddings on AI Studio: OpenAI's input → `batchEmbedContents` requests, the answer as
OpenAI's embedding list in float or base64."""
from __future__ import annotations

import base64
import struct

import orjson
import pytest

from services.router.providers.base import EmbeddingsCall
from services.router.providers.gemini import GeminiProvider, payloads
from tests.fakes.gemini_upstream import FakeGemini


async def test_list_input_becomes_batch_requests(studio: GeminiProvider, gemini: FakeGemini) -> None:
    body = {"model": "emb", "input": ["first text", "second text"], "dimensions": 6}
    done = await studio.embeddings(EmbeddingsCall(body, "gemini-embedding-001"))

    (sent,) = gemini.model_requests()
    assert sent.path == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert sent.json == {"requests": [
        {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "first text"}]}, "outputDimensionality": 6},
        {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "second text"}]}, "outputDimensionality": 6},
    ]}
    answer = orjson.loads(done.raw)
    assert answer["object"] == "list" and answer["model"] == "gemini-embedding-001"
    assert [d["embedding"] for d in answer["data"]] == [payloads.embedding_vector(0, 6), payloads.embedding_vector(1, 6)]
    assert [d["index"] for d in answer["data"]] == [0, 1] and {d["object"] for d in answer["data"]} == {"embedding"}
    assert done.usage is not None and done.usage.prompt_tokens > 0  # estimated: batchEmbedContents reports none
    assert answer["usage"] == {"prompt_tokens": done.usage.prompt_tokens, "total_tokens": done.usage.prompt_tokens}


async def test_base64_is_little_endian_float32(studio: GeminiProvider) -> None:
    done = await studio.embeddings(EmbeddingsCall({"input": "one text", "encoding_format": "base64"}, "gemini-embedding-001"))
    (item,) = orjson.loads(done.raw)["data"]
    raw = base64.b64decode(item["embedding"])
    dims = payloads.EMBEDDING_DIMENSIONS
    assert list(struct.unpack(f"<{dims}f", raw)) == pytest.approx(payloads.embedding_vector(0, dims))
