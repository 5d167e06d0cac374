"""Who may publish and subscribe where on NATS: one user per service, each permitted only
the subjects it needs, so nothing but the ingress can place a call on a worker subject
(guardrails forwards a call it checked to the router), and nothing but the router can
record usage — and the ingress, for a call whose worker died holding it (shared/usage.py).

Plain users with permissions in the server's configuration (`authorization { users }`):
a read-only per-organisation user is one more entry of the same shape (subscribe to
`jetgate.usage.<org>` and `jetgate.audit.<org>.>`, and the JetStream API of its own
consumer), added by a config reload.
"""
from __future__ import annotations

from pydantic import BaseModel

from shared.pipeline import Endpoint, Stage, stage_subject
from shared.subjects import (
    ACCOUNTING_USAGE_QUERY,
    AUDIT_STREAM,
    BUS_PROBE,
    CONFIG_BUCKET,
    DLQ_STREAM,
    KEYS_REVOKED,
    LIMITS_KV_SUBJECTS,
    ROUTER_CANCEL,
    ROUTER_RESEND,
    SYSTEM_ORG,
    TENANCY_CHANGED,
    USAGE_STREAM,
    audit_subject,
    config_kv_subject,
)

INBOXES = "_INBOX.>"  # replies: request-reply answers, stream frames, JetStream acknowledgements
JS_API = "$JS.API.>"  # streams and consumers (created idempotently at start), publish acks
JS_ACK = "$JS.ACK.>"  # acknowledging what a durable consumer delivered
ADMIN = "admin"  # the launcher, the CLI and the readiness poller: everything
GUARDRAIL_FINDINGS = "jetgate.audit.*.guardrail.finding"  # the guardrails' `guardrail.finding` events
CONFIG_LOADED = audit_subject(SYSTEM_ORG, "config.loaded")  # every service's `config.loaded`
PROVIDER_HEALTH = audit_subject(SYSTEM_ORG, "provider.health")  # the router's `provider.health`
CONFIG_STREAM = f"KV_{CONFIG_BUCKET}"


def _config_digest(service: str) -> tuple[str, ...]:
    """Its `config.loaded` and its own key of the digest bucket (shared/config_events.py)."""
    return CONFIG_LOADED, config_kv_subject(service)


# a service without the whole JetStream API (guardrails): the digest bucket, created or found, and its own key read
def _config_bucket_api(service: str) -> tuple[str, ...]:
    return (f"$JS.API.STREAM.CREATE.{CONFIG_STREAM}", f"$JS.API.STREAM.INFO.{CONFIG_STREAM}",
            f"$JS.API.DIRECT.GET.{CONFIG_STREAM}.{config_kv_subject(service)}")


class Permissions(BaseModel):
    model_config = {"frozen": True}

    publish: tuple[str, ...]
    subscribe: tuple[str, ...]


def _stage_subjects(stage: Stage) -> tuple[str, ...]:
    return tuple(stage_subject(stage, endpoint) for endpoint in Endpoint)


SERVICE_PERMISSIONS: dict[str, Permissions] = {
    "ingress": Permissions(
        publish=(*_stage_subjects(Stage.GUARDRAILS), *_stage_subjects(Stage.ROUTER), ACCOUNTING_USAGE_QUERY,
                 ROUTER_CANCEL, ROUTER_RESEND, BUS_PROBE, KEYS_REVOKED, TENANCY_CHANGED, *AUDIT_STREAM.subjects,
                 *USAGE_STREAM.subjects, JS_API, LIMITS_KV_SUBJECTS, config_kv_subject("ingress")),
        subscribe=(INBOXES, KEYS_REVOKED, TENANCY_CHANGED)),
    "guardrails": Permissions(
        publish=(*_stage_subjects(Stage.ROUTER), INBOXES, GUARDRAIL_FINDINGS, *_config_digest("guardrails"),
                 *_config_bucket_api("guardrails")),
        subscribe=(*_stage_subjects(Stage.GUARDRAILS), INBOXES)),
    "router": Permissions(
        publish=(INBOXES, *USAGE_STREAM.subjects, JS_API, PROVIDER_HEALTH, *_config_digest("router")),
        subscribe=(*_stage_subjects(Stage.ROUTER), ROUTER_CANCEL, ROUTER_RESEND, INBOXES)),
    "accounting": Permissions(
        publish=(INBOXES, JS_API, JS_ACK, *DLQ_STREAM.subjects, *_config_digest("accounting")),
        subscribe=(ACCOUNTING_USAGE_QUERY, INBOXES)),
}
USERS = (ADMIN, *SERVICE_PERMISSIONS)


def permissions_of(user: str) -> Permissions | None:
    """None: every subject (the admin user)."""
    return SERVICE_PERMISSIONS.get(user)
