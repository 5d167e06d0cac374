"""compose/'s NATS runs with the same users and permissions as the embedded server: the
committed compose/nats-auth.conf is what shared/bus_users.py gives, and a real nats-server
reading it (passwords from its environment) admits the service users and no one else."""
from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest
from nats.errors import Error as NatsError

from jetgate.credentials import new_password
from jetgate.embedded.lifetime import stop_process
from jetgate.embedded.nats import authorization_config, nats_server_binary, password_variable
from jetgate.embedded.ports import free_port, wait_for_port
from shared.bus_users import USERS

AUTH = Path(__file__).resolve().parents[2] / "compose" / "nats-auth.conf"


def test_the_committed_file_is_what_the_permissions_give() -> None:
    body = "".join(line for line in AUTH.read_text().splitlines(keepends=True) if not line.startswith("#"))
    assert body == authorization_config(dict.fromkeys(USERS))


@pytest.fixture
def compose_nats(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    passwords = {user: new_password() for user in USERS}
    port = free_port()
    (tmp_path / "nats-auth.conf").write_text(AUTH.read_text())
    conf = tmp_path / "nats.conf"
    conf.write_text(f'listen: "127.0.0.1:{port}"\ninclude ./nats-auth.conf\n')
    env = {**os.environ, **{password_variable(user): password for user, password in passwords.items()}}
    process = subprocess.Popen([nats_server_binary(), "-c", str(conf)], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, timeout=15)
        yield f"nats://127.0.0.1:{port}", passwords
    finally:
        stop_process(process, timeout=10)


async def test_service_users_are_admitted_and_strangers_are_not(compose_nats: tuple[str, dict[str, str]]) -> None:
    url, passwords = compose_nats
    for user in USERS:
        nc = await nats.connect(url, user=user, password=passwords[user], connect_timeout=2, max_reconnect_attempts=0)
        await nc.close()
    for user, password in (("ingress", "wrong-password"), (None, None)):
        with pytest.raises((NatsError, OSError)):
            await nats.connect(url, user=user, password=password, connect_timeout=2, max_reconnect_attempts=0,
                               allow_reconnect=False)
