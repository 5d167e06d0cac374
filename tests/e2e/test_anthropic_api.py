"""The official anthropic SDK against the gateway's `POST /v1/messages` and `count_tokens`,
through the whole gateway (ingress, guardrails, router, accounting processes), in front of
a model on the fake OpenAI and one on the fake Anthropic: plain, streamed, tools, system
prompt, errors, and usage charged once."""
from __future__ import annotations

from typing import Any

import anthropic
import pytest

from services.router.providers.anthropic import payloads as claude_payloads
from services.router.providers.openai import payloads as openai_payloads
from tests.e2e.conftest import pg_rows
from tests.e2e.gateway import Gateway, wait_for
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.openai_upstream import FakeOpenAI

SYSTEM = "You answer in one sentence."
QUESTION = "What is the weather like in Paris today?"
WEATHER: Any = {"name": "get_weather", "description": "Weather for a city",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
REPLIES = {"gpt-4o-mini": openai_payloads.REPLY_TEXT, "claude-sonnet": claude_payloads.REPLY_TEXT}
MODELS = pytest.mark.parametrize("model", list(REPLIES))


@pytest.fixture(scope="module")
def key(gateway: Gateway) -> str:
    return gateway.create_key("anthropic-api-tests")[0]


@pytest.fixture(scope="module")
def client(gateway: Gateway, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0)


def _ask(question: str = QUESTION) -> list[Any]:
    return [{"role": "user", "content": question}]


def _upstream_request(fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic, model: str,
                      question: str) -> dict[str, Any]:
    """What the upstream of `model` received for the request carrying `question`."""
    requests = fake_openai.requests if model == "gpt-4o-mini" else fake_anthropic.requests
    return [r.json for r in requests if r.json and question in str(r.json.get("messages"))][-1]  # type: ignore[no-any-return]


@MODELS
def test_plain_message_with_system_prompt(client: anthropic.Anthropic, model: str, fake_openai: FakeOpenAI,
                                          fake_anthropic: FakeAnthropic) -> None:
    question = f"Plain question for {model}?"
    message = client.messages.create(model=model, max_tokens=256, system=SYSTEM, messages=_ask(question))
    assert message.type == "message" and message.role == "assistant" and message.id.startswith("msg_")
    assert message._request_id
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == REPLIES[model]  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn" and message.stop_sequence is None
    assert message.usage.input_tokens > 0 and message.usage.output_tokens == 10
    sent = _upstream_request(fake_openai, fake_anthropic, model, question)
    if model == "gpt-4o-mini":
        assert sent["messages"][0] == {"role": "system", "content": SYSTEM} and sent["max_tokens"] == 256
    else:  # the anthropic provider type turned the system message back into Anthropic's `system`
        assert sent["system"] == [{"type": "text", "text": SYSTEM}] and sent["max_tokens"] == 256
        assert message.id.startswith("msg_01")  # the upstream's own message id


def test_max_tokens_stop_reason(client: anthropic.Anthropic) -> None:
    message = client.messages.create(model="claude-sonnet", max_tokens=3, messages=_ask())
    assert message.stop_reason == "max_tokens" and message.usage.output_tokens == 3


@MODELS
def test_stream_text_deltas_and_final_usage(client: anthropic.Anthropic, model: str) -> None:
    with client.messages.stream(model=model, max_tokens=256, system=SYSTEM, messages=_ask()) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == REPLIES[model] and final.content[0].text == text  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 10 and final.usage.input_tokens > 0


def test_stream_event_sequence(client: anthropic.Anthropic) -> None:
    events = list(client.messages.create(model="gpt-4o-mini", max_tokens=256, messages=_ask(), stream=True))
    types = [event.type for event in events]
    assert types[0] == "message_start" and types[-2:] == ["message_delta", "message_stop"]
    assert types[1:4] == ["content_block_start", "content_block_delta", "content_block_delta"]
    assert types[-3] == "content_block_stop"
    delta = events[-2]
    assert delta.type == "message_delta" and delta.usage.output_tokens == 10
    assert delta.delta.stop_reason == "end_turn"


@MODELS
def test_tool_use_round_trip(client: anthropic.Anthropic, model: str, fake_openai: FakeOpenAI,
                             fake_anthropic: FakeAnthropic) -> None:
    first = client.messages.create(model=model, max_tokens=256, messages=_ask(), tools=[WEATHER],
                                   tool_choice={"type": "any"})
    assert first.stop_reason == "tool_use"
    (call,) = [block for block in first.content if block.type == "tool_use"]
    assert call.name == "get_weather" and isinstance(call.input, dict) and isinstance(call.input["city"], str)

    follow_up = f"And is that warm, {model}?"
    answer = client.messages.create(model=model, max_tokens=256, tools=[WEATHER], messages=[
        *_ask(), {"role": "assistant", "content": first.content},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "18 C and sunny"},
                                     {"type": "text", "text": follow_up}]}],
        tool_choice={"type": "none"})
    assert answer.stop_reason == "end_turn" and answer.content[0].text == REPLIES[model]  # type: ignore[union-attr]
    sent = _upstream_request(fake_openai, fake_anthropic, model, follow_up)
    if model == "gpt-4o-mini":
        assert sent["messages"][-2] == {"role": "tool", "tool_call_id": call.id, "content": "18 C and sunny"}
        assert sent["messages"][-3]["tool_calls"][0]["id"] == call.id
    else:  # and the fake Anthropic accepted the tool_result answering the tool_use before it
        assert sent["messages"][2]["content"][0] == {"type": "tool_result", "tool_use_id": call.id,
                                                     "content": "18 C and sunny"}


