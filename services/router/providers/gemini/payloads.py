"""Gemini API payloads, shaped after the API reference (GenerateContentResponse, its SSE
stream, BatchEmbedContentsResponse, Vertex `predict` embeddings, google.rpc error bodies,
the OAuth2 token answer). Plain functions returning JSON-ready dicts; the fake Gemini
upstream in the tests answers with them.

Token counts are deterministic: prompt tokens are the whitespace-separated words of the
request's text parts (system instruction included), candidates tokens a constant per
reply (`CANDIDATES_TOKENS`).
"""
from __future__ import annotations

import base64
import json
import secrets
from typing import Any

REPLY_PIECES = ["Hello", "! This is", " the fake", " Gemini upstream", " answering."]
REPLY_TEXT = "".join(REPLY_PIECES)
CANDIDATES_TOKENS = 9
THOUGHTS_TOKENS = 21
CACHED_TOKENS = 4
EMBEDDING_DIMENSIONS = 8

Json = dict[str, Any]
_SAMPLE_VALUES: dict[str, Any] = {"STRING": "Paris", "NUMBER": 1.5, "INTEGER": 1, "BOOLEAN": True, "ARRAY": [],
                                  "OBJECT": {}}
_SAFETY_CATEGORIES = ("HARM_CATEGORY_HATE_SPEECH", "HARM_CATEGORY_DANGEROUS_CONTENT", "HARM_CATEGORY_HARASSMENT",
                      "HARM_CATEGORY_SEXUALLY_EXPLICIT")


def response_id() -> str:
    return secrets.token_urlsafe(16).replace("-", "x").replace("_", "y")


def request_text(request: Json) -> str:
    """Every text part of the request (system instruction and contents)."""
    parts = list((request.get("systemInstruction") or {}).get("parts") or [])
    for content in request.get("contents") or ():
        parts += content.get("parts") or []
    return " ".join(p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str))


def count_prompt_tokens(request: Json) -> int:
    return len(request_text(request).split())


def inline_data(request: Json) -> list[Json]:
    return [p["inlineData"] for c in request.get("contents") or () for p in c.get("parts") or ()
            if isinstance(p, dict) and isinstance(p.get("inlineData"), dict)]


def usage_metadata(prompt: int, candidates: int | None, *, thoughts: int = 0, cached: int = 0) -> Json:
    usage: Json = {"promptTokenCount": prompt, "totalTokenCount": prompt + (candidates or 0) + thoughts,
                   "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}]}
    if candidates is not None:
        usage["candidatesTokenCount"] = candidates
    if thoughts:
        usage["thoughtsTokenCount"] = thoughts
    if cached:
        usage["cachedContentTokenCount"] = cached
        usage["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": cached}]
    return usage


def safety_ratings(blocked: str | None = None) -> list[Json]:
    ratings = []
    for category in _SAFETY_CATEGORIES:
        rating: Json = {"category": category, "probability": "HIGH" if category == blocked else "NEGLIGIBLE"}
        if category == blocked:
            rating["blocked"] = True
        ratings.append(rating)
    return ratings


def candidate(parts: list[Json] | None, finish_reason: str | None, index: int = 0) -> Json:
    out: Json = {}
    if parts is not None:
        out["content"] = {"parts": parts, "role": "model"}
    if finish_reason is not None:
        out["finishReason"] = finish_reason
    if index:
        out["index"] = index  # proto3 JSON leaves the default 0 out
    return out


def response(candidates: list[Json], usage: Json, model: str, rid: str | None = None) -> Json:
    return {"candidates": candidates, "usageMetadata": usage, "modelVersion": model, "responseId": rid or response_id()}


