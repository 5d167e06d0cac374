"""The NATS connection every service holds, and the JetStream topology, created idempotently."""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError

from shared.events import Event
from shared.redact import redact_event_json
from shared.settings import BusSettings, StreamLimits
from shared.subjects import STREAMS, StreamSpec, audit_subject, usage_subject

log = logging.getLogger(__name__)

ConnectionCallback = Callable[[], Awaitable[None]]


async def connect(url: str, name: str, bus: BusSettings | None = None, *,
                  on_disconnected: ConnectionCallback | None = None,
                  on_reconnected: ConnectionCallback | None = None) -> Client:
    """Connect; reconnection never stops (a restarted nats-server is found again), and what
    is published meanwhile waits in the client's buffer until then. A client closed on
    purpose (`close()`, `drain()`) is not reported as disconnected."""
    bus = bus or BusSettings()
    client = Client()

    async def on_error(exc: Exception) -> None:
        log.warning("nats: %s", exc)

    async def disconnected() -> None:
        if not client.is_closed:
            log.warning("%s: disconnected from NATS; reconnecting", name)
        if on_disconnected is not None:
            await on_disconnected()

    async def reconnected() -> None:
        log.info("%s: reconnected to NATS", name)
        if on_reconnected is not None:
            await on_reconnected()

    # nats-py annotates the two timeouts as int; it uses them as asyncio seconds (floats work)
    await client.connect(
        [server.strip() for server in url.split(",") if server.strip()], name=name,
        connect_timeout=bus.connect_timeout_s, max_reconnect_attempts=-1,  # type: ignore[arg-type]
        reconnect_time_wait=bus.reconnect_wait_s,  # type: ignore[arg-type]
        error_cb=on_error, disconnected_cb=disconnected, reconnected_cb=reconnected,
        pending_size=64 * 1024 * 1024, user=bus.user,
        password=bus.password.get_secret_value() if bus.password else None,
    )
    return client


def jetstream(nc: Client, bus: BusSettings | None = None) -> JetStreamContext:
    return nc.jetstream(timeout=(bus or BusSettings()).request_timeout_s)


def _stream_config(spec: StreamSpec, replicas: int, limits: StreamLimits | None = None) -> StreamConfig:
    if limits is None:
        return StreamConfig(
            name=spec.name, subjects=list(spec.subjects), storage=StorageType.FILE,
            max_age=spec.max_age_s, duplicate_window=spec.duplicate_window_s, num_replicas=replicas,
        )
    return StreamConfig(
        name=spec.name, subjects=list(spec.subjects), storage=StorageType(limits.storage),
        max_age=limits.max_age_s, max_bytes=limits.max_bytes, discard=DiscardPolicy.OLD,
        duplicate_window=min(spec.duplicate_window_s, limits.max_age_s), num_replicas=limits.replicas or replicas,
    )


async def ensure_streams(js: JetStreamContext, replicas: int = 1,
                         limits: Mapping[str, StreamLimits] | None = None) -> None:
    """Create or update every stream the gateway uses; `limits` (Settings.stream_limits, by
    stream name) sets retention, replicas and storage, else the built-in defaults."""
    for spec in STREAMS:
        config = _stream_config(spec, replicas, (limits or {}).get(spec.name))
        try:
            await js.add_stream(config)
        except BadRequestError:
            await js.update_stream(config)


def event_subject(event: Event) -> str:
    if event.type in ("usage.recorded", "usage.corrected"):
        return usage_subject(event.org_id)
    return audit_subject(event.org_id, event.type)


def event_data(event: Event) -> bytes:
    """An event as it is published: its JSON, redacted (shared/redact.py), so no credential
    reaches the streams, the audit log or the usage tables."""
    return redact_event_json(event.model_dump_json().encode())


def event_headers(event: Event) -> dict[str, str]:
    """The event id is JetStream's de-duplication id: a publish retried is stored once."""
    return {"Nats-Msg-Id": event.id}


async def publish_event(js: JetStreamContext, event: Event) -> None:
    """Publish durably and wait for JetStream's acknowledgement."""
    await js.publish(event_subject(event), event_data(event), headers=event_headers(event))
