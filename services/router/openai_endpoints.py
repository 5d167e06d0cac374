"""OpenAI's other endpoints as the router calls them: each one's path under the provider's
base URL, whether its body is a multipart form (else JSON), and what its usage counts
beyond tokens (`units`, priced with the model's `per_unit`): one table, no if-chains."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from services.router.providers.base import EndpointCall
from shared.openai_types import Usage
from shared.pipeline import Endpoint
from shared.protocol import Call

Units = Callable[[dict[str, Any], Usage | None], Decimal]


def no_units(body: dict[str, Any], usage: Usage | None) -> Decimal:
    return Decimal(0)


def images_asked(body: dict[str, Any], usage: Usage | None) -> Decimal:
    """Images made: the request's `n` (1 when not given), as OpenAI prices them."""
    n = body.get("n")
    return Decimal(n) if isinstance(n, int) and n > 0 else Decimal(1)


def characters(body: dict[str, Any], usage: Usage | None) -> Decimal:
    """Characters of the text to speak, as OpenAI prices tts-1."""
    text = body.get("input")
    return Decimal(len(text)) if isinstance(text, str) else Decimal(0)


def seconds(body: dict[str, Any], usage: Usage | None) -> Decimal:
    """Seconds of audio, as the upstream reports them (`usage: {"type": "duration", "seconds"}`,
    whisper-1's); 0 when it reports tokens instead (gpt-4o-transcribe: priced by the tokens)."""
    extra = usage.model_extra if usage is not None else None
    return _decimal(extra.get("seconds")) if extra else Decimal(0)


@dataclass(frozen=True, slots=True)
class EndpointSpec:
    path: str
    multipart: bool = False
    units: Units = no_units

    def request(self, call: Call, body: dict[str, Any], model: str) -> EndpointCall:
        native = call.envelope.native
        content_type = (native.headers.get("content-type") if native else None) or "application/json"
        return EndpointCall(self.path, None if self.multipart else body, call.body, model, content_type)


ENDPOINTS: dict[Endpoint, EndpointSpec] = {
    Endpoint.COMPLETIONS: EndpointSpec("/completions"),
    Endpoint.MODERATIONS: EndpointSpec("/moderations"),
    Endpoint.IMAGES: EndpointSpec("/images/generations", units=images_asked),
    Endpoint.SPEECH: EndpointSpec("/audio/speech", units=characters),
    Endpoint.TRANSCRIPTIONS: EndpointSpec("/audio/transcriptions", multipart=True, units=seconds),
}


def _decimal(value: Any) -> Decimal:
    try:
        return max(Decimal(0), Decimal(str(value))) if isinstance(value, int | float | str) else Decimal(0)
    except InvalidOperation:
        return Decimal(0)
