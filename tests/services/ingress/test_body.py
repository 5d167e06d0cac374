"""Reading and validating request bodies: the size limit and OpenAI-shaped 400s."""
from __future__ import annotations

from collections.abc import Iterable

import orjson
import pytest
from starlette.requests import Request

from services.ingress.body import parse_body, read_body
from shared.errors import InvalidRequest, PayloadTooLarge
from shared.openai_types import ChatCompletionRequest, EmbeddingsRequest


def request(chunks: Iterable[bytes], content_length: int | None = None) -> Request:
    pending = [{"type": "http.request", "body": c, "more_body": True} for c in chunks]
    pending.append({"type": "http.request", "body": b"", "more_body": False})

    async def receive() -> dict[str, object]:
        return pending.pop(0)

    headers = [(b"content-length", str(content_length).encode())] if content_length is not None else []
    return Request({"type": "http", "method": "POST", "path": "/", "headers": headers}, receive)  # type: ignore[arg-type]


async def test_body_within_the_limit_is_read_whole() -> None:
    assert await read_body(request([b'{"a":', b"1}"]), limit=100) == b'{"a":1}'


async def test_declared_length_over_the_limit_is_refused_before_reading() -> None:
    with pytest.raises(PayloadTooLarge) as caught:
        await read_body(request([b"x"], content_length=101), limit=100)
    assert caught.value.status == 413 and "100 bytes" in caught.value.message


async def test_streamed_body_over_the_limit_is_refused_without_a_length() -> None:
    with pytest.raises(PayloadTooLarge):
        await read_body(request([b"x" * 60, b"x" * 60]), limit=100)


