"""Credentials of the embedded servers, generated once into the home directory (0600):
one NATS password per user of shared/bus_users.py, and the Postgres superuser's password.
`jetgate up` starts the servers with them, hands each service its own NATS user, and
`jetgate run` / `jetgate keys` read them from the same home."""
from __future__ import annotations

import json
import os
import secrets
import string
from pathlib import Path

from pydantic import BaseModel, SecretStr

from shared.bus_users import USERS
from shared.settings import BusSettings

CREDENTIALS_FILE = "credentials.json"


class Credentials(BaseModel):
    nats: dict[str, SecretStr]
    postgres_password: SecretStr
    # org → password of its read-only event user (`jetgate events creds`, shared/org_readers.py)
    readers: dict[str, SecretStr] = {}

    def reader_passwords(self) -> dict[str, str]:
        return {org: password.get_secret_value() for org, password in self.readers.items()}

    def nats_password(self, user: str) -> str:
        return self.nats[user].get_secret_value()


def new_password(length: int = 32) -> str:
    """A random password that survives nats-server's `$VARIABLE` substitution (compose/): the
    server parses a variable's value as a config value, so one that begins with a digit or a
    dash can turn into a number or a date, or fail to parse. A letter first, letters and digits
    after."""
    alphabet = string.ascii_letters + string.digits
    return secrets.choice(string.ascii_letters) + "".join(secrets.choice(alphabet) for _ in range(length - 1))


def _new() -> Credentials:
    return Credentials(nats={user: SecretStr(new_password()) for user in USERS},
                       postgres_password=SecretStr(secrets.token_urlsafe(24)))


def _plain_json(credentials: Credentials) -> str:
    return json.dumps({"nats": {user: pw.get_secret_value() for user, pw in credentials.nats.items()},
                       "postgres_password": credentials.postgres_password.get_secret_value(),
                       "readers": credentials.reader_passwords()}, indent=2)


def read_credentials(home: Path) -> Credentials | None:
    path = home / CREDENTIALS_FILE
    if not path.exists():
        return None
    return Credentials.model_validate_json(path.read_text())


def ensure_credentials(home: Path) -> Credentials:
    """The home's credentials; made (and written, readable by the owner only) the first time.
    Users added since (a new service) get a password too."""
    found = read_credentials(home)
    credentials = found or _new()
    missing = [user for user in USERS if user not in credentials.nats]
    for user in missing:
        credentials.nats[user] = SecretStr(new_password())
    if found is None or missing:
        write_credentials(home, credentials)
    return credentials


def write_credentials(home: Path, credentials: Credentials) -> None:
    home.mkdir(parents=True, exist_ok=True)
    path = home / CREDENTIALS_FILE
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(_plain_json(credentials))
    tmp.replace(path)


def bus_as(bus: BusSettings, credentials: Credentials | None, user: str) -> BusSettings:
    """`bus` connecting as `user` of the home's embedded nats-server (unchanged when the
    user is set already, or when there are no credentials: an external NATS)."""
    if bus.user is not None or credentials is None or user not in credentials.nats:
        return bus
    return bus.model_copy(update={"user": user, "password": credentials.nats[user]})
