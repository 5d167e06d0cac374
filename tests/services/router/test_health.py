"""Deployment health on its own: a clock the test moves, transitions collected as reported."""
from __future__ import annotations

import pytest

from services.router.health import Deployment, DeploymentHealth, RouteHealth, Transition
from services.router.health_report import HealthReport, health_event
from shared.config import GatewayConfig
from shared.errors import GatewayError, InvalidRequest, UpstreamError
from shared.events import Event, ProviderHealthEvent
from shared.metrics import DEPLOYMENT_HEALTHY
from shared.subjects import SYSTEM_ORG

A = Deployment("openai", "gpt-4o")
B = Deployment("azure", "gpt-4o")
DOWN = UpstreamError("provider openai answered 503", status=503, code="upstream_unavailable", retryable=True)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def seen() -> list[Transition]:
    return []


@pytest.fixture
def health(clock: Clock, seen: list[Transition]) -> DeploymentHealth:
    return DeploymentHealth(3, 30.0, clock=clock, on_change=seen.append)


def test_unhealthy_after_n_failures_in_a_row_once(health: DeploymentHealth, seen: list[Transition]) -> None:
    health.failed(A, DOWN)
    health.failed(A, DOWN)
    assert health.state(A) == "healthy" and not seen
    health.failed(A, DOWN, "gpt-4o-route")
    assert health.state(A) == "unhealthy" and health.cooling(A)
    assert [(t.deployment, t.state, t.consecutive_failures, t.route_model) for t in seen] == [
        (A, "unhealthy", 3, "gpt-4o-route")]
    assert seen[0].error is DOWN
    health.failed(A, DOWN)  # already unhealthy: no second report
    assert len(seen) == 1


def test_an_answer_between_failures_starts_the_count_again(health: DeploymentHealth, seen: list[Transition]) -> None:
    for _ in range(2):
        health.failed(A, DOWN)
    health.succeeded(A)
    for _ in range(2):
        health.failed(A, DOWN)
    assert health.state(A) == "healthy" and not seen


def test_errors_of_the_request_count_for_nothing(health: DeploymentHealth, seen: list[Transition]) -> None:
    for _ in range(5):
        health.failed(A, InvalidRequest("bad messages"))
    assert health.state(A) == "healthy" and not seen
    health.failed(A, DOWN)
    health.failed(A, DOWN)
    health.failed(A, InvalidRequest("bad messages"))  # neither resets nor counts
    health.failed(A, DOWN)
    assert health.state(A) == "unhealthy"


def test_skipped_while_cooling_unless_all_are(health: DeploymentHealth, clock: Clock) -> None:
    route = [A, B]
    assert health.plan(route) == [0, 1]
    for _ in range(3):
        health.failed(A, DOWN)
    assert health.plan(route) == [1]
    for _ in range(3):
        health.failed(B, DOWN)
    assert health.plan(route) == [0, 1]  # every deployment cooling: all of them, in order
    assert health.plan([A]) == [0]


def test_tried_again_after_cooldown_healthy_on_first_answer(health: DeploymentHealth, clock: Clock,
                                                            seen: list[Transition]) -> None:
    for _ in range(3):
        health.failed(A, DOWN)
    clock.now += 29.9
    assert health.plan([A, B]) == [1]
    clock.now += 0.2
    assert health.plan([A, B]) == [0, 1] and not health.cooling(A)
    assert health.state(A) == "unhealthy"  # until it answers
    health.succeeded(A, "route")
    assert health.state(A) == "healthy"
    assert [(t.state, t.consecutive_failures, t.route_model, t.error) for t in seen[1:]] == [
        ("healthy", 3, "route", None)]
    health.succeeded(A)  # healthy already: nothing to report
    assert len(seen) == 2


def test_a_failure_after_cooldown_cools_it_down_again(health: DeploymentHealth, clock: Clock,
                                                      seen: list[Transition]) -> None:
    for _ in range(3):
        health.failed(A, DOWN)
    clock.now += 31
    health.failed(A, DOWN)
    assert health.cooling(A) and len(seen) == 1
    clock.now += 29
    assert health.cooling(A)
    clock.now += 2
    assert not health.cooling(A)


def test_zero_turns_it_off(clock: Clock, seen: list[Transition]) -> None:
    off = DeploymentHealth(0, 30.0, clock=clock, on_change=seen.append)
    for _ in range(10):
        off.failed(A, DOWN)
    assert off.state(A) == "healthy" and off.plan([A, B]) == [0, 1] and not seen


def test_a_failing_report_never_reaches_the_call(clock: Clock) -> None:
    def broken(transition: Transition) -> None:
        raise RuntimeError("bus gone")

    health = DeploymentHealth(1, 30.0, clock=clock, on_change=broken)
    health.failed(A, DOWN)  # no exception
    assert health.state(A) == "unhealthy"


def test_route_health_names_the_route_model(health: DeploymentHealth, seen: list[Transition]) -> None:
    route = RouteHealth(health, "my-model")
    for _ in range(3):
        route.failed(A, DOWN)
    assert seen[0].route_model == "my-model"


def test_the_report_sets_the_gauge_and_publishes_no_message() -> None:
    emitted: list[Event] = []
    report = HealthReport(emitted.append, 30.0)
    report.seed(GatewayConfig.model_validate({
        "providers": [{"name": "gauge-p", "type": "mock"}],
        "models": [{"name": "m", "deployments": [{"provider": "gauge-p", "model": "gauge-m"}]}]}))
    gauge = DEPLOYMENT_HEALTHY.labels("gauge-p", "gauge-m")
    assert gauge._value.get() == 1
    secret_error = GatewayError("upstream said: key sk-live-0123456789abcdef is wrong", status=502,
                                code="upstream_error", retryable=True)
    report(Transition(Deployment("gauge-p", "gauge-m"), "unhealthy", 3, secret_error, "m"))
    assert gauge._value.get() == 0
    event = emitted[0]
    assert isinstance(event, ProviderHealthEvent) and event.org_id == SYSTEM_ORG and event.source == "router"
    data = event.data
    assert (data.provider, data.model, data.deployment, data.state) == ("gauge-p", "gauge-m", "gauge-p/gauge-m",
                                                                         "unhealthy")
    assert (data.error_type, data.error_code, data.status, data.cooldown_s) == ("api_error", "upstream_error", 502, 30)
    assert "sk-live" not in event.model_dump_json() and ":" in data.instance  # host:pid
    report(Transition(Deployment("gauge-p", "gauge-m"), "healthy", 3, None, "m"))
    assert gauge._value.get() == 1
    healthy = health_event(Transition(Deployment("gauge-p", "gauge-m"), "healthy", 3), 30.0).data
    assert healthy.error_type is None and healthy.cooldown_s is None