@MODELS
def test_streamed_tool_use(client: anthropic.Anthropic, model: str) -> None:
    with client.messages.stream(model=model, max_tokens=256, messages=_ask(), tools=[WEATHER],
                                tool_choice={"type": "tool", "name": "get_weather"}) as stream:
        final = stream.get_final_message()
    (call,) = [block for block in final.content if block.type == "tool_use"]
    assert call.name == "get_weather" and isinstance(call.input, dict) and "city" in call.input
    assert final.stop_reason == "tool_use"


def test_bearer_token_is_accepted(gateway: Gateway, key: str) -> None:
    client = anthropic.Anthropic(base_url=gateway.url, auth_token=key, api_key=None, max_retries=0)
    assert client.messages.create(model="gpt-4o-mini", max_tokens=16, messages=_ask()).content


def test_errors_in_anthropic_shapes(gateway: Gateway, client: anthropic.Anthropic) -> None:
    bad = anthropic.Anthropic(base_url=gateway.url, api_key="jg-not-a-real-key", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as unauthorized:
        bad.messages.create(model="gpt-4o-mini", max_tokens=16, messages=_ask())
    assert unauthorized.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    assert "jg-not-a-real-key" not in str(unauthorized.value.body)

    with pytest.raises(anthropic.NotFoundError) as unknown:
        client.messages.create(model="no-such-model", max_tokens=16, messages=_ask())
    request_id = unknown.value.response.headers["x-request-id"]
    assert unknown.value.request_id == request_id  # the SDK reads `request-id`
    assert unknown.value.body == {"type": "error", "request_id": request_id, "error": {
        "type": "not_found_error", "message": unknown.value.body["error"]["message"]}}  # type: ignore[index]
    assert "no-such-model" in unknown.value.message

    with pytest.raises(anthropic.NotFoundError):
        client.messages.create(model="no-such-model", max_tokens=16, messages=_ask(), stream=True)

    with pytest.raises(anthropic.BadRequestError) as invalid:
        client.messages.create(model="gpt-4o-mini", max_tokens=16, messages=[])
    assert invalid.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert "messages" in invalid.value.message

    with pytest.raises(anthropic.BadRequestError) as hot:
        client.messages.create(model="gpt-4o-mini", max_tokens=16, messages=_ask(), extra_body={"temperature": 1.5})
    assert "temperature" in hot.value.message

    with pytest.raises(anthropic.BadRequestError) as blocked:  # the chat pipeline's guardrails, as for chat
        client.messages.create(model="gpt-4o-mini", max_tokens=16, messages=_ask("This is top secret."))
    assert "no-top-secret" in blocked.value.message


def test_upstream_failures_in_anthropic_shapes(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.RateLimitError) as limited:
        client.messages.create(model="rate-limited", max_tokens=16, messages=_ask())
    assert limited.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    assert limited.value.response.headers["retry-after"] == "7"  # the upstream's
    with pytest.raises(anthropic.InternalServerError) as failed:  # before the stream started: an HTTP error
        client.messages.create(model="always-500", max_tokens=16, messages=_ask(), stream=True)
    assert failed.value.status_code == 502 and failed.value.body["error"]["type"] == "api_error"  # type: ignore[index]


@pytest.mark.parametrize("stream", [False, True])
def test_prompt_cache_counts(client: anthropic.Anthropic, stream: bool) -> None:
    if stream:
        with client.messages.stream(model="claude-cached", max_tokens=64, system=SYSTEM, messages=_ask()) as events:
            usage = events.get_final_message().usage
    else:
        usage = client.messages.create(model="claude-cached", max_tokens=64, system=SYSTEM, messages=_ask()).usage
    words = len(SYSTEM.split()) + len(QUESTION.split())  # the fake Anthropic's count
    assert (usage.input_tokens, usage.output_tokens) == (words, 10)
    assert usage.cache_read_input_tokens == claude_payloads.CACHE_READ_TOKENS
    assert usage.cache_creation_input_tokens == claude_payloads.CACHE_CREATION_TOKENS


def test_a_model_outside_the_keys_allowlist_is_permission_error(gateway: Gateway) -> None:
    key, _ = gateway.create_key("anthropic-limited", models=["gpt-4o"])
    limited = anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0)
    with pytest.raises(anthropic.PermissionDeniedError) as denied:
        limited.messages.create(model="gpt-4o-mini", max_tokens=16, messages=_ask())
    assert denied.value.body["error"]["type"] == "permission_error"  # type: ignore[index]


