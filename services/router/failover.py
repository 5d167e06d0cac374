"""Trying a route's deployments in order until one answers.

Retryable failures (connect errors, timeouts, 5xx, 429, our credentials refused) move on
to the next deployment; anything else is the answer. Streams are peeked: a deployment
counts as answering only once its first chunk has arrived, so failover still works when
a provider fails at once. With a route's health (services/router/health.py), deployments
cooling down are skipped (unless all are), and every outcome is told to it; the index
`before` gets is always the deployment's place in the route.
"""
from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass

from services.router.health import Deployment, RouteHealth
from services.router.providers.base import Chunk, Completion
from services.router.registry import Target
from shared.errors import GatewayError, UpstreamError
from shared.metrics import UPSTREAM_LATENCY, UPSTREAM_REQUESTS

log = logging.getLogger(__name__)


class RouteFailure(Exception):
    """Every deployment failed (or one failed for good): the error the client sees."""

    def __init__(self, error: GatewayError, attempts: int, target: Target | None) -> None:
        super().__init__(error.message)
        self.error = error
        self.attempts = attempts
        self.target = target


@dataclass
class Answer:
    completion: Completion
    target: Target
    attempts: int


@dataclass
class OpenStream:
    first: Chunk
    rest: AsyncGenerator[Chunk, None]
    target: Target
    attempts: int


def _record(target: Target, endpoint: str, began: float, error: GatewayError | None) -> None:
    outcome = "ok" if error is None else ("retry" if error.retryable else "error")
    UPSTREAM_REQUESTS.labels(target.provider.name, outcome).inc()
    UPSTREAM_LATENCY.labels(target.provider.name, endpoint).observe(time.perf_counter() - began)
    if error is not None:
        log.warning("deployment %s/%s failed: %s", target.provider.name, target.model, error.message)


Before = Callable[[int], Awaitable[None]]  # told the index of each target before it is tried


class _Plan:
    """The targets to try, in order, with their index in the route; and health told of each outcome."""

    def __init__(self, targets: Sequence[Target], health: RouteHealth | None) -> None:
        self._deployments = [Deployment(target.provider.name, target.model) for target in targets]
        self._health = health
        self.order = health.plan(self._deployments) if health is not None else list(range(len(targets)))

    def failed(self, index: int, error: GatewayError) -> None:
        if self._health is not None:
            self._health.failed(self._deployments[index], error)

    def succeeded(self, index: int) -> None:
        if self._health is not None:
            self._health.succeeded(self._deployments[index])


async def call_with_failover(targets: Sequence[Target], endpoint: str,
                             call: Callable[[Target], Awaitable[Completion]], before: Before | None = None,
                             health: RouteHealth | None = None) -> Answer:
    last: GatewayError | None = None
    plan = _Plan(targets, health)
    attempt = 0
    for attempt, index in enumerate(plan.order, start=1):
        target = targets[index]
        if before is not None:
            await before(index)
        began = time.perf_counter()
        try:
            completion = await call(target)
        except GatewayError as error:
            _record(target, endpoint, began, error)
            plan.failed(index, error)
            last = error
            if error.retryable:
                continue
            raise RouteFailure(error, attempt, target) from None
        _record(target, endpoint, began, None)
        plan.succeeded(index)
        return Answer(completion, target, attempt)
    assert last is not None
    raise RouteFailure(last, attempt, targets[plan.order[-1]] if targets else None)


async def open_stream_with_failover(targets: Sequence[Target], open_: Callable[[Target], AsyncGenerator[Chunk, None]],
                                    before: Before | None = None, health: RouteHealth | None = None) -> OpenStream:
    last: GatewayError | None = None
    plan = _Plan(targets, health)
    attempt = 0
    for attempt, index in enumerate(plan.order, start=1):
        target = targets[index]
        if before is not None:
            await before(index)
        began = time.perf_counter()
        stream = open_(target)
        try:
            first = await anext(stream)
        except StopAsyncIteration:
            last = UpstreamError(f"provider {target.provider.name} ended the stream without data", retryable=True)
            _record(target, "chat", began, last)
            plan.failed(index, last)
            continue
        except GatewayError as error:
            _record(target, "chat", began, error)
            plan.failed(index, error)
            await stream.aclose()
            last = error
            if error.retryable:
                continue
            raise RouteFailure(error, attempt, target) from None
        _record(target, "chat", began, None)
        plan.succeeded(index)
        return OpenStream(first, stream, target, attempt)
    assert last is not None
    raise RouteFailure(last, attempt, targets[plan.order[-1]] if targets else None)
