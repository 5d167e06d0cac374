"""Read-only NATS users, one per organisation (`jetgate events creds --org ORG`): each may
read only that organisation's usage and audit events, live or from the streams, and publish
nothing but the JetStream API requests of its own consumers.

A reader subscribes to `jetgate.usage.<org>` and `jetgate.audit.<org>.>` (live) and to its own
inbox prefix (`_JETGATE_EVENTS.<org>.>`: the replies of the JetStream API, never another
client's). For replay it makes pull consumers with one of its own names (`<org>-feed-1` …),
through the JetStream API subject that carries the filter
(`$JS.API.CONSUMER.CREATE.<stream>.<name>.<filter>`: the server refuses a request whose
filter differs from the subject's), so it can neither filter on another organisation's
subject nor touch the gateway's own consumers (`accounting-*`)."""
from __future__ import annotations

from shared.bus_users import Permissions
from shared.subjects import AUDIT_STREAM, USAGE_STREAM, audit_subject, usage_subject

INBOX_ROOT = "_JETGATE_EVENTS"
JS_API = "$JS.API"


def reader_user(org_id: str) -> str:
    return f"events-{_name_token(org_id)}"


def inbox_prefix(org_id: str) -> str:
    """The reader's inbox prefix (nats-py `inbox_prefix`, the nats CLI's `--inbox-prefix`)."""
    return f"{INBOX_ROOT}.{_name_token(org_id)}"


def consumer_names(org_id: str, count: int) -> list[str]:
    return [f"{_name_token(org_id)}-feed-{n}" for n in range(1, count + 1)]


def _name_token(org_id: str) -> str:
    return usage_subject(org_id).rsplit(".", 1)[1]  # the org's subject token


def stream_filters(org_id: str) -> dict[str, str]:
    """The filter a reader's consumer of each stream uses (an audit consumer may narrow it to
    one type: `jetgate.audit.<org>.<type>`)."""
    return {USAGE_STREAM.name: usage_subject(org_id), AUDIT_STREAM.name: audit_subject(org_id, ">")}


def reader_permissions(org_id: str, consumers: int) -> Permissions:
    publish: list[str] = []
    for stream, filter_subject in stream_filters(org_id).items():
        for name in consumer_names(org_id, consumers):
            publish += [f"{JS_API}.CONSUMER.CREATE.{stream}.{name}.{filter_subject}",
                        f"{JS_API}.CONSUMER.MSG.NEXT.{stream}.{name}",
                        f"{JS_API}.CONSUMER.INFO.{stream}.{name}",
                        f"{JS_API}.CONSUMER.DELETE.{stream}.{name}"]
    return Permissions(publish=tuple(publish),
                       subscribe=(*stream_filters(org_id).values(), f"{inbox_prefix(org_id)}.>"))
