"""The home directory of a running `jetgate up`: data of embedded servers and a state file
that tells other commands (`jetgate keys`, `jetgate run`) where the servers are."""
from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel

from jetgate.credentials import bus_as, read_credentials
from shared.settings import Settings

STATE_FILE = "state.json"


class HomeState(BaseModel):
    pid: int
    nats_url: str
    database_url: str
    clickhouse_url: str
    url: str


def write_state(home: Path, state: HomeState) -> None:
    path = home / STATE_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(state.model_dump_json(indent=2))
    tmp.chmod(0o600)
    tmp.replace(path)


def read_state(home: Path) -> HomeState | None:
    path = home / STATE_FILE
    if not path.exists():
        return None
    state = HomeState.model_validate_json(path.read_text())
    try:
        os.kill(state.pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return state


def clear_state(home: Path) -> None:
    (home / STATE_FILE).unlink(missing_ok=True)


def joined(settings: Settings, user: str) -> Settings:
    """Server URLs not set: those of the running `jetgate up` of `--home`, if there is one,
    connecting to its embedded nats-server as `user`."""
    home = settings.home.resolve()
    state = read_state(home)
    if state is None:
        return settings
    update: dict[str, object] = {
        name: getattr(settings, name) or getattr(state, name) for name in ("nats_url", "database_url", "clickhouse_url")}
    if not settings.nats_url:
        update["bus"] = bus_as(settings.bus, read_credentials(home), user)
    return settings.model_copy(update=update)
