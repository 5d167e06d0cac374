"""The bus connection: closing it on purpose is not reported as a lost connection."""
from __future__ import annotations

import logging

import pytest

from shared.bus import connect


async def test_a_closed_client_is_not_reported_as_disconnected(nats_url: str, caplog: pytest.LogCaptureFixture) -> None:
    told: list[str] = []

    async def on_disconnected() -> None:
        told.append("disconnected")

    nc = await connect(nats_url, "closing-test", on_disconnected=on_disconnected)
    assert nc.is_connected
    with caplog.at_level(logging.INFO, logger="shared.bus"):
        await nc.close()
    assert nc.is_closed
    assert told == ["disconnected"]  # the caller's own hook still runs (nats-py calls it on close)
    assert not [r for r in caplog.records if "disconnected" in r.getMessage()]
