"""Every NATS subject, stream, consumer and queue group, named once.

Usage and audit subjects carry the organisation id right after the prefix, so a tenant
can be given permission to subscribe to `jetgate.usage.<org>` and `jetgate.audit.<org>.>`.
Events of the gateway itself, of no organisation (provider health, config loaded), carry
`SYSTEM_ORG`, which no organisation id (a slug, shared/tenancy.py) can be.
"""
from __future__ import annotations

from dataclasses import dataclass

# request-reply outside the call pipeline (the pipeline's subjects: shared/pipeline.py)
ACCOUNTING_USAGE_QUERY = "jetgate.rpc.accounting.usage"
ACCOUNTING_QUEUE = "accounting"

# core NATS broadcasts (every replica listens, no queue group)
ROUTER_CANCEL = "jetgate.ctl.router.cancel"
ROUTER_RESEND = "jetgate.ctl.router.resend"
KEYS_REVOKED = "jetgate.ctl.keys.revoked"
# nobody listens here: a request answered "no responders" proves nats-server is alive (services/ingress/bus_guard.py)
BUS_PROBE = "jetgate.ctl.probe"
# an org, team, user or key changed (limits, models, role, scopes, deletion): every ingress
# evicts the cached keys beneath it (shared/control.py TenancyChanged)
TENANCY_CHANGED = "jetgate.ctl.tenancy.changed"


# the organisation token of the gateway's own events: `jetgate.audit._system.<type>`; a slug never
# starts with `_`, so no organisation's key or NATS reader (shared/org_readers.py) can reach it
SYSTEM_ORG = "_system"


def _token(value: str | None) -> str:
    """A value made safe to be one subject token. Org ids made through the admin API are
    slugs (shared/tenancy.py), which are tokens as they are: two orgs never share a subject."""
    if not value:
        return "_"
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in value)


def usage_subject(org_id: str | None) -> str:
    return f"jetgate.usage.{_token(org_id)}"


def audit_subject(org_id: str | None, event_type: str) -> str:
    return f"jetgate.audit.{_token(org_id)}.{event_type}"


def dlq_subject(consumer: str) -> str:
    return f"jetgate.dlq.{_token(consumer)}"


@dataclass(frozen=True)
class StreamSpec:
    name: str
    subjects: tuple[str, ...]
    max_age_s: float
    duplicate_window_s: float = 120.0


USAGE_STREAM = StreamSpec("JETGATE_USAGE", ("jetgate.usage.>",), max_age_s=7 * 86400)
AUDIT_STREAM = StreamSpec("JETGATE_AUDIT", ("jetgate.audit.>",), max_age_s=30 * 86400)
DLQ_STREAM = StreamSpec("JETGATE_DLQ", ("jetgate.dlq.>",), max_age_s=30 * 86400)
STREAMS = (USAGE_STREAM, AUDIT_STREAM, DLQ_STREAM)

USAGE_CONSUMER = "accounting-usage"
AUDIT_CONSUMER = "accounting-audit"

# the shared state of rate limits and budgets (services/ingress/limits/store.py): a KV bucket
LIMITS_BUCKET = "JETGATE_LIMITS"
LIMITS_KV_SUBJECTS = f"$KV.{LIMITS_BUCKET}.>"

# the last `config.loaded` of each service, by service name (shared/config_events.py): a KV bucket
CONFIG_BUCKET = "JETGATE_CONFIG"


def config_kv_subject(service: str) -> str:
    return f"$KV.{CONFIG_BUCKET}.{_token(service)}"
