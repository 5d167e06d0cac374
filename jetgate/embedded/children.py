"""Embedded servers as children of the one supervisor: restarted after a crash on the same
port and data directory (the command is fixed before the first start), so clients only
have to reconnect."""
from __future__ import annotations

import signal

from jetgate.embedded.nats import EmbeddedNats
from jetgate.embedded.postgres import EmbeddedPostgres
from jetgate.supervisor import Child, child_env

NATS_CHILD = "nats-server"
POSTGRES_CHILD = "postgres"


def nats_child(server: EmbeddedNats) -> Child:
    return Child(NATS_CHILD, server.prepare(), child_env({}), server.log_path)


def postgres_child(server: EmbeddedPostgres) -> Child:
    argv, user = server.prepare()
    # SIGINT is Postgres's fast shutdown: sessions end, the data directory is left consistent
    return Child(POSTGRES_CHILD, argv, child_env({}), server.log_path, user=user, stop_signal=signal.SIGINT)
