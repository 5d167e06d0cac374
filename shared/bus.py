"""NATS connection and JetStream topology, created idempotently."""
from __future__ import annotations

import logging

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig
from nats.js.errors import BadRequestError

from shared.events import KeyEvent, RequestEvent, UsageEvent
from shared.subjects import STREAMS, StreamSpec, audit_subject, usage_subject

log = logging.getLogger(__name__)


async def connect(url: str, name: str) -> Client:
    async def on_error(exc: Exception) -> None:
        log.warning("nats: %s", exc)

    return await nats.connect(
        [server.strip() for server in url.split(",") if server.strip()], name=name,
        max_reconnect_attempts=-1, reconnect_time_wait=0.5, error_cb=on_error, pending_size=64 * 1024 * 1024,
    )


def _stream_config(spec: StreamSpec, replicas: int) -> StreamConfig:
    return StreamConfig(
        name=spec.name, subjects=list(spec.subjects), storage=StorageType.FILE,
        max_age=spec.max_age_s, duplicate_window=spec.duplicate_window_s, num_replicas=replicas,
    )


async def ensure_streams(js: JetStreamContext, replicas: int = 1) -> None:
    """Create or update every stream the gateway uses."""
    for spec in STREAMS:
        config = _stream_config(spec, replicas)
        try:
            await js.add_stream(config)
        except BadRequestError:
            await js.update_stream(config)


async def publish_event(js: JetStreamContext, event: UsageEvent | RequestEvent | KeyEvent) -> None:
    """Publish durably; the event id is the de-duplication id."""
    if isinstance(event, UsageEvent):
        subject = usage_subject(event.org_id)
    else:
        subject = audit_subject(event.org_id, event.type)
    await js.publish(subject, event.model_dump_json().encode(), headers={"Nats-Msg-Id": event.id})
