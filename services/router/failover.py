"""Trying a model's deployments in order until one answers.

Retryable failures (connect errors, timeouts, 5xx, 429, our credentials refused) move on
to the next deployment; anything else is the answer. Streams are peeked: a deployment
counts as answering only once its first chunk has arrived, so failover still works when
a provider fails at once.
"""
from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from services.router.providers.base import Completion, ProviderError, StreamChunk
from services.router.registry import RoutedModel, Target
from shared.metrics import UPSTREAM_REQUESTS

log = logging.getLogger(__name__)


class RouteFailure(Exception):
    def __init__(self, error: ProviderError, attempts: int, target: Target | None) -> None:
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
    first: StreamChunk
    rest: AsyncIterator[StreamChunk]
    target: Target
    attempts: int


def _record(target: Target, error: ProviderError | None) -> None:
    outcome = "ok" if error is None else ("retry" if error.retryable else "error")
    UPSTREAM_REQUESTS.labels(target.provider.name, outcome).inc()
    if error is not None:
        log.warning("deployment %s/%s failed: %s", target.provider.name, target.model, error.message)


async def call_with_failover(routed: RoutedModel, body: dict[str, Any],
                             call: Callable[[Target, dict[str, Any]], Awaitable[Completion]]) -> Answer:
    last: ProviderError | None = None
    for attempt, target in enumerate(routed.targets, start=1):
        try:
            completion = await call(target, body)
        except ProviderError as error:
            _record(target, error)
            last = error
            if error.retryable:
                continue
            raise RouteFailure(error, attempt, target) from None
        _record(target, None)
        return Answer(completion, target, attempt)
    assert last is not None
    raise RouteFailure(last, len(routed.targets), routed.targets[-1])


async def open_stream_with_failover(routed: RoutedModel, body: dict[str, Any]) -> OpenStream:
    last: ProviderError | None = None
    for attempt, target in enumerate(routed.targets, start=1):
        stream = target.provider.chat_stream(body, target.model)
        try:
            first = await anext(stream)
        except StopAsyncIteration:
            last = ProviderError(502, f"provider {target.provider.name} ended the stream without data",
                                 retryable=True)
            _record(target, last)
            continue
        except ProviderError as error:
            _record(target, error)
            await stream.aclose()
            last = error
            if error.retryable:
                continue
            raise RouteFailure(error, attempt, target) from None
        _record(target, None)
        return OpenStream(first, stream, target, attempt)
    assert last is not None
    raise RouteFailure(last, len(routed.targets), routed.targets[-1])
