"""Failover across a route's deployments, with the router's ProviderRegistry built from a
GatewayConfig whose deployments live on a real fake-OpenAI server (and on the built-in mock)."""
from __future__ import annotations

from typing import Any

import orjson
import pytest

from services.ingress.policy import route_of
from services.router.failover import RouteFailure, call_with_failover, open_stream_with_failover
from services.router.http_client import UpstreamHttp
from services.router.providers.base import ChatCall, Completion
from services.router.providers.openai import payloads
from services.router.registry import ProviderRegistry, Target
from shared.config import GatewayConfig
from shared.errors import GatewayError
from shared.protocol import Route
from tests.fakes.openai_upstream import FakeOpenAI

BODY: dict[str, Any] = {"model": "gateway", "messages": [{"role": "user", "content": "Hi there"}]}


class Routes:
    """Routes as the ingress decides them, on the router's providers."""

    def __init__(self, config: GatewayConfig, http: UpstreamHttp) -> None:
        self.providers = ProviderRegistry(config, http)
        self.routes = {model.name: route_of(model) for model in config.models}

    def targets(self, name: str) -> tuple[Target, ...]:
        return self.providers.targets(self.routes[name])


@pytest.fixture
def registry(fake: FakeOpenAI, http: UpstreamHttp) -> Routes:
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
    return Routes(config, http)


async def chat(target: Target) -> Completion:
    return await target.provider.chat(ChatCall(BODY, target.model))


def stream(target: Target) -> Any:
    return target.provider.chat_stream(ChatCall(BODY, target.model))


def seen(fake: FakeOpenAI) -> list[str]:
    return [r.json["model"] for r in fake.requests]


def test_targets_keep_deployment_order(registry: Routes) -> None:
    targets = registry.targets("all-fail")
    assert [(t.provider.name, t.model) for t in targets] == [("fake", "fail-500"), ("fake", "fail-503"),
                                                             ("fake", "fail-429")]
    assert registry.targets("cross-provider")[1].provider.name == "local"


def test_a_route_naming_a_provider_this_router_lacks_is_a_502(registry: Routes) -> None:
    route = Route.model_validate({"model": "m", "targets": [{"provider": "elsewhere", "model": "x"}]})
    with pytest.raises(GatewayError) as caught:
        registry.providers.targets(route)
    assert (caught.value.status, caught.value.code) == (502, "router_config_mismatch")


async def test_retryable_failure_moves_to_the_next_deployment(registry: Routes, fake: FakeOpenAI) -> None:
    answer = await call_with_failover(registry.targets("second-answers"), "chat", chat)
    assert answer.attempts == 2
    assert answer.target.model == "gpt-4o-mini"
    assert orjson.loads(answer.completion.raw)["model"] == "gpt-4o-mini"
    assert answer.completion.usage is not None
    assert seen(fake) == ["fail-500", "gpt-4o-mini"]


async def test_failover_crosses_provider_types(registry: Routes, fake: FakeOpenAI) -> None:
    answer = await call_with_failover(registry.targets("cross-provider"), "chat", chat)
    assert (answer.attempts, answer.target.provider.name) == (2, "local")
    assert orjson.loads(answer.completion.raw)["choices"][0]["message"]["content"] == "from the mock"
    assert seen(fake) == ["fail-401"]


async def test_non_retryable_error_stops_at_the_first_deployment(registry: Routes, fake: FakeOpenAI) -> None:
    with pytest.raises(RouteFailure) as caught:
        await call_with_failover(registry.targets("bad-request"), "chat", chat)
    failure = caught.value
    assert failure.attempts == 1
    assert failure.target is not None and failure.target.model == "fail-400"
    assert (failure.error.status, failure.error.retryable) == (400, False)
    assert seen(fake) == ["fail-400"]


async def test_all_deployments_failing_raise_the_last_error(registry: Routes, fake: FakeOpenAI) -> None:
    with pytest.raises(RouteFailure) as caught:
        await call_with_failover(registry.targets("all-fail"), "chat", chat)
    failure = caught.value
    assert failure.attempts == 3
    assert failure.target is not None and failure.target.model == "fail-429"
    assert failure.error.status == 429 and failure.error.code == "rate_limit_exceeded"
    assert str(failure) == failure.error.message
    assert seen(fake) == ["fail-500", "fail-503", "fail-429"]


async def test_stream_fails_over_before_the_first_chunk(registry: Routes, fake: FakeOpenAI) -> None:
    opened = await open_stream_with_failover(registry.targets("second-answers"), stream)
    rest = [chunk async for chunk in opened.rest]
    assert (opened.attempts, opened.target.model) == (2, "gpt-4o-mini")
    assert orjson.loads(opened.first.raw)["object"] == "chat.completion.chunk"
    assert "".join(c.text for c in [opened.first, *rest]) == payloads.REPLY_TEXT
    assert rest[-1].usage_only
    assert seen(fake) == ["fail-500", "gpt-4o-mini"]


async def test_stream_non_retryable_error_stops_at_the_first(registry: Routes, fake: FakeOpenAI) -> None:
    with pytest.raises(RouteFailure) as caught:
        await open_stream_with_failover(registry.targets("bad-request"), stream)
    assert (caught.value.attempts, caught.value.error.status) == (1, 400)
    assert seen(fake) == ["fail-400"]


async def test_stream_with_all_deployments_failing(registry: Routes, fake: FakeOpenAI) -> None:
    with pytest.raises(RouteFailure) as caught:
        await open_stream_with_failover(registry.targets("all-fail"), stream)
    assert caught.value.attempts == 3
    assert caught.value.error.status == 429 and caught.value.error.retryable
    assert seen(fake) == ["fail-500", "fail-503", "fail-429"]
