"""OpenAI embeddings ↔ Gemini: `batchEmbedContents` on AI Studio, `predict` on Vertex AI.

OpenAI's `input` (a string or a list of strings) becomes one request (AI Studio) or one
instance (Vertex) per string; `dimensions` becomes `outputDimensionality`. The answer is
OpenAI's embedding list, `float` or `base64` (little-endian float32, as OpenAI sends).
AI Studio reports no token counts, so they are estimated; Vertex's `statistics.token_count`
is used where given. Gemini embeds text only: token-id inputs are a 400.
"""
from __future__ import annotations

import base64
import struct
from typing import Any

from shared.errors import InvalidRequest, UpstreamError
from shared.openai_types import Usage
from shared.tokens import estimate_input_tokens

Json = dict[str, Any]


def texts(body: Json) -> list[str]:
    value = body.get("input")
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(i, str) for i in items):
        raise InvalidRequest("Gemini embeds text: input must be a string or a list of strings", param="input")
    if body.get("encoding_format") not in (None, "float", "base64"):
        raise InvalidRequest("encoding_format must be float or base64", param="encoding_format")
    return items


def batch_embed_request(model: str, body: Json) -> Json:
    extra: Json = {"outputDimensionality": body["dimensions"]} if body.get("dimensions") else {}
    return {"requests": [{"model": f"models/{model}", "content": {"parts": [{"text": text}]}, **extra}
                         for text in texts(body)]}


def predict_request(body: Json) -> Json:
    request: Json = {"instances": [{"content": text} for text in texts(body)]}
    if body.get("dimensions"):
        request["parameters"] = {"outputDimensionality": body["dimensions"]}
    return request


def _vectors_from_batch(answer: Json) -> tuple[list[Any], int | None]:
    return [(e or {}).get("values") for e in answer.get("embeddings") or ()], None


def _vectors_from_predict(answer: Json) -> tuple[list[Any], int | None]:
    vectors, tokens = [], 0
    for prediction in answer.get("predictions") or ():
        embedding = (prediction or {}).get("embeddings") or {}
        vectors.append(embedding.get("values"))
        tokens += int((embedding.get("statistics") or {}).get("token_count") or 0)
    return vectors, tokens or None


def embeddings_list(provider: str, answer: Any, body: Json, model: str, vertex: bool) -> tuple[Json, Usage]:
    if not isinstance(answer, dict):
        raise UpstreamError(f"provider {provider} returned an embeddings answer of the wrong shape", retryable=True)
    vectors, tokens = (_vectors_from_predict if vertex else _vectors_from_batch)(answer)
    if len(vectors) != len(texts(body)) or not all(isinstance(v, list) for v in vectors):
        raise UpstreamError(f"provider {provider} returned {len(vectors)} embeddings for {len(texts(body))} inputs",
                            retryable=True)
    base64_wanted = body.get("encoding_format") == "base64"
    data = []
    for index, vector in enumerate(vectors):
        floats = [float(v) for v in vector]
        encoded: list[float] | str = floats
        if base64_wanted:
            encoded = base64.b64encode(struct.pack(f"<{len(floats)}f", *floats)).decode()
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    prompt = tokens if tokens is not None else estimate_input_tokens(body.get("input"))
    usage = Usage(prompt_tokens=prompt, completion_tokens=0, total_tokens=prompt)
    return {"object": "list", "data": data, "model": model,
            "usage": {"prompt_tokens": prompt, "total_tokens": prompt}}, usage