def test_count_tokens(client: anthropic.Anthropic) -> None:
    short = client.messages.count_tokens(model="claude-sonnet", messages=_ask("Hi"))
    longer = client.messages.count_tokens(model="claude-sonnet", system=SYSTEM, messages=_ask(QUESTION * 10))
    with_tools = client.messages.count_tokens(model="claude-sonnet", system=SYSTEM, messages=_ask(QUESTION * 10),
                                              tools=[WEATHER])
    assert 0 < short.input_tokens < longer.input_tokens < with_tools.input_tokens
    with pytest.raises(anthropic.NotFoundError):
        client.messages.count_tokens(model="no-such-model", messages=_ask())


@pytest.mark.parametrize("stream", [False, True])
def test_usage_is_charged_once(gateway: Gateway, stream: bool) -> None:
    key, key_id = gateway.create_key(f"anthropic-charged-{stream}")
    client = anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0)
    if stream:
        with client.messages.stream(model="gpt-4o-mini", max_tokens=64, messages=_ask()) as events:
            message = events.get_final_message()
            request_id = events.response.headers["x-request-id"]
    else:
        raw = client.messages.with_raw_response.create(model="gpt-4o-mini", max_tokens=64, messages=_ask())
        message, request_id = raw.parse(), raw.headers["x-request-id"]

    def ledger() -> list[Any]:
        return pg_rows(gateway, "SELECT * FROM spend_ledger WHERE key_id = $1", key_id)

    rows = wait_for(ledger)
    assert len(rows) == 1 and rows[0]["request_id"] == request_id
    assert (rows[0]["prompt_tokens"], rows[0]["completion_tokens"]) == (
        message.usage.input_tokens, message.usage.output_tokens)

    def audit() -> list[str]:
        found = pg_rows(gateway, "SELECT type FROM audit_log WHERE request_id = $1", request_id)
        return sorted(r["type"] for r in found) if len(found) >= 2 else []

    assert wait_for(audit) == ["request.completed", "request.received"]


def test_client_leaving_mid_stream_stops_the_upstream_and_is_charged(gateway: Gateway, fake_openai: FakeOpenAI) -> None:
    key, key_id = gateway.create_key("anthropic-leaves")
    client = anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0)
    aborted_before = fake_openai.streams_aborted
    with client.messages.stream(model="slow-stream", max_tokens=64, messages=_ask()) as stream:
        texts = [text for _, text in zip(range(3), stream.text_stream, strict=False)]
    assert len(texts) == 3
    rows = wait_for(lambda: pg_rows(gateway, "SELECT * FROM spend_ledger WHERE key_id = $1", key_id))
    assert len(rows) == 1 and rows[0]["status"] == "cancelled" and rows[0]["completion_tokens"] > 0
    wait_for(lambda: fake_openai.streams_aborted > aborted_before, timeout=10)
