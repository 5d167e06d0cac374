"""Config of the built-in `mock` provider."""
from __future__ import annotations

from typing import Literal

from services.router.providers.base import ProviderConfig


class MockConfig(ProviderConfig):
    """Answers locally: for trying the gateway without credentials and for load tests."""

    type: Literal["mock"] = "mock"
    latency_ms: float = 0.0
    prompt_tokens: int | None = None  # None: count the prompt
    completion_tokens: int = 12
    chunk_delay_ms: float = 0.0
    stream_chunks: int = 4
    reply: str = "This is a mock response from JetGate."
