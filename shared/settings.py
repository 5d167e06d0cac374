"""Process settings, from environment variables (`JETGATE_*`), nested by service.

Every service reads the same settings. Server URLs and shared values are top level
(`JETGATE_NATS_URL`); each part has its own group, set with a double underscore
(`JETGATE_INGRESS__PORT`, `JETGATE_ACCOUNTING__ACK_WAIT_S`). When a server URL is set,
that server is used; `jetgate up` starts embedded servers only for the URLs that are not
set, and hands the resulting settings to its children as environment variables
(`to_env`). Every wait is a setting here, so tests run with short values. All of them
are listed in docs/settings.md.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.subjects import AUDIT_STREAM, DLQ_STREAM, USAGE_STREAM


class _Group(BaseModel):
    model_config = {"frozen": True}


class BusSettings(_Group):
    """The NATS connection every service holds."""

    connect_timeout_s: float = 2.0
    reconnect_wait_s: float = 0.5
    # this process's NATS user (`jetgate up` gives each service its own, see shared/bus_users.py)
    user: str | None = None
    password: SecretStr | None = None
    # a JetStream API call (stream info, consumer create, publish ack)
    request_timeout_s: float = 5.0
    # a stage holding a call tells the caller it is alive this often (heartbeat frames)
    heartbeat_interval_s: float = 0.5
    # the most data one frame carries; larger replies travel as `part` frames (capped by
    # the server's max_payload)
    frame_bytes: int = 4 * 1024 * 1024


class PostgresSettings(_Group):
    """Every Postgres connection and query of every service (a stalled server must not hang
    a request or the event loop)."""

    # opening one connection (TCP, TLS and the start-up handshake)
    connect_timeout_s: float = 2.0
    # one statement, enforced by the client (a frozen server) and by the server (a slow query)
    statement_timeout_s: float = 5.0
    # waiting for a free connection of the pool
    pool_timeout_s: float = 2.0


class EventSettings(_Group):
    """The durable event publisher (ingress and router)."""

    # an event not acknowledged by JetStream after this long is published again (same id)
    ack_timeout_s: float = 5.0
    attempts: int = 20
    retry_delay_s: float = 0.05
    max_retry_delay_s: float = 1.0
    # past this many unacknowledged events the ingress answers 503 instead of taking work
    max_pending: int = 20_000
    flush_timeout_s: float = 10.0
    # one read or write of the last `config.loaded` digest of a service (KV `JETGATE_CONFIG`) at
    # start; past it the event goes out without `previous_digest`
    config_timeout_s: float = Field(default=2.0, gt=0)


class IngressSettings(_Group):
    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = 32 * 1024 * 1024
    # seconds a verified key is kept before Postgres is asked again (revocations are pushed)
    key_cache_ttl_s: float = 60.0
    # seconds an unknown key is remembered as unknown
    key_negative_ttl_s: float = 5.0
    key_cache_entries: int = 100_000
    # while Postgres is unreachable, a key seen before keeps working this long past its TTL
    # (revocations still arrive over NATS); 0 turns stale serving off
    key_stale_s: float = 900.0
    # after the key store failed, how long lookups skip it: cached keys are served stale,
    # unknown keys get 503 at once instead of each waiting for the timeout
    key_store_retry_s: float = 1.0
    # one key lookup, admin call or /ready check against Postgres, as a whole (pool wait,
    # connect, statements): past it, 503 `key_store_unavailable` (or a stale cached key)
    key_store_timeout_s: float = 2.5
    # a key's last-used time is written at most this often (coalesced, off the hot path, one
    # bounded statement per flush; a failed write is dropped, never a failed request)
    key_last_used_interval_s: float = Field(default=60.0, gt=0)
    # after `POST /admin/keys/{id}/rotate` the old secret stays valid this long (unless the
    # body names `grace_period_s`)
    key_rotation_grace_s: float = Field(default=86_400.0, ge=0)
    # CIDRs of reverse proxies whose X-Forwarded-For is believed (for IP allowlists and the
    # audit log's address); []: the peer address is the client's
    trusted_proxies: list[str] = []
    # request bodies nesting deeper than this (the body object is level 1) get 400
    max_json_depth: int = Field(default=64, ge=2)
    # requests with more header fields, or more header bytes (names and values), get 431
    max_header_count: int = Field(default=100, ge=8)
    max_header_bytes: int = Field(default=32 * 1024, ge=1024)
    # upper bound of one call through the pipeline, unless its model sets `timeout_s`; as
    # long as the providers' own default (reasoning models think for minutes), since a dead
    # worker is noticed by its missing heartbeats, not by this
    worker_timeout_s: float = 600.0
    # silence allowed between two stream chunks before the ingress gives up
    stream_idle_timeout_s: float = 60.0
    # no frame (heartbeat or answer) for this long: the worker holding the call is gone;
    # the call is sent again if it had not reached an upstream, otherwise answered 503
    heartbeat_timeout_s: float = 2.0
    # how long a call nobody took (a worker restarting) is sent again before 503
    no_responders_wait_s: float = 5.0
    # a call under way when the NATS connection drops waits this long for it to come back
    # (its answer is then delivered), then gets 503; calls arriving while it is down get 503 at once
    bus_outage_wait_s: float = 5.0
    # a worker went silent while the link looks up: nats-server is pinged for this long
    # before the silence is called the worker's (a server that just died took both)
    bus_probe_timeout_s: float = Field(default=1.0, gt=0)
    usage_query_timeout_s: float = 30.0
    # one query of the Responses API's store (save, get, delete of a response) in Postgres
    response_store_timeout_s: float = 5.0
    graceful_shutdown_s: float = 30.0
    # browser apps: origins allowed by CORS ([]: off, the default; ["*"]: any). Keys travel in
    # headers, never cookies, so credentials are not allowed cross-origin
    cors_allow_origins: list[str] = []
    cors_max_age_s: int = 600
    # FastAPI's own OpenTelemetry spans, metrics and logs, for a process that configures an
    # OpenTelemetry SDK; off, FastAPI does not look for one on every request
    opentelemetry: bool = False


class LimitsSettings(_Group):
    """Rate limits and budgets enforced by the ingress (services/ingress/limits/), their shared
    state in a NATS KV bucket. See docs/architecture.md, "Limits and budgets"."""

    # one KV read or compare-and-set; past it the KV counts as unreachable
    kv_timeout_s: float = 0.5
    # after the KV failed, how long admissions do not ask it again (decided at once from the
    # allowances held and the settings below)
    kv_retry_s: float = 1.0
    # with the KV unreachable and no local allowance left: `open` admits without counting,
    # `closed` refuses with 503 `limits_unavailable`. Rate limits (rpm, tpm) and budgets apart.
    rate_limits_on_kv_failure: Literal["open", "closed"] = "open"
    budgets_on_kv_failure: Literal["open", "closed"] = "closed"
    # a replica leases this share of what is left of a limit at a time (at least what the
    # request needs), so leases shrink as the limit runs out and the last units go one by one
    lease_fraction: float = Field(default=0.1, gt=0, le=1)
    # allowance unused this long is given back to the shared state (also on shutdown)
    idle_return_s: float = 2.0
    # length of an rpm/tpm window, which starts at the first request it counts
    window_s: float = Field(default=60.0, gt=0)
    # share of a budget at which `budget.warning` is published and responses say so
    warn_share: float = Field(default=0.8, gt=0, le=1)
    # output tokens reserved when neither the request (max_tokens) nor the model
    # (`max_output_tokens` in jetgate.yaml) bounds them
    default_max_output_tokens: int = Field(default=4096, ge=1)


class WorkerSettings(_Group):
    """Guardrails and router: where their metrics are served, how long a stop may take."""

    # Prometheus /metrics port; 0 (or a port already taken, as by a second replica) picks a
    # free one, which the service logs
    metrics_port: int = 0
    metrics_host: str = "127.0.0.1"
    # on SIGTERM: calls under way (streams included) get this long to finish
    drain_timeout_s: float = 60.0


class GuardrailsSettings(WorkerSettings):
    metrics_port: int = 9101


class RouterSettings(WorkerSettings):
    metrics_port: int = 9102
    # deployment health (services/router/health.py), kept by each router replica on its own: after
    # this many retryable failures in a row a deployment is unhealthy and failover skips it for
    # `cooldown_s` (unless every deployment of the route is cooling down); 0 turns it off
    unhealthy_after_failures: int = Field(default=3, ge=0)
    cooldown_s: float = Field(default=30.0, gt=0)
    # whole replies kept so the ingress can ask for one again after a bus outage
    # (services/router/kept_replies.py): the last `kept_replies_window_s` always (at least
    # the ingress's heartbeat_timeout_s: a server that dies unnoticed takes what was just
    # sent), and around an outage until `kept_replies_keep_s` after the link is back; at
    # most `kept_replies_max_bytes` of bodies, the oldest dropped first
    kept_replies_window_s: float = Field(default=3.0, ge=0)
    kept_replies_keep_s: float = Field(default=30.0, ge=0)
    kept_replies_max_bytes: int = Field(default=16 * 1024 * 1024, ge=0)


class AccountingSettings(_Group):
    metrics_port: int = 9103
    metrics_host: str = "127.0.0.1"
    # events written at once (one ClickHouse insert, one Postgres transaction): each insert
    # costs chDB ≈ 20 ms of CPU whatever its size (docs/benchmarks.md), so batches are big
    batch_size: int = Field(default=2000, ge=1, le=20_000)
    # the longest a batch fills once its first event is in (the lag batching adds); a trickle
    # (under a tenth of batch_size once what is stored is taken) waits all of it
    batch_wait_s: float = 0.5
    # the longest wait for a first event; bounds how fast a stop is noticed
    idle_poll_s: float = 1.0
    # an event fetched and not acknowledged within this is redelivered
    ack_wait_s: float = 30.0
    max_nak_delay_s: float = 30.0
    # wait after a failed batch before the next fetch
    failure_pause_s: float = 1.0
    # a batch keeps filling while events come at most this far apart (a stored backlog comes
    # back to back); the first gap this long ends it, unless it is a trickle (see batch_wait_s)
    fill_timeout_s: float = Field(default=0.05, gt=0, le=5)
    # one batch write to Postgres, as a whole; past it the batch is nak'ed and comes again
    write_timeout_s: float = 15.0
    # consumer lag (events not yet delivered) is sampled for /metrics this often
    lag_interval_s: float = 5.0
    # the usage rollups' dirty buckets are rebuilt this often (marks in between coalesce)
    rollup_rebuild_delay_s: float = Field(default=10.0, gt=0)
    # a time bucket is rebuilt only once its end is this far past: events still arriving
    # for it (batching, consumer lag) come before; a later one makes it dirty again
    rollup_close_grace_s: float = Field(default=300.0, ge=0)


class StreamLimits(_Group):
    """One JetStream stream's retention and placement (docs/operations.md: a three-node cluster).
    Past `max_age_s` or `max_bytes` the oldest events are removed (discard old)."""

    max_age_s: float = Field(default=7 * 86400, gt=0)
    max_bytes: int = Field(default=10 * 1024**3, ge=-1)  # -1: no size limit
    replicas: int | None = Field(default=None, ge=1, le=5)  # None: JETGATE_STREAM_REPLICAS
    storage: Literal["file", "memory"] = "file"


class EventFeedSettings(_Group):
    """The subscribers' event streams: `GET /events/usage|audit` (SSE) and their NATS credentials."""

    # a comment line is sent after this long without an event, so proxies and clients see the stream alive
    heartbeat_s: float = Field(default=15.0, gt=0)
    # events pulled from JetStream at once for one subscriber: the most one subscriber holds in memory
    batch: int = Field(default=100, ge=1, le=10_000)
    # a subscriber that takes no bytes for this long is disconnected (its consumer deleted)
    send_timeout_s: float = Field(default=30.0, gt=0)
    # the server deletes a subscriber's ephemeral consumer nobody pulled from for this long
    # (above send_timeout_s and heartbeat_s: a live subscriber's consumer is never removed)
    consumer_inactive_s: float = Field(default=60.0, gt=0)
    # open event streams per ingress replica; past it, 503
    max_subscribers: int = Field(default=1000, ge=1)
    # consumer names a per-organisation NATS credential may use at once (`<org>-feed-1` …)
    credential_consumers: int = Field(default=4, ge=1, le=64)