def text_response(model: str, prompt_tokens: int, text: str = REPLY_TEXT, *, count: int = 1,
                  thinking: bool = False) -> Json:
    thought = [{"text": "**Weighing the greeting**\n\nThe user says hello.", "thought": True}] if thinking else []
    candidates = [candidate([*thought, {"text": text}], "STOP", i) for i in range(count)]
    usage = usage_metadata(prompt_tokens, CANDIDATES_TOKENS * count, thoughts=THOUGHTS_TOKENS if thinking else 0,
                           cached=CACHED_TOKENS if thinking else 0)
    return response(candidates, usage, model)


def thought_signature() -> str:
    """An opaque signature as thinking models attach to function calls (base64 bytes)."""
    return base64.b64encode(secrets.token_bytes(48)).decode()


def function_call_part(name: str, args: Json, signature: str | None = None) -> Json:
    part: Json = {"functionCall": {"name": name, "args": args}}
    if signature is not None:
        part["thoughtSignature"] = signature
    return part


def function_call_response(model: str, prompt_tokens: int, name: str, args: Json, signature: str | None = None) -> Json:
    return response([candidate([function_call_part(name, args, signature)], "STOP")],
                    usage_metadata(prompt_tokens, CANDIDATES_TOKENS), model)


def unsigned_function_call(request: Json) -> tuple[str, int] | None:
    """(name, position) of the first model `functionCall` part sent back without its thoughtSignature."""
    for position, content in enumerate(request.get("contents") or ()):
        for part in content.get("parts") or ():
            if content.get("role") == "model" and "functionCall" in part and not part.get("thoughtSignature"):
                return str(part["functionCall"].get("name")), position
    return None


def missing_thought_signature(name: str, position: int) -> Json:
    return invalid_argument(
        "Function call is missing a thought_signature in functionCall parts. This is required for tools to work "
        f"correctly, and missing thought_signature may lead to degraded model performance. Additional data, function "
        f"call `default_api:{name}` , position {position}. Please refer to "
        "https://ai.google.dev/gemini-api/docs/thought-signatures for more details.")


def chosen_function(request: Json) -> tuple[str, Json] | None:
    """(name, args) of the function the model calls: the first declared (or the only allowed one),
    unless the mode is NONE or the last turn already holds a function's response."""
    declarations = [d for t in request.get("tools") or () for d in t.get("functionDeclarations") or ()]
    config = (request.get("toolConfig") or {}).get("functionCallingConfig") or {}
    if not declarations or config.get("mode") == "NONE":
        return None
    last = (request.get("contents") or [{}])[-1]
    if any("functionResponse" in p for p in last.get("parts") or ()):
        return None
    allowed = config.get("allowedFunctionNames") or []
    for declaration in declarations:
        if not allowed or declaration.get("name") in allowed:
            return str(declaration["name"]), sample_args(declaration.get("parameters") or {})
    return None


def sample_args(schema: Json) -> Json:
    properties: Json = schema.get("properties") or {}
    args: Json = {}
    for name in schema.get("required") or list(properties):
        prop = properties.get(name) or {}
        args[name] = prop["enum"][0] if prop.get("enum") else _SAMPLE_VALUES.get(str(prop.get("type", "")).upper(), "x")
    return args


def prompt_blocked(prompt_tokens: int, model: str) -> Json:
    """The prompt refused as a whole: no candidates, only promptFeedback."""
    return {"promptFeedback": {"blockReason": "SAFETY", "safetyRatings": safety_ratings("HARM_CATEGORY_DANGEROUS_CONTENT")},
            "usageMetadata": usage_metadata(prompt_tokens, None), "modelVersion": model, "responseId": response_id()}


def safety_stopped(prompt_tokens: int, model: str) -> Json:
    """A candidate stopped for safety: no content, finishReason SAFETY with its ratings."""
    stopped = {**candidate(None, "SAFETY"), "safetyRatings": safety_ratings("HARM_CATEGORY_HARASSMENT")}
    return response([stopped], usage_metadata(prompt_tokens, None), model)


