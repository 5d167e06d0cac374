"""Bedrock runtime payloads, shaped after the API reference (bedrock-runtime 2023-09-30,
Converse / ConverseStream / InvokeModel) and botocore's service model: the Converse answer,
the stream's events (`messageStart`, `contentBlockStart` / `contentBlockDelta` /
`contentBlockStop`, `messageStop`, `metadata`), the exceptions, and Titan Text Embeddings
answers. Plain functions returning JSON-ready dicts; the fake runtime
(tests/fakes/bedrock_upstream.py) answers with them, framing stream events in AWS
event-stream binary (tests/fakes/event_stream.py).

Token counts are deterministic so tests can compute expected usage: input tokens are the
whitespace-separated words of the request's text (system, text blocks, tool results),
output tokens one per reply piece (`COMPLETION_TOKENS`), or `maxTokens` when that cuts the
reply short. A tool call names the first offered tool (or the one `toolChoice.tool` names),
with input filled from its schema ("Paris" for strings, the first value of an enum).
Stream events carry the `p` padding field Bedrock adds to hide the payload's length.
"""
from __future__ import annotations

import hashlib
import json
import math
import secrets
import string
import uuid
from typing import Any

REPLY_PIECES = ["Hello", "!", " This", " is", " the", " fake", " Bedrock", " runtime", " answering", "."]
REPLY_TEXT = "".join(REPLY_PIECES)
COMPLETION_TOKENS = len(REPLY_PIECES)  # 10
TOOL_PREAMBLE = "I'll call the tool."
CACHE_READ_TOKENS = 1800  # what a `cache-hit` model reports
CACHE_WRITE_TOKENS = 200
LATENCY_MS = 312
TITAN_V2_DIMENSIONS = (1024, 512, 256)  # Titan Text Embeddings V2: 1024 by default

Json = dict[str, Any]
_ALPHABET = string.ascii_letters + string.digits
_SAMPLE_VALUES: dict[str, Any] = {"string": "Paris", "number": 1.5, "integer": 1, "boolean": True, "array": [], "object": {}}


def request_id() -> str:
    return str(uuid.uuid4())  # the `x-amzn-requestid` header


def tool_use_id() -> str:
    return "tooluse_" + "".join(secrets.choice(_ALPHABET) for _ in range(22))


def padding() -> str:
    return "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0"[:secrets.randbelow(40) + 1]


# -- what a request asks for ------------------------------------------------------------
def _blocks_text(blocks: Any) -> str:
    words: list[str] = []
    for block in blocks or ():
        if not isinstance(block, dict):
            continue
        if isinstance(block.get("text"), str):
            words.append(block["text"])
        elif isinstance(block.get("toolResult"), dict):
            words.append(_blocks_text(block["toolResult"].get("content")))
    return " ".join(words)


def count_input_tokens(body: Json) -> int:
    words = len(_blocks_text(body.get("system")).split())
    for message in body.get("messages") or ():
        if isinstance(message, dict):
            words += len(_blocks_text(message.get("content")).split())
    return words


def chosen_tool(body: Json) -> tuple[str, Json] | None:
    """(tool name, input) when the request offers tools."""
    config = body.get("toolConfig") or {}
    tools = [t["toolSpec"] for t in config.get("tools") or () if isinstance(t, dict) and "toolSpec" in t]
    if not tools:
        return None
    wanted = ((config.get("toolChoice") or {}).get("tool") or {}).get("name")
    for spec in tools:
        if wanted is None or spec.get("name") == wanted:
            return str(spec.get("name")), _sample_input((spec.get("inputSchema") or {}).get("json") or {})
    return None


def _sample_input(schema: Json) -> Json:
    properties: Json = schema.get("properties") or {}
    values: Json = {}
    for name in schema.get("required") or list(properties):
        prop = properties.get(name) or {}
        values[name] = prop["enum"][0] if prop.get("enum") else _SAMPLE_VALUES.get(prop.get("type", ""), "example")
    return values


def reply_pieces(body: Json) -> tuple[list[str], str]:
    """The reply's pieces as `inferenceConfig` (`maxTokens`, `stopSequences`) leaves them, and the stop reason."""
    inference = body.get("inferenceConfig") or {}
    text = ""
    pieces: list[str] = []
    for piece in REPLY_PIECES:
        if len(pieces) == inference.get("maxTokens"):
            return pieces, "max_tokens"
        for stop in inference.get("stopSequences") or ():
            if stop and stop in text + piece:
                kept = piece[:max(0, (text + piece).index(stop) - len(text))]
                return ([*pieces, kept] if kept else pieces), "stop_sequence"
        pieces.append(piece)
        text += piece
    return pieces, "end_turn"


# -- answers ----------------------------------------------------------------------------
def usage(input_tokens: int, output_tokens: int, cache_read: int = 0, cache_write: int = 0) -> Json:
    use: Json = {"inputTokens": input_tokens, "outputTokens": output_tokens,
                 "totalTokens": input_tokens + output_tokens + cache_read + cache_write}
    if cache_read or cache_write:
        use["cacheReadInputTokens"] = cache_read
        use["cacheWriteInputTokens"] = cache_write
    return use


def text_block(text: str) -> Json:
    return {"text": text}


