"""Failover with deployment health, on a real fake-OpenAI server: a deployment cooling down is
not called, `before` still hears each deployment's index in the route, streams count too."""
from __future__ import annotations

import pytest

from services.router.failover import RouteFailure, call_with_failover, open_stream_with_failover
from services.router.health import Deployment, DeploymentHealth, RouteHealth, Transition
from services.router.http_client import UpstreamHttp
from shared.errors import UpstreamError
from tests.fakes.openai_upstream import FakeOpenAI
from tests.services.router.test_failover import Routes, chat, seen, stream
from tests.services.router.test_failover import registry as registry


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_a_cooling_deployment_is_skipped_and_told_by_index(registry: Routes, fake: FakeOpenAI,
                                                                 http: UpstreamHttp) -> None:
    clock, transitions = Clock(), list[Transition]()
    health = RouteHealth(DeploymentHealth(2, 10.0, clock=clock, on_change=transitions.append), "second-answers")
    targets = registry.targets("second-answers")  # fail-500, then gpt-4o-mini
    for _ in range(2):
        assert (await call_with_failover(targets, "chat", chat, health=health)).attempts == 2
    assert [(t.deployment, t.state) for t in transitions] == [(Deployment("fake", "fail-500"), "unhealthy")]
    fake.clear()
    told: list[int] = []

    async def before(index: int) -> None:
        told.append(index)

    answer = await call_with_failover(targets, "chat", chat, before, health)
    assert (answer.attempts, answer.target.model) == (1, "gpt-4o-mini")
    assert seen(fake) == ["gpt-4o-mini"] and told == [1]  # fail-500 not called; the index is the route's
    opened = await open_stream_with_failover(targets, stream, health=health)
    await opened.rest.aclose()
    assert opened.target.model == "gpt-4o-mini" and seen(fake) == ["gpt-4o-mini", "gpt-4o-mini"]
    clock.now += 10.5  # cooled down: tried again (and fails again: cooling again, no new event)
    assert (await call_with_failover(targets, "chat", chat, health=health)).attempts == 2
    assert seen(fake)[-2:] == ["fail-500", "gpt-4o-mini"] and len(transitions) == 1


async def test_a_route_whose_every_deployment_cools_is_still_tried(registry: Routes, fake: FakeOpenAI,
                                                                   http: UpstreamHttp) -> None:
    health = RouteHealth(DeploymentHealth(1, 60.0, clock=Clock()), "all-fail")
    targets = registry.targets("all-fail")
    for _ in range(2):
        fake.clear()
        with pytest.raises(RouteFailure) as caught:
            await call_with_failover(targets, "chat", chat, health=health)
        assert caught.value.attempts == 3
        assert seen(fake) == ["fail-500", "fail-503", "fail-429"]
    assert all(health.health.cooling(Deployment("fake", t.model)) for t in targets)


async def test_a_stream_that_opens_makes_its_deployment_healthy(registry: Routes, fake: FakeOpenAI,
                                                                http: UpstreamHttp) -> None:
    transitions: list[Transition] = []
    deployments = DeploymentHealth(1, 5.0, clock=Clock(), on_change=transitions.append)
    for model in ("gpt-4o-mini", "fail-500"):
        deployments.failed(Deployment("fake", model), UpstreamError("down", retryable=True))
    fake.clear()
    opened = await open_stream_with_failover(registry.targets("second-answers"), stream,
                                             health=RouteHealth(deployments, "second-answers"))
    await opened.rest.aclose()
    # both cooling: both tried, in order; fail-500 fails again (cooling again, no new event), the
    # stream of gpt-4o-mini opens: healthy
    assert seen(fake) == ["fail-500", "gpt-4o-mini"] and opened.attempts == 2
    assert [(t.deployment.model, t.state) for t in transitions] == [
        ("gpt-4o-mini", "unhealthy"), ("fail-500", "unhealthy"), ("gpt-4o-mini", "healthy")]