class ReplaySettings(_Group):
    """`jetgate audit|usage replay` and `export` (jetgate/replay/)."""

    # events asked of JetStream per pull, and the longest wait for one pull's answer
    fetch_batch: int = Field(default=2000, ge=1)
    fetch_timeout_s: float = 5.0
    # events written to the sink at once (one transaction, one insert, one checkpoint)
    write_batch: int = Field(default=2000, ge=1)
    # the ephemeral consumer a replay reads through is removed by the server after this idle time
    consumer_idle_s: float = 60.0
    # the progress line on stderr is redrawn at most this often
    progress_interval_s: float = 0.5


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="JETGATE_", env_nested_delimiter="__", extra="ignore",
                                      frozen=True)

    home: Path = Path(".jetgate")
    config: Path = Path("jetgate.yaml")

    nats_url: str | None = None
    database_url: str | None = None
    clickhouse_url: str | None = None
    master_key: SecretStr | None = None
    # JetStream replicas for the gateway's streams: 1 on one machine, 3 on a 3-node cluster
    stream_replicas: int = 1
    log_level: str = "INFO"

    bus: BusSettings = BusSettings()
    postgres: PostgresSettings = PostgresSettings()
    events: EventSettings = EventSettings()
    ingress: IngressSettings = IngressSettings()
    limits: LimitsSettings = LimitsSettings()
    guardrails: GuardrailsSettings = GuardrailsSettings()
    router: RouterSettings = RouterSettings()
    accounting: AccountingSettings = AccountingSettings()
    usage_stream: StreamLimits = StreamLimits()
    audit_stream: StreamLimits = StreamLimits(max_age_s=30 * 86400)
    dlq_stream: StreamLimits = StreamLimits(max_age_s=30 * 86400, max_bytes=1024**3)
    event_feed: EventFeedSettings = EventFeedSettings()
    replay: ReplaySettings = ReplaySettings()

    def require(self, name: str) -> str:
        value = getattr(self, name)
        if not value:
            raise RuntimeError(f"JETGATE_{name.upper()} is not set")
        return str(value)

    def stream_limits(self) -> dict[str, StreamLimits]:
        """Each stream's limits by stream name, replicas filled in from `stream_replicas`."""
        limits = {USAGE_STREAM.name: self.usage_stream, AUDIT_STREAM.name: self.audit_stream,
                  DLQ_STREAM.name: self.dlq_stream}
        return {name: limit if limit.replicas is not None else limit.model_copy(update={"replicas": self.stream_replicas})
                for name, limit in limits.items()}

    def to_env(self) -> dict[str, str]:
        """These settings as the environment variables that give them back (for child processes)."""
        env: dict[str, str] = {}
        for name, value in self:
            if value is None:
                continue
            if isinstance(value, BaseModel):
                for field, inner in value:
                    if inner is None:
                        continue
                    shown = _shown(inner)
                    env[f"JETGATE_{name.upper()}__{field.upper()}"] = shown
            elif isinstance(value, SecretStr):
                env[f"JETGATE_{name.upper()}"] = value.get_secret_value()
            else:
                env[f"JETGATE_{name.upper()}"] = str(value)
        return env


def _shown(value: object) -> str:
    """A value as the environment gives it back: secrets revealed, lists as JSON."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, list):
        return json.dumps(value)
    return str(value)


def load_settings() -> Settings:
    return Settings()
