"""Failover across a model's deployments, with a ModelRegistry built from a GatewayConfig
whose deployments live on a real fake-OpenAI server (and on the built-in mock)."""
from __future__ import annotations

from typing import Any

import httpx
import pytest

from services.router.failover import RouteFailure, call_with_failover, open_stream_with_failover
from services.router.providers.base import Completion
from services.router.providers.openai import payloads
from services.router.registry import ModelRegistry, RoutedModel, Target
from shared.config import GatewayConfig
from tests.fakes.openai_upstream import FakeOpenAI

BODY: dict[str, Any] = {"model": "gateway", "messages": [{"role": "user", "content": "Hi there"}]}


@pytest.fixture
def registry(fake: FakeOpenAI, http: httpx.AsyncClient) -> ModelRegistry:
    fake.clear()
    config = GatewayConfig.model_validate({
        "providers": [{"name": "fake", "type": "openai", "base_url": fake.base_url, "timeout_s": 10},
                      {"name": "local", "type": "mock", "reply": "from the mock"}],
        "models": [
            {"name": "second-answers", "deployments": [{"provider": "fake", "model": "fail-500"},
                                                       {"provider": "fake", "model": "gpt-4o-mini"}]},
            {"name": "bad-request", "deployments": [{"provider": "fake", "model": "fail-400"},
                                                    {"provider": "fake", "model": "gpt-4o-mini"}]},
            {"name": "all-fail", "deployments": [{"provider": "fake", "model": "fail-500"},
                                                 {"provider": "fake", "model": "fail-503"},
                                                 {"provider": "fake", "model": "fail-429"}]},
            {"name": "cross-provider", "deployments": [{"provider": "fake", "model": "fail-401"},
                                                       {"provider": "local", "model": "mock-1"}]},
        ],
    })
    return ModelRegistry(config, http)


def routed(registry: ModelRegistry, name: str) -> RoutedModel:
    model = registry.get(name)
    assert model is not None
    return model


async def chat(target: Target, body: dict[str, Any]) -> Completion:
    return await target.provider.chat(body, target.model)


def seen(fake: FakeOpenAI) -> list[str]:
    return [r.json["model"] for r in fake.requests]


def test_registry_keeps_deployment_order(registry: ModelRegistry) -> None:
    targets = routed(registry, "all-fail").targets
    assert [(t.provider.name, t.model) for t in targets] == [("fake", "fail-500"), ("fake", "fail-503"),
                                                             ("fake", "fail-429")]
    assert routed(registry, "cross-provider").targets[1].provider.name == "local"
    assert registry.get("no-such-model") is None


async def test_retryable_failure_moves_to_the_next_deployment(registry, fake: FakeOpenAI) -> None:
    answer = await call_with_failover(routed(registry, "second-answers"), BODY, chat)
    assert answer.attempts == 2
    assert answer.target.model == "gpt-4o-mini"
    assert answer.completion.body["model"] == "gpt-4o-mini"
    assert answer.completion.usage is not None
    assert seen(fake) == ["fail-500", "gpt-4o-mini"]


async def test_failover_crosses_provider_types(registry, fake: FakeOpenAI) -> None:
    answer = await call_with_failover(routed(registry, "cross-provider"), BODY, chat)
    assert (answer.attempts, answer.target.provider.name) == (2, "local")
    assert answer.completion.body["choices"][0]["message"]["content"] == "from the mock"
    assert seen(fake) == ["fail-401"]


async def test_non_retryable_error_stops_at_the_first_deployment(registry, fake: FakeOpenAI) -> None:
    with pytest.raises(RouteFailure) as caught:
        await call_with_failover(routed(registry, "bad-request"), BODY, chat)
    failure = caught.value
    assert failure.attempts == 1
    assert failure.target is not None and failure.target.model == "fail-400"
    assert (failure.error.status, failure.error.retryable) == (400, False)
    assert seen(fake) == ["fail-400"]


async def test_all_deployments_failing_raise_the_last_error(registry, fake: FakeOpenAI) -> None:
    with pytest.raises(RouteFailure) as caught:
        await call_with_failover(routed(registry, "all-fail"), BODY, chat)
    failure = caught.value
    assert failure.attempts == 3
    assert failure.target is not None and failure.target.model == "fail-429"
    assert failure.error.status == 429 and failure.error.code == "rate_limit_exceeded"
    assert str(failure) == failure.error.message
    assert seen(fake) == ["fail-500", "fail-503", "fail-429"]


async def test_stream_fails_over_before_the_first_chunk(registry, fake: FakeOpenAI) -> None:
    opened = await open_stream_with_failover(routed(registry, "second-answers"), BODY)
    rest = [chunk async for chunk in opened.rest]
    assert (opened.attempts, opened.target.model) == (2, "gpt-4o-mini")
    assert opened.first.parsed["object"] == "chat.completion.chunk"
    text = "".join(c.parsed["choices"][0]["delta"].get("content") or ""
                   for c in [opened.first, *rest] if c.parsed["choices"])
    assert text == payloads.REPLY_TEXT
    assert rest[-1].is_usage_only
    assert seen(fake) == ["fail-500", "gpt-4o-mini"]


async def test_stream_non_retryable_error_stops_at_the_first(registry, fake: FakeOpenAI) -> None:
    with pytest.raises(RouteFailure) as caught:
        await open_stream_with_failover(routed(registry, "bad-request"), BODY)
    assert (caught.value.attempts, caught.value.error.status) == (1, 400)
    assert seen(fake) == ["fail-400"]


async def test_stream_with_all_deployments_failing(registry, fake: FakeOpenAI) -> None:
    with pytest.raises(RouteFailure) as caught:
        await open_stream_with_failover(routed(registry, "all-fail"), BODY)
    assert caught.value.attempts == 3
    assert caught.value.error.status == 429 and caught.value.error.retryable
    assert seen(fake) == ["fail-500", "fail-503", "fail-429"]
