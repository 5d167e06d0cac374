"""`jetgate events creds --org ORG`: a NATS user that may read only that organisation's
events (shared/org_readers.py), added to the embedded nats-server of the home's `jetgate up`
by a config reload (SIGHUP; connected clients stay). Issuing again for the same organisation
replaces its password. For a NATS server the gateway does not run, `server_entry` is the
`authorization.users` entry to add to its config before `nats-server --signal reload`."""
from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlparse

from pydantic import BaseModel, SecretStr

from jetgate.credentials import new_password, read_credentials, write_credentials
from jetgate.embedded.nats import EmbeddedNats, user_entry
from shared.bus_users import USERS
from shared.org_readers import consumer_names, inbox_prefix, reader_permissions, reader_user, stream_filters
from shared.tenancy import SLUG


class EventCredential(BaseModel):
    """What a subscriber needs to connect and read (printed as JSON)."""

    org_id: str
    url: str
    user: str
    password: SecretStr
    inbox_prefix: str
    live_subjects: list[str]  # core NATS subscriptions: events as they are published
    stream_filters: dict[str, str]  # stream → the filter a consumer must use (audit: or one type below it)
    consumer_names: list[str]  # the pull consumer names it may create, read and delete

    def shown(self) -> str:
        return json.dumps({**self.model_dump(mode="json"), "password": self.password.get_secret_value()}, indent=2)


def check_org(org_id: str) -> str:
    if not SLUG.fullmatch(org_id):
        raise ValueError(f"organisation ids are slugs (lowercase letters, digits, dashes): {org_id!r}")
    return org_id


def credential(org_id: str, url: str, password: str, consumers: int) -> EventCredential:
    return EventCredential(org_id=org_id, url=url, user=reader_user(org_id), password=SecretStr(password),
                           inbox_prefix=inbox_prefix(org_id), live_subjects=list(stream_filters(org_id).values()),
                           stream_filters=stream_filters(org_id), consumer_names=consumer_names(org_id, consumers))


def issue(home: Path, org_id: str, nats_url: str, consumers: int) -> EventCredential:
    """A new password for the organisation's reader, written to the home's credentials and
    to the embedded server's config, which the running server then reloads."""
    check_org(org_id)
    credentials = read_credentials(home)
    if credentials is None:
        raise RuntimeError(f"no credentials in {home}: is it the home of a `jetgate up`?")
    password = new_password()
    credentials.readers[org_id] = SecretStr(password)
    write_credentials(home, credentials)
    server = EmbeddedNats(home / "nats", port=urlparse(nats_url).port or 4222,
                          users={user: credentials.nats_password(user) for user in USERS},
                          readers=credentials.reader_passwords(), reader_consumers=consumers)
    server.reload()
    return credential(org_id, nats_url, password, consumers)


def server_entry(org_id: str, consumers: int) -> tuple[EventCredential, str]:
    """For a NATS server run elsewhere: the credential and its `authorization.users` entry."""
    check_org(org_id)
    password = new_password()
    return (credential(org_id, "nats://<your server>", password, consumers),
            user_entry(reader_user(org_id), password, reader_permissions(org_id, consumers)))
