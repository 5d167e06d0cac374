"""OpenAI embeddings through Amazon Titan Text Embeddings on Bedrock: one InvokeModel call
(`POST /model/{modelId}/invoke`, body `{"inputText", "dimensions"?}`, answer
`{"embedding", "inputTextTokenCount"}`) per input, a few at a time, gathered into one
OpenAI `list`. `encoding_format: base64` is the float32 little-endian bytes, as OpenAI sends."""
from __future__ import annotations

import base64
import struct
from typing import Any

import orjson

from shared.errors import InvalidRequest, UpstreamError
from shared.openai_types import Usage

Json = dict[str, Any]
TITAN_FAMILY = "amazon.titan-embed-text"


def is_titan(model: str) -> bool:
    return TITAN_FAMILY in model


def titan_bodies(provider: str, body: Json) -> list[bytes]:
    """The InvokeModel bodies, one per input text."""
    inputs = body.get("input")
    texts = [inputs] if isinstance(inputs, str) else inputs
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) and t for t in texts):
        raise InvalidRequest(f"`input` must be a non-empty string or a list of them (provider {provider}: Titan "
                             "embeddings take text, not token arrays)", param="input", code="unsupported_parameter")
    extra: Json = {}
    if isinstance(body.get("dimensions"), int):
        extra["dimensions"] = body["dimensions"]
    return [orjson.dumps({"inputText": text, **extra}) for text in texts]


def embeddings_list(provider: str, answers: list[bytes], model: str, encoding_format: Any) -> tuple[bytes, Usage]:
    data: list[Json] = []
    tokens = 0
    for index, raw in enumerate(answers):
        try:
            answer = orjson.loads(raw)
        except orjson.JSONDecodeError:
            answer = None
        vector = answer.get("embedding") if isinstance(answer, dict) else None
        if not isinstance(vector, list) or not isinstance(answer, dict):
            raise UpstreamError(f"provider {provider} sent an embedding answer without `embedding`", retryable=True)
        count = answer.get("inputTextTokenCount")
        tokens += count if isinstance(count, int) else 0
        floats = [float(v) for v in vector]
        encoded: Any = floats
        if encoding_format == "base64":
            encoded = base64.b64encode(struct.pack(f"<{len(floats)}f", *floats)).decode()
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    return orjson.dumps({"object": "list", "data": data, "model": model, "usage": usage}), Usage.model_validate(usage)
