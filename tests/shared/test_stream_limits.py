"""Each stream's retention, replicas and storage come from the settings and reach the server."""
from __future__ import annotations

import pytest
from nats.aio.client import Client
from nats.js.api import DiscardPolicy, StorageType

from shared.bus import ensure_streams
from shared.settings import Settings, StreamLimits
from shared.subjects import AUDIT_STREAM, DLQ_STREAM, USAGE_STREAM


def test_defaults_are_single_machine_and_replicas_follow_stream_replicas(monkeypatch: pytest.MonkeyPatch) -> None:
    limits = Settings().stream_limits()
    assert limits[USAGE_STREAM.name].max_age_s == 7 * 86400 and limits[AUDIT_STREAM.name].max_age_s == 30 * 86400
    assert {limit.replicas for limit in limits.values()} == {1}
    assert {limit.storage for limit in limits.values()} == {"file"}
    monkeypatch.setenv("JETGATE_STREAM_REPLICAS", "3")
    monkeypatch.setenv("JETGATE_AUDIT_STREAM__REPLICAS", "5")
    monkeypatch.setenv("JETGATE_USAGE_STREAM__MAX_BYTES", "1048576")
    limits = Settings().stream_limits()
    assert limits[USAGE_STREAM.name].replicas == 3 and limits[DLQ_STREAM.name].replicas == 3
    assert limits[AUDIT_STREAM.name].replicas == 5
    assert limits[USAGE_STREAM.name].max_bytes == 1048576
    assert Settings().to_env()["JETGATE_USAGE_STREAM__MAX_BYTES"] == "1048576"  # handed to child processes


async def test_ensure_streams_applies_the_limits(nc: Client) -> None:
    js = nc.jetstream()
    limits = {USAGE_STREAM.name: StreamLimits(max_age_s=3600, max_bytes=64 * 1024**2, replicas=1),
              AUDIT_STREAM.name: StreamLimits(max_age_s=7200, max_bytes=-1, replicas=1)}
    try:
        await ensure_streams(js, 1, limits)
        usage = (await js.stream_info(USAGE_STREAM.name)).config
        audit = (await js.stream_info(AUDIT_STREAM.name)).config
        assert (usage.max_age, usage.max_bytes, usage.storage, usage.discard) == (
            3600, 64 * 1024**2, StorageType.FILE, DiscardPolicy.OLD)
        assert (audit.max_age, audit.max_bytes) == (7200, -1)
    finally:
        await ensure_streams(js, 1, Settings().stream_limits())  # the defaults again, for the other tests
        assert (await js.stream_info(USAGE_STREAM.name)).config.max_age == 7 * 86400
