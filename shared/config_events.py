"""`config.loaded`: each service process says, once it has started, what configuration it runs
with (docs/events.md).

The digest is sha256 over the canonical JSON of the parts of jetgate.yaml and of the
settings that service reads (`VIEWS`), secrets left out: `SecretStr` values are dropped,
credentials in URLs (`user:password@`) cut, and every string redacted as events are
(shared/redact.py), so a rotated key or password changes nothing and no secret can be
guessed from the digest. The last digest of each service is kept in the KV bucket
`JETGATE_CONFIG` (key: the service), so an event says `previous_digest` and `changed`
without reading the stream back. Both KV steps are bounded by `events.config_timeout_s`;
if either fails the event still goes out (without `previous_digest`) and the failure is
counted. Publishing is the publisher's fire and forget.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import orjson
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import BadRequestError, KeyNotFoundError
from nats.js.kv import KeyValue
from pydantic import BaseModel, SecretStr

from shared.config import GatewayConfig
from shared.events import ConfigLoadedData, ConfigLoadedEvent, ConfigSummary, Event
from shared.instance import instance_id
from shared.metrics import CONFIG_DIGEST_ERRORS
from shared.pipeline import Stage
from shared.redact import redact_secrets
from shared.settings import Settings
from shared.subjects import CONFIG_BUCKET, SYSTEM_ORG

log = logging.getLogger(__name__)

_URL_CREDENTIALS = re.compile(r"(://)[^/@\s,]*@")

View = Callable[[GatewayConfig | None, Settings], dict[str, Any]]


def _common(settings: Settings) -> dict[str, Any]:
    return {"nats_url": settings.nats_url, "bus": settings.bus, "events": settings.events,
            "stream_replicas": settings.stream_replicas, "log_level": settings.log_level}


def _streams(settings: Settings) -> dict[str, Any]:
    return {"usage_stream": settings.usage_stream, "audit_stream": settings.audit_stream,
            "dlq_stream": settings.dlq_stream}


# what each service reads of jetgate.yaml and of the settings
VIEWS: dict[str, View] = {
    "ingress": lambda config, s: {**_common(s), **_streams(s), "config": config, "ingress": s.ingress,
                                  "limits": s.limits, "event_feed": s.event_feed, "postgres": s.postgres,
                                  "database_url": s.database_url},
    "guardrails": lambda config, s: {**_common(s), "guardrails_config": config.guardrails if config else None,
                                     "guardrails": s.guardrails},
    "router": lambda config, s: {**_common(s), **_streams(s), "providers": config.providers if config else None,
                                 "router": s.router},
    "accounting": lambda config, s: {**_common(s), **_streams(s), "accounting": s.accounting, "postgres": s.postgres,
                                     "database_url": s.database_url, "clickhouse_url": s.clickhouse_url},
}


def public(value: Any) -> Any:
    """`value` as plain JSON data with every secret left out."""
    if isinstance(value, SecretStr):
        return None
    if isinstance(value, BaseModel):
        fields = dict(value)
        if value.model_extra:
            fields.update(value.model_extra)
        return {name: public(inner) for name, inner in fields.items() if not isinstance(inner, SecretStr)}
    if isinstance(value, dict):
        return {str(name): public(inner) for name, inner in value.items() if not isinstance(inner, SecretStr)}
    if isinstance(value, list | tuple | set | frozenset):
        items = [public(item) for item in value]
        return sorted(items, key=orjson.dumps) if isinstance(value, set | frozenset) else items
    if isinstance(value, str):
        return redact_secrets(_URL_CREDENTIALS.sub(r"\1", value))
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    return redact_secrets(str(value))  # Decimal, enums


def config_digest(view: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(public(view), option=orjson.OPT_SORT_KEYS)).hexdigest()


def config_summary(config: GatewayConfig | None) -> ConfigSummary:
    if config is None:
        return ConfigSummary()
    stages = [Stage.GUARDRAILS.value] if config.guardrails.enabled else []
    return ConfigSummary(models=[model.name for model in config.models],
                         providers=[provider.name for provider in config.providers],
                         stages=[*stages, Stage.ROUTER.value])


async def open_config_bucket(js: JetStreamContext, replicas: int = 1) -> KeyValue:
    """The bucket of the last digest per service, created if it does not exist."""
    # direct gets: a read is `$JS.API.DIRECT.GET.<stream>.<key's subject>`, permitted per service
    config = KeyValueConfig(bucket=CONFIG_BUCKET, history=1, storage=StorageType.FILE, replicas=replicas, direct=True)
    try:
        return await js.create_key_value(config)
    except BadRequestError:  # exists with another configuration: use it as it is
        return await js.key_value(CONFIG_BUCKET)


async def _previous(js: JetStreamContext, service: str, timeout_s: float, replicas: int) -> tuple[KeyValue, str | None]:
    async def read() -> tuple[KeyValue, str | None]:
        kv = await open_config_bucket(js, replicas)
        try:
            entry = await kv.get(service)
        except KeyNotFoundError:
            return kv, None
        return kv, entry.value.decode() if entry.value else None

    return await asyncio.wait_for(read(), timeout_s)


async def announce_config(js: JetStreamContext, emit: Callable[[Event], None], service: str,
                          config: GatewayConfig | None, settings: Settings,
                          reason: Literal["start", "reload"] = "start") -> ConfigLoadedEvent:
    """Publish this process's `config.loaded` (with `emit`: a publisher's, fire and forget) and
    record its digest."""
    digest = config_digest(VIEWS[service](config, settings))
    timeout_s = settings.events.config_timeout_s
    kv: KeyValue | None = None
    previous: str | None = None
    try:
        kv, previous = await _previous(js, service, timeout_s, settings.stream_replicas)
    except Exception as exc:
        CONFIG_DIGEST_ERRORS.labels("read").inc()
        log.warning("%s: the last config digest could not be read: %s", service, type(exc).__name__)
    event = ConfigLoadedEvent(source=service, org_id=SYSTEM_ORG, data=ConfigLoadedData(
        service=service, instance=instance_id(), reason=reason, digest=digest,
        previous_digest=previous, changed=previous is not None and previous != digest,
        summary=config_summary(config)))
    emit(event)
    if kv is not None and previous != digest:
        try:
            await asyncio.wait_for(kv.put(service, digest.encode()), timeout_s)
        except Exception as exc:
            CONFIG_DIGEST_ERRORS.labels("write").inc()
            log.warning("%s: the config digest could not be recorded: %s", service, type(exc).__name__)
    log.info("%s: config %s%s", service, digest[:12], " (changed)" if event.data.changed else "")
    return event