def text_stream(model: str, prompt_tokens: int, pieces: list[str] = REPLY_PIECES, *,
                thinking: bool = False) -> list[Json]:
    """One event per piece; the last carries finishReason and the final usageMetadata. A
    thinking model has thought before its first piece: every event counts its thoughts and
    the cached part of its prompt."""
    rid = response_id()
    events = []
    for number, piece in enumerate(pieces, start=1):
        last = number == len(pieces)
        usage = usage_metadata(prompt_tokens, CANDIDATES_TOKENS if last else number,
                               thoughts=THOUGHTS_TOKENS if thinking else 0, cached=CACHED_TOKENS if thinking else 0)
        events.append(response([candidate([{"text": piece}], "STOP" if last else None)], usage, model, rid))
    return events


def function_call_stream(model: str, prompt_tokens: int, name: str, args: Json) -> list[Json]:
    return [response([candidate([function_call_part(name, args)], "STOP")],
                     usage_metadata(prompt_tokens, CANDIDATES_TOKENS), model)]


def sse(event: Json) -> bytes:
    return f"data: {json.dumps(event, separators=(',', ':'))}\r\n\r\n".encode()


def embedding_vector(index: int, dimensions: int) -> list[float]:
    """Values exactly representable in float32, so base64 round-trips compare equal."""
    return [((k % 5) - 2) / 16 + index / 32 for k in range(dimensions)]


def batch_embed_contents(count: int, dimensions: int) -> Json:
    return {"embeddings": [{"values": embedding_vector(i, dimensions)} for i in range(count)]}


def vertex_predict_embeddings(texts: list[str], dimensions: int) -> Json:
    return {"predictions": [{"embeddings": {"values": embedding_vector(i, dimensions),
                                            "statistics": {"truncated": False, "token_count": len(t.split())}}}
                            for i, t in enumerate(texts)],
            "metadata": {"billableCharacterCount": sum(len(t) for t in texts)}}


def error_body(code: int, status: str, message: str, details: list[Json] | None = None) -> Json:
    error: Json = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = details
    return {"error": error}


def invalid_argument(message: str = "Invalid JSON payload received. Unknown name \"foo\": Cannot find field.") -> Json:
    return error_body(400, "INVALID_ARGUMENT", message)


def api_key_invalid() -> Json:
    message = "API key not valid. Please pass a valid API key."
    return error_body(400, "INVALID_ARGUMENT", message, [
        {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com",
         "metadata": {"service": "generativelanguage.googleapis.com"}},
        {"@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US", "message": message}])


def token_limit_exceeded(count: int = 1200293, limit: int = 1048576) -> Json:
    return invalid_argument(f"The input token count ({count}) exceeds the maximum number of tokens allowed ({limit}).")


def permission_denied() -> Json:
    return error_body(403, "PERMISSION_DENIED", "Permission denied on resource project fake-project (or it may not exist).")


def unauthenticated() -> Json:
    return error_body(401, "UNAUTHENTICATED", "Request had invalid authentication credentials. Expected OAuth 2 access "
                      "token, login cookie or other valid authentication credential.")


def not_found(model: str) -> Json:
    return error_body(404, "NOT_FOUND", f"models/{model} is not found for API version v1beta, or is not supported "
                      "for generateContent.")


def resource_exhausted(retry_delay_s: int) -> Json:
    return error_body(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota, please check your plan and billing "
                      "details.", [
                          {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [
                              {"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                               "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier", "quotaValue": "10"}]},
                          {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{retry_delay_s}s"}])


def internal() -> Json:
    return error_body(500, "INTERNAL", "An internal error has occurred. Please retry or report in "
                      "https://developers.generativeai.google/guide/troubleshooting")


def unavailable() -> Json:
    return error_body(503, "UNAVAILABLE", "The model is overloaded. Please try again later.")


def token_answer(access_token: str, expires_in: int = 3599) -> Json:
    return {"access_token": access_token, "expires_in": expires_in, "token_type": "Bearer"}


def token_error() -> Json:
    return {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