@pytest.mark.parametrize(("raw", "message"), [
    (b"", "empty"), (b"{not json", "could not parse"), (b"[1, 2]", "JSON object"),
])
def test_bodies_that_are_not_a_json_object(raw: bytes, message: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_body(raw, ChatCompletionRequest)
    assert message in caught.value.message and caught.value.status == 400


def test_missing_field_names_the_parameter() -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_body(b'{"model": "m"}', ChatCompletionRequest)
    assert caught.value.param == "messages" and caught.value.code == "missing_required_parameter"
    assert caught.value.message == "Missing required parameter: 'messages'."


USER = {"role": "user", "content": "x"}


def chat(**fields: object) -> bytes:
    return orjson.dumps({"model": "m", "messages": [USER], **fields})


@pytest.mark.parametrize(("body", "param", "code", "message"), [
    (chat(stream="yes"), "stream", "invalid_type",
     "Invalid type for 'stream': expected a boolean, but got a string instead."),
    (chat(messages=[{"role": "wizard", "content": "x"}]), "messages[0].role", "invalid_value",
     "Invalid value: 'wizard'. Supported values are: 'system', 'developer', 'user', 'assistant', 'tool', and 'function'."),
    (chat(messages=[{"content": "x"}]), "messages[0].role", "missing_required_parameter",
     "Missing required parameter: 'messages[0].role'."),
    (chat(messages=[USER, {"role": "user"}]), "messages[1].content", "missing_required_parameter",
     "Missing required parameter: 'messages[1].content'."),
    (chat(messages=[{"role": "tool", "content": "x"}]), "messages[0].tool_call_id", "missing_required_parameter",
     "Missing required parameter: 'messages[0].tool_call_id'."),
    (chat(messages=[{"role": "user", "content": 5}]), "messages[0].content", "invalid_type",
     "Invalid type for 'messages[0].content': expected one of a string or array of objects, but got an integer instead."),
    (chat(messages=["hello"]), "messages[0]", "invalid_type",
     "Invalid type for 'messages[0]': expected an object, but got a string instead."),
    (chat(messages=[{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "video"}]}]),
     "messages[0].content[1].type", "invalid_value",
     "Invalid value: 'video'. Supported values are: 'text', 'image_url', 'input_audio', and 'file'."),
    (chat(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": 5}}]}]),
     "messages[0].content[0].image_url.url", "invalid_type",
     "Invalid type for 'messages[0].content[0].image_url.url': expected a string, but got an integer instead."),
    (chat(messages=[{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "u"}}]}]),
     "messages[0].content[0].type", "invalid_value",
     "Invalid value: 'image_url'. Supported values are: 'text'."),
    (chat(messages=[{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "", "format": "ogg"}}]}]),
     "messages[0].content[0].input_audio.format", "invalid_value",
     "Invalid value: 'ogg'. Supported values are: 'wav' and 'mp3'."),
    (chat(messages=[{"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f"}}]}]),
     "messages[0].tool_calls[0].function.arguments", "missing_required_parameter",
     "Missing required parameter: 'messages[0].tool_calls[0].function.arguments'."),
    (chat(messages=[]), "messages", "empty_array",
     "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead."),
    (chat(temperature=3), "temperature", "decimal_above_max_value",
     "Invalid 'temperature': decimal above maximum value. Expected a value <= 2, but got 3 instead."),
    (chat(top_p=-0.5), "top_p", "decimal_below_min_value",
     "Invalid 'top_p': decimal below minimum value. Expected a value >= 0, but got -0.5 instead."),
    (chat(temperature="0.5"), "temperature", "invalid_type",
     "Invalid type for 'temperature': expected a number, but got a string instead."),
    (chat(max_tokens=0), "max_tokens", "integer_below_min_value",
     "Invalid 'max_tokens': integer below minimum value. Expected a value >= 1, but got 0 instead."),
    (chat(max_completion_tokens=1.5), "max_completion_tokens", "invalid_type",
     "Invalid type for 'max_completion_tokens': expected an integer, but got a decimal instead."),
    (chat(n=0), "n", "integer_below_min_value",
     "Invalid 'n': integer below minimum value. Expected a value >= 1, but got 0 instead."),
    (chat(stop=["a", "b", "c", "d", "e"]), "stop", "array_above_max_length",
     "Invalid 'stop': array too long. Expected an array with maximum length 4, but got an array with length 5 instead."),
    (chat(stop=7), "stop", "invalid_type",
     "Invalid type for 'stop': expected one of a string or array of strings, but got an integer instead."),
    (chat(tool_choice="always"), "tool_choice", "invalid_value",
     "Invalid value: 'always'. Supported values are: 'none', 'auto', and 'required'."),
    (chat(tools=[{"type": "function", "function": {"name": "has space"}}]), "tools[0].function.name", "invalid_value",
     "Invalid 'tools[0].function.name': string does not match pattern. Expected a string that matches the pattern "
     "'^[a-zA-Z0-9_-]{1,64}$'."),
    (chat(response_format={"type": "xml"}), "response_format.type", "invalid_value",
     "Invalid value: 'xml'. Supported values are: 'text', 'json_object', and 'json_schema'."),
    (chat(stream_options={"include_usage": "yes"}), "stream_options.include_usage", "invalid_type",
     "Invalid type for 'stream_options.include_usage': expected a boolean, but got a string instead."),
    (chat(logit_bias={"50256": -101}), "logit_bias.50256", "integer_below_min_value",
     "Invalid 'logit_bias.50256': integer below minimum value. Expected a value >= -100, but got -101 instead."),
    (chat(seed="42"), "seed", "invalid_type", "Invalid type for 'seed': expected an integer, but got a string instead."),
    (chat(metadata={str(i): "v" for i in range(17)}), "metadata", "object_above_max_properties",
     "Invalid 'metadata': too many properties. Expected an object with at most 16 properties, but got 17 instead."),
    (chat(model=""), "model", "empty_string",
     "Invalid 'model': empty string. Expected a string with minimum length 1, but got an empty string instead."),
])
def test_chat_is_validated_as_openai_does(body: bytes, param: str, code: str, message: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_body(body, ChatCompletionRequest)
    error = caught.value
    assert (error.status, error.type, error.param, error.code, error.message) == (
        400, "invalid_request_error", param, code, message)


@pytest.mark.parametrize(("body", "param", "code"), [
    (b'{"model": "m", "input": ""}', "input", "empty_string"),
    (b'{"model": "m", "input": []}', "input", "empty_array"),
    (b'{"model": "m", "input": 5}', "input", "invalid_type"),
    (b'{"model": "m", "input": ["a", 5]}', "input[1]", "invalid_type"),
    (b'{"model": "m", "input": [1, "a"]}', "input[1]", "invalid_type"),
    (b'{"model": "m", "input": [[1], []]}', "input[1]", "empty_array"),
    (orjson.dumps({"model": "m", "input": ["a"] * 2049}), "input", "array_above_max_length"),
    (b'{"model": "m", "input": "a", "encoding_format": "hex"}', "encoding_format", "invalid_value"),
    (b'{"model": "m", "input": "a", "dimensions": 0}', "dimensions", "integer_below_min_value"),
])
def test_embeddings_are_validated_as_openai_does(body: bytes, param: str, code: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_body(body, EmbeddingsRequest)
    assert (caught.value.param, caught.value.code) == (param, code)


@pytest.mark.parametrize("body", [
    chat(messages=[
        {"role": "developer", "content": [{"type": "text", "text": "be brief"}]},
        {"role": "user", "name": "ann", "content": [
            {"type": "text", "text": "what is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}},
            {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
            {"type": "file", "file": {"file_id": "file-1"}}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "look", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "a cat"},
        {"role": "function", "name": "look", "content": None}],
        tools=[{"type": "function", "function": {"name": "look", "parameters": {"type": "object"}, "strict": True}}],
        tool_choice={"type": "function", "function": {"name": "look"}}, parallel_tool_calls=False,
        response_format={"type": "json_schema", "json_schema": {"name": "out", "schema": {"type": "object"}}},
        n=2, temperature=0, top_p=1, max_completion_tokens=5, stream=True, stream_options={"include_usage": True},
        stop=["\n"], logit_bias={"50256": -100}, seed=7, user="u", metadata={"k": "v"}, reasoning_effort="new-level"),
    chat(stop="END", tool_choice="required", max_tokens=1, frequency_penalty=-2, presence_penalty=2),
])
def test_what_openai_takes_passes(body: bytes) -> None:
    assert parse_body(body, ChatCompletionRequest).model == "m"


def test_unknown_fields_pass_validation_untouched() -> None:
    parsed = parse_body(b'{"model": "m", "input": "x", "user": "u-1", "x_vendor": {"a": 1}}', EmbeddingsRequest)
    assert parsed.model_extra == {"x_vendor": {"a": 1}} and parsed.user == "u-1"
    chat_parsed = parse_body(chat(messages=[{**USER, "x_part": [1]}], x_top={"b": 2}), ChatCompletionRequest)
    assert chat_parsed.model_extra == {"x_top": {"b": 2}}
    assert chat_parsed.messages[0].model_extra == {"x_part": [1]}


def nested(levels: int) -> bytes:
    """A chat body whose deepest container is at `levels` (the body object is level 1)."""
    inner = b"{\"a\":" * (levels - 1) + b"1" + b"}" * (levels - 1)
    return b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "x": ' + inner + b"}"


def test_json_nested_to_the_limit_passes_and_one_deeper_is_refused() -> None:
    assert parse_body(nested(8), ChatCompletionRequest, max_depth=8).model == "m"
    with pytest.raises(InvalidRequest) as caught:
        parse_body(nested(9), ChatCompletionRequest, max_depth=8)
    assert caught.value.code == "json_too_deep" and "8 levels" in caught.value.message


@pytest.mark.parametrize("raw", [nested(255), b"[" * 5000 + b"]" * 5000, b'{"a":' * 5000 + b"1" + b"}" * 5000])
def test_very_deep_json_is_a_400_not_a_crash(raw: bytes) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_body(raw, ChatCompletionRequest)
    assert caught.value.status == 400 and caught.value.code == "json_too_deep"


def test_brackets_inside_strings_do_not_count_as_depth() -> None:
    body = chat(messages=[{"role": "user", "content": "[[[[{{{{" * 100}])
    assert parse_body(body, ChatCompletionRequest, max_depth=8).model == "m"


@pytest.mark.parametrize("text", ['\\\\[[[[[[[[[[', '\\"[[[[[[[[[[', '\\\\\\"{{{{{{{{{{', "]]]]]]]]]]", "\\n\\t[[[[[[[[[["])
def test_escapes_inside_strings_do_not_count_as_depth(text: str) -> None:
    body = b'{"model": "m", "messages": [{"role": "user", "content": "' + text.encode() + b'"}], "x": [[[[[1]]]]]}'
    assert orjson.loads(body)  # valid JSON
    assert parse_body(body, ChatCompletionRequest, max_depth=8).model == "m"
    with pytest.raises(InvalidRequest):
        parse_body(body.replace(b"[[[[[1]]]]]", b"[[[[[[[[1]]]]]]]]"), ChatCompletionRequest, max_depth=8)


def test_depth_counts_token_arrays_and_nested_objects_alike() -> None:
    tokens = orjson.dumps({"model": "m", "input": [[1, 2, 3]] * 100})  # level 3: many brackets, shallow
    assert parse_body(tokens, EmbeddingsRequest, max_depth=3).model == "m"
    with pytest.raises(InvalidRequest):
        parse_body(tokens, EmbeddingsRequest, max_depth=2)