def tool_use_block(name: str, tool_input: Json, use_id: str | None = None) -> Json:
    return {"toolUse": {"toolUseId": use_id or tool_use_id(), "name": name, "input": tool_input}}


def converse_response(content: list[Json], stop_reason: str, use: Json) -> Json:
    return {"output": {"message": {"role": "assistant", "content": content}}, "stopReason": stop_reason,
            "usage": use, "metrics": {"latencyMs": LATENCY_MS}}


# -- streams: (event type, payload) pairs -------------------------------------------------
Event = tuple[str, Json]


def _padded(body: Json) -> Json:
    return {**body, "p": padding()}


def message_start() -> Event:
    return "messageStart", _padded({"role": "assistant"})


def text_deltas(index: int, pieces: list[str]) -> list[Event]:
    """A text block streams as deltas only (no contentBlockStart), then its stop."""
    events: list[Event] = [("contentBlockDelta", _padded({"contentBlockIndex": index, "delta": {"text": p}}))
                           for p in pieces]
    return [*events, ("contentBlockStop", _padded({"contentBlockIndex": index}))]


def tool_events(index: int, name: str, tool_input: Json) -> list[Event]:
    arguments = json.dumps(tool_input)
    step = max(1, len(arguments) // 3)
    start = {"contentBlockIndex": index, "start": {"toolUse": {"toolUseId": tool_use_id(), "name": name}}}
    events: list[Event] = [("contentBlockStart", _padded(start))]
    events += [("contentBlockDelta", _padded({"contentBlockIndex": index,
                                              "delta": {"toolUse": {"input": arguments[i:i + step]}}}))
               for i in range(0, len(arguments), step)]
    return [*events, ("contentBlockStop", _padded({"contentBlockIndex": index}))]


def message_stop(stop_reason: str) -> Event:
    return "messageStop", _padded({"stopReason": stop_reason})


def metadata(use: Json) -> Event:
    return "metadata", _padded({"usage": use, "metrics": {"latencyMs": LATENCY_MS}})


def text_stream(pieces: list[str], stop_reason: str, use: Json) -> list[Event]:
    return [message_start(), *text_deltas(0, pieces), message_stop(stop_reason), metadata(use)]


def tool_stream(name: str, tool_input: Json, use: Json) -> list[Event]:
    return [message_start(), *text_deltas(0, [TOOL_PREAMBLE]), *tool_events(1, name, tool_input),
            message_stop("tool_use"), metadata(use)]


# -- Titan Text Embeddings (InvokeModel) ----------------------------------------------------
def titan_embedding(text: str, dimensions: int) -> list[float]:
    """A deterministic unit vector for a text (Titan V2 normalizes by default)."""
    digest = hashlib.sha256(text.encode()).digest()
    raw = [(digest[i % len(digest)] - 127.5) / 127.5 + i / (dimensions * 10.0) for i in range(dimensions)]
    norm = math.sqrt(sum(v * v for v in raw)) or 1.0
    return [v / norm for v in raw]


def titan_response(text: str, dimensions: int) -> Json:
    vector = titan_embedding(text, dimensions)
    return {"embedding": vector, "inputTextTokenCount": len(text.split()), "embeddingsByType": {"float": vector}}


# -- errors: (exception, HTTP status, message) ----------------------------------------------
ErrorSpec = tuple[str, int, str]

THROTTLING: ErrorSpec = ("ThrottlingException", 429, "Too many requests, please wait before trying again.")
SERVICE_UNAVAILABLE: ErrorSpec = ("ServiceUnavailableException", 503, "Bedrock is unable to process your request.")
MODEL_NOT_READY: ErrorSpec = ("ModelNotReadyException", 429,
                              "Model is not ready for inference. Wait and try your request again.")
INTERNAL: ErrorSpec = ("InternalServerException", 500,
                       "The server encountered an internal error while processing the request.")
ACCESS_DENIED: ErrorSpec = ("AccessDeniedException", 403, "You don't have access to the model with the specified model ID.")
UNRECOGNIZED_CLIENT: ErrorSpec = ("UnrecognizedClientException", 403, "The security token included in the request is invalid.")
INVALID_SIGNATURE: ErrorSpec = ("InvalidSignatureException", 403,
                                "The request signature we calculated does not match the signature you provided. Check "
                                "your AWS Secret Access Key and signing method. Consult the service documentation for "
                                "details.")
NOT_FOUND: ErrorSpec = ("ResourceNotFoundException", 404, "Could not resolve the foundation model from the provided "
                                                          "model identifier.")
MODEL_TIMEOUT: ErrorSpec = ("ModelTimeoutException", 408, "Model has timed out in processing the request. Try your "
                                                          "request again.")
INPUT_TOO_LONG: ErrorSpec = ("ValidationException", 400, "Input is too long for requested model.")


def validation(message: str) -> ErrorSpec:
    return ("ValidationException", 400, message)


def error_body(spec: ErrorSpec) -> Json:
    return {"message": spec[2]}


def error_type_header(exception: str) -> str:
    """The `x-amzn-ErrorType` header an error answer names its exception in."""
    return f"{exception}:http://internal.amazon.com/coral/com.amazon.bedrock/"


def stream_exception_type(exception: str) -> str:
    """Inside a ConverseStream, exceptions are named in lower camel case (`throttlingException`)."""
    return exception[:1].lower() + exception[1:]
