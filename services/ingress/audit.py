"""Request lifecycle events for the audit stream, emitted off the hot path."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from shared.errors import GatewayError
from shared.events import (
    Principal,
    RequestData,
    RequestEvent,
    RequestEventType,
    envelope_ids,
)
from shared.publisher import EventPublisher


@dataclass
class RequestAudit:
    events: EventPublisher
    principal: Principal
    request_id: str
    path: str
    model: str | None = None
    stream: bool = False
    started: float = field(default_factory=time.perf_counter)

    def _emit(self, type_: RequestEventType, **data: object) -> None:
        self.events.emit(RequestEvent(
            type=type_, source="ingress", **envelope_ids(self.principal, self.request_id),
            data=RequestData(path=self.path, model=self.model, stream=self.stream, **data)))

    def _elapsed_ms(self) -> float:
        return round((time.perf_counter() - self.started) * 1000, 3)

    def received(self) -> None:
        self._emit("request.received")

    def completed(self, status_code: int = 200) -> None:
        self._emit("request.completed", status_code=status_code, latency_ms=self._elapsed_ms())

    def failed(self, error: GatewayError, reason: str | None = None) -> None:
        self._emit("request.failed", status_code=error.status, error_type=error.type, error_code=error.code,
                   reason=reason or error.message, latency_ms=self._elapsed_ms())

    def denied(self, error: GatewayError) -> None:
        self._emit("request.denied", status_code=error.status, error_type=error.type, error_code=error.code,
                   reason=error.message, latency_ms=self._elapsed_ms())
